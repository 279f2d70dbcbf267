"""The sync store's step to version 11: writes whose call went unanswered, on record.

Before it, a task whose write call went unanswered (``connectors.errors.UNANSWERED``: a
timeout, a 5xx) was in doubt only while its dead letter was open and its last error was
that one: a clean decision of the customer resolving the letter, an operator's ``ack``, or
a later refusal of the same task forgot that the CRM may hold it, and a sanctions hit then
left it open. From version 11 an outbox row says whether any call of it went unanswered
(``outbox.unanswered``), and such a task is in doubt in ``side_effects`` (``in_doubt``)
until a write of it is answered (``sync.state.mark_tasks_in_doubt``).

The step fills both from what the store holds: rows whose last error is the unanswered
one (a refusal after a timeout overwrote it, and cannot be told apart now), and, for each
task among them that nothing on record says was made or closed since, its mark. The rule
comes from the row's payload, encrypted when the store is: a store opened without its
key stops here (``sync.crypto.open_value``), before the version is recorded. Apart from
``sync/schema.py``, which passes its tables in, as ``sync/migration_steps.py`` steps take
them. Safe to repeat: a task marked has a ``side_effects`` row, and is not marked again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from connectors.errors import UNANSWERED
from sync import jsontext
from sync.crypto import cipher_of, open_value
from sync.migration_steps import add_column


def mark_unanswered(
    outbox: sa.Table, side_effects: sa.Table, now: Callable[[], str]
) -> Callable[[sa.Connection], None]:
    """The step: add both columns, mark the unanswered rows and their tasks in doubt."""

    def apply(conn: sa.Connection) -> None:
        add_column(outbox, "unanswered")(conn)
        add_column(side_effects, "in_doubt")(conn)
        row, effect = outbox.c, side_effects.c
        conn.execute(outbox.update().where(row.last_error == UNANSWERED).values(unanswered=True))
        on_record = sa.exists().where(
            effect.stream == row.stream, effect.kind == "task", effect.key == row.key
        )
        unanswered = conn.execute(
            sa.select(row.stream, row.customer_id, row.key, sa.type_coerce(row.payload, sa.JSON))
            .where(row.kind == "task", row.unanswered.is_(True), row.status != "done")
            .where(~on_record)
            .order_by(row.id)
        ).tuples()
        marks: dict[tuple[str, str], dict[str, Any]] = {}
        for stream, customer_id, key, stored in unanswered:
            rule = _payload(conn, stored).get("rule")
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


def _payload(conn: sa.Connection, stored: Any) -> dict[str, Any]:
    """A row's payload as stored: its JSON, or the ciphertext of its JSON (a JSON string)."""
    if not isinstance(stored, str):
        return dict(stored)
    plaintext = open_value(stored, cipher_of(conn.dialect), "outbox.payload")
    return dict(jsontext.loads(plaintext)) if plaintext is not None else {}
