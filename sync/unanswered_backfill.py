"""The sync store's step to version 11: writes whose call went unanswered, on record.

Before it, a task whose write call went unanswered (``connectors.errors.UNANSWERED``: a
timeout, a 5xx) was in doubt only while its dead letter was open and its last error was
that one: a clean decision of the customer resolving the letter, an operator's ``ack``, or
a later refusal of the same task forgot that the CRM may hold it, and a sanctions hit then
left it open. From version 11 an outbox row says whether any call of it went unanswered
(``outbox.unanswered``), and such a task is in doubt in ``side_effects`` (``in_doubt``)
until a write of it is answered (``sync.state.mark_tasks_in_doubt``).

The step fills both from what the store holds: rows whose last error is the unanswered
one (a refusal after a timeout overwrote it, and cannot be told apart now), and rows still
pending that were attempted (the rule of before held each of those as one that may have
landed, and a store upgraded between two attempts keeps holding it); and, for each task
among them that nothing on record says was made or closed since, its mark. The rule comes
from the row's payload, decrypted by its column when the store is encrypted: a store
opened without its key stops here, before the version is recorded. The rows are read in
batches of ``_BATCH`` by id, each batch's marks written before the next is read, so a large
outbox is never held in memory. Apart from ``sync/schema.py``, which passes its tables in,
as ``sync/migration_steps.py`` steps take them. Safe to repeat: a task marked has a
``side_effects`` row, and is not marked again (nor twice across batches).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from connectors.errors import UNANSWERED
from sync.migration_steps import add_column

#: outbox rows read (and marks written) per statement
_BATCH = 1000


def mark_unanswered(
    outbox: sa.Table, side_effects: sa.Table, now: Callable[[], str]
) -> Callable[[sa.Connection], None]:
    """The step: add both columns, mark the unanswered rows and their tasks in doubt."""

    def apply(conn: sa.Connection) -> None:
        add_column(outbox, "unanswered")(conn)
        add_column(side_effects, "in_doubt")(conn)
        row, effect = outbox.c, side_effects.c
        attempted = sa.and_(row.status == "pending", row.attempts > 0)
        conn.execute(
            outbox.update()
            .where(sa.or_(row.last_error == UNANSWERED, attempted))
            .values(unanswered=True)
        )
        on_record = sa.exists().where(
            effect.stream == row.stream, effect.kind == "task", effect.key == row.key
        )
        query = (
            sa.select(row.id, row.stream, row.customer_id, row.key, row.payload)
            .where(row.kind == "task", row.unanswered.is_(True), row.status != "done")
            .where(~on_record)
            .order_by(row.id)
            .limit(_BATCH)
        )
        after = None
        while True:
            batch = conn.execute(query if after is None else query.where(row.id > after)).all()
            if not batch:
                return
            after = batch[-1].id
            marks: dict[tuple[str, str], dict[str, Any]] = {}
            for _, stream, customer_id, key, payload in batch:
                rule = (payload or {}).get("rule")
                if rule:
                    marks[(stream, key)] = {
                        "stream": stream,
                        "kind": "task",
                        "key": key,
                        "customer_id": customer_id,
                        "rule": str(rule),
                        "active": False,
                        "in_doubt": True,
                        "updated_at": now(),
                    }
            if marks:
                conn.execute(side_effects.insert(), list(marks.values()))

    return apply
