"""``crmtier sync --dead-letters`` and ``--ack``: the open dead letters listed, and an
operator's acknowledgement of them (docs/operations.md, "Dead letters")."""

from __future__ import annotations

import click
import sqlalchemy as sa

from crmtier.commands.listing import emit
from crmtier.config import CrmtierConfig
from sync import outbox


def dead_letters(
    config: CrmtierConfig, ack: tuple[str, ...], customer: str | None, fmt: str
) -> int:
    """``--dead-letters`` (the open ones, a customer's with ``customer``) or ``--ack``;
    the exit code."""
    store = config.open_state_store()
    try:
        with store.begin() as conn:
            if ack:
                return _ack(conn, config.stream, ack)
            rows = outbox.list_dead_letters(conn, config.stream, customer)
    finally:
        store.close()
    listed = [
        {
            "id": r["id"],
            "crm_id": r["customer_id"],
            "customer": r["pseudonym"],
            "kind": r["kind"],
            "error_code": r["error_code"],
            "attempts": r["attempts"],
            "reason": r["reason"],
            "first_at": r["first_at"],
            "last_at": r["last_at"],
        }
        for r in rows
    ]
    emit(fmt, f"open dead letters of {config.stream}", _DEAD_LETTER_COLUMNS, listed)
    return 0


def _ack(conn: sa.Connection, stream: str, ack: tuple[str, ...]) -> int:
    """Acknowledge the open letters named (all with ``all``). A letter named that is not
    open says what closed it (``resolved``, ``superseded`` by the customer's newer
    decision, ``acked`` before), and one the stream does not have is an error (exit 1),
    never a silent "acknowledged 0"."""
    try:
        ids = None if "all" in ack else [int(a) for a in ack]
    except ValueError:
        click.echo(f"--ack: takes dead letter ids or 'all', not {' '.join(ack)!r}", err=True)
        return 2
    statuses = outbox.letter_statuses(conn, stream, ids) if ids is not None else {}
    n = outbox.ack_dead_letters(conn, stream, ids)
    click.echo(f"acknowledged {n} dead letter(s)")
    unknown = False
    for letter_id in dict.fromkeys(ids or ()):
        status = statuses.get(letter_id)
        if status is None:
            click.echo(f"dead letter {letter_id}: no such letter in {stream}", err=True)
            unknown = True
        elif status != "open":
            click.echo(f"dead letter {letter_id}: not open, already {status}")
    return 1 if unknown else 0


_DEAD_LETTER_COLUMNS = (
    "id",
    "crm_id",
    "customer",
    "kind",
    "error_code",
    "attempts",
    "reason",
    "last_at",
)
