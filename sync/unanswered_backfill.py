"""The sync store's steps to versions 11 and 12: writes whose call went unanswered, on record.

Before them, a task whose write call went unanswered (``connectors.errors.UNANSWERED``: a
timeout, a 5xx) was in doubt only while its dead letter was open and its last error was
that one: a clean decision of the customer resolving the letter, an operator's ``ack``, or
a later refusal of the same task forgot that the CRM may hold it, and a sanctions hit then
left it open; a membership add alike stayed in a campaign. From version 11 an outbox row
says whether any call of it went unanswered (``outbox.unanswered``), and such a task or
membership add is in doubt in ``side_effects`` (``in_doubt``) until a write of it is
answered (``sync.state.mark_in_doubt``).

Version 11 fills both from what the store holds: rows whose last error is the unanswered
one (a refusal after a timeout overwrote it, and cannot be told apart now), and rows still
pending that were attempted (the rule of before held each of those as one that may have
landed, and a store upgraded between two attempts keeps holding it); and, for each task
among them that nothing on record says was made, or closed after its last call, its
mark (on the row of a task closed before it, sent again since). Version 11 marked tasks
only; version 12 marks the membership adds among the same rows alike (one nothing on
record says was added, or removed after its last call), so a store already at 11 gets
them too. The rule (the campaign) comes from the row's payload, decrypted by its column
when the store is encrypted: a store opened without its key stops there, before the
version is recorded. The rows are read in batches of ``_BATCH`` by id, each batch's marks
written before the next is read, so a large outbox is never held in memory. Apart from
``sync/schema.py``, which passes its tables in, as ``sync/migration_steps.py`` steps take
them. Safe to repeat: a task or membership marked has a ``side_effects`` row in doubt,
and is not marked again (nor twice across batches).
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
    """Version 11: add both columns, mark the unanswered rows and their tasks in doubt."""

    def apply(conn: sa.Connection) -> None:
        add_column(outbox, "unanswered")(conn)
        add_column(side_effects, "in_doubt")(conn)
        row = outbox.c
        attempted = sa.and_(row.status == "pending", row.attempts > 0)
        conn.execute(
            outbox.update()
            .where(sa.or_(row.last_error == UNANSWERED, attempted))
            .values(unanswered=True)
        )
        _mark(conn, outbox, side_effects, now, "task")

    return apply


def mark_unanswered_adds(
    outbox: sa.Table, side_effects: sa.Table, now: Callable[[], str]
) -> Callable[[sa.Connection], None]:
    """Version 12: mark in doubt the membership adds among the rows version 11 (or a run
    since) flagged ``unanswered``, as version 11 marked the tasks."""

    def apply(conn: sa.Connection) -> None:
        _mark(conn, outbox, side_effects, now, "membership")

    return apply


def _target(kind: str, payload: dict[str, Any] | None) -> tuple[str | None, str | None] | None:
    """The (campaign, rule) a mark of this outbox row names: a task's rule, a membership
    add's campaign; None for a row with nothing to mark (a membership removal, which
    leaves the CRM holding nothing of ours, or a task without its rule)."""
    payload = payload or {}
    if kind == "task":
        rule = payload.get("rule")
        return (None, str(rule)) if rule else None
    campaign = payload.get("campaign")
    return (str(campaign), None) if payload.get("member") and campaign else None


def _mark(
    conn: sa.Connection,
    outbox: sa.Table,
    side_effects: sa.Table,
    now: Callable[[], str],
    kind: str,
) -> None:
    """Mark in doubt each ``kind`` (task or membership) written by an ``unanswered`` row
    not done that nothing on record settles, ``_BATCH`` rows at a time."""
    row, effect = outbox.c, side_effects.c
    same = sa.and_(effect.stream == row.stream, effect.kind == kind, effect.key == row.key)
    # made (open, a member), marked already, or written since the row's last call (closed
    # or removed then): one closed or removed before it (its key sent again later) is in
    # doubt all the same
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
        .where(row.kind == kind, row.unanswered.is_(True), row.status != "done")
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
        closed: set[tuple[str, str]] = set()  # keys whose (inactive) row is marked in place
        for _, stream, customer_id, key, payload, on_record in batch:
            if on_record:
                closed.add((stream, key))
            target = _target(kind, payload)
            if target is not None:
                marks[(stream, key)] = {
                    "stream": stream,
                    "kind": kind,
                    "key": key,
                    "customer_id": customer_id,
                    "campaign": target[0],
                    "rule": target[1],
                    "active": False,
                    "in_doubt": True,
                    "updated_at": now(),
                }
        new = [m for k, m in marks.items() if k not in closed]
        if new:
            conn.execute(side_effects.insert(), new)
        reopened = [{f"m_{n}": v for n, v in m.items()} for k, m in marks.items() if k in closed]
        if reopened:
            conn.execute(_mark_in_place(side_effects), reopened)


def _mark_in_place(side_effects: sa.Table) -> sa.Update:
    """The mark of a task closed (a membership removed) before its last unanswered call,
    on that row (parameters ``m_`` and each column's name)."""
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
            campaign=sa.bindparam("m_campaign"),
            rule=sa.bindparam("m_rule"),
            active=sa.bindparam("m_active"),
            in_doubt=sa.bindparam("m_in_doubt"),
            updated_at=sa.bindparam("m_updated_at"),
        )
    )
