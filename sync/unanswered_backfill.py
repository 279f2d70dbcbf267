"""The sync store's step to version 11: writes whose call went unanswered, on record.

Before it, a task whose write call went unanswered (``connectors.errors.UNANSWERED``: a
timeout, a 5xx) was in doubt only while its dead letter was open and its last error was
that one: a clean decision of the customer resolving the letter, an operator's ``ack``, or
a later refusal of the same task forgot that the CRM may hold it, and a sanctions hit then
left it open. From version 11 an outbox row says whether any call of it went unanswered
(``outbox.unanswered``), and such a task is in doubt in ``side_effects`` (``in_doubt``)
until a write of it is answered (``sync.state.mark_in_doubt``).

The step fills both from what the store holds: rows whose last error is the unanswered
one (a refusal after a timeout overwrote it, and cannot be told apart now), and rows still
pending that were attempted (the rule of before held each of those as one that may have
landed, and a store upgraded between two attempts keeps holding it); and, for each task
among them that nothing on record says was made, or closed after its last call, its
mark (on the row of a task closed before it, sent again since). The rule comes
from the row's payload, decrypted by its column when the store is encrypted: a store
opened without its key stops here, before the version is recorded. The rows are read in
batches of ``_BATCH`` by id, each batch's marks written before the next is read, so a large
outbox is never held in memory. Apart from ``sync/schema.py``, which passes its tables in,
as ``sync/migration_steps.py`` steps take them. Safe to repeat: a task marked has a
``side_effects`` row in doubt, and is not marked again (nor twice across batches).
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
        same = sa.and_(effect.stream == row.stream, effect.kind == "task", effect.key == row.key)
        # made (open), marked already, or written since the row's last call (closed then):
        # a task closed before it (its key sent again later) is in doubt all the same
        settled = sa.exists().where(
            same,
            sa.or_(
                effect.active.is_(True),
                effect.in_doubt.is_(True),
                effect.updated_at > row.updated_at,
            ),
        )
        query = (
            sa.select(
                row.id, row.stream, row.customer_id, row.key, row.payload,
                sa.exists().where(same).label("on_record"),
            )
            .where(row.kind == "task", row.unanswered.is_(True), row.status != "done")
            .where(~settled)
            .order_by(row.id)
            .limit(_BATCH)
        )  # fmt: skip
        after = None
        while True:
            batch = conn.execute(query if after is None else query.where(row.id > after)).all()
            if not batch:
                return
            after = batch[-1].id
            marks: dict[tuple[str, str], dict[str, Any]] = {}
            closed: set[tuple[str, str]] = set()  # keys whose (closed) row is marked in place
            for _, stream, customer_id, key, payload, on_record in batch:
                rule = (payload or {}).get("rule")
                if on_record:
                    closed.add((stream, key))
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
            new = [m for k, m in marks.items() if k not in closed]
            if new:
                conn.execute(side_effects.insert(), new)
            reopened = [
                {f"m_{n}": v for n, v in m.items()} for k, m in marks.items() if k in closed
            ]
            if reopened:
                conn.execute(_mark_in_place(side_effects), reopened)

    return apply


def _mark_in_place(side_effects: sa.Table) -> sa.Update:
    """The mark of a task whose row says it was closed before its last unanswered call, on
    that row (parameters ``m_`` and each column's name)."""
    effect = side_effects.c
    return (
        side_effects.update()
        .where(
            effect.stream == sa.bindparam("m_stream"),
            effect.kind == sa.bindparam("m_kind"),
            effect.key == sa.bindparam("m_key"),
        )
        .values(
            customer_id=sa.bindparam("m_customer_id"),
            rule=sa.bindparam("m_rule"),
            active=sa.bindparam("m_active"),
            in_doubt=sa.bindparam("m_in_doubt"),
            updated_at=sa.bindparam("m_updated_at"),
        )
    )
