"""A re-tier's page unit whose worker died while sending its writes (``sync.retier``).

A unit commits its page's decisions and outbox rows, citing the coordinator's run, then
sends them. Killed meanwhile, it leaves rows never seen answered that may have reached the
CRM; yet the run's own writes are never in doubt (``sync.run_outbox``,
``Dispatcher._unsent``), so adopted as they are, they would be re-sent blindly: a sales
task for a customer sanctioned since. The unit recorded whose writes it was sending
(``retier_units.writing``); whoever learns that it died marks them as a dead run's here.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa

from sync.retier_units import UnitRef, retier_units
from sync.schema import now_text, outbox


def died_run_id(ref: UnitRef) -> str:
    """The run id a unit that died while writing leaves on its writes still pending: one
    no run record bears, which ``sync.runs.died`` takes for a dead run's (the outbox's
    ``run_id`` holds 40 characters: a 32-character run id and units up to 999,999)."""
    return f"{ref.run_id}:u{ref.seq}"


def mark_died_writing(
    conn: sa.Connection, ref: UnitRef, stream: str, only: Collection[str] | None = None
) -> int:
    """The unit committed and never finished sending its writes (its worker was killed,
    or the attempt failed while writing): those still pending (of ``only``'s customers)
    stop citing the coordinator's run and cite ``died_run_id``. Whoever adopts them next
    (the coordinator, a later unit, the next run) holds them as a dead run's: a sales task
    until its customer is planned again. How many writes it marked."""
    writing = conn.execute(
        sa.select(retier_units.c.writing).where(
            retier_units.c.run_id == ref.run_id, retier_units.c.seq == ref.seq
        )
    ).scalar()
    customers = set(writing or ())
    ids, marked = sorted(customers if only is None else customers & set(only)), 0
    for start in range(0, len(ids), 500):
        marked += conn.execute(
            outbox.update()
            .where(
                outbox.c.stream == stream,
                outbox.c.run_id == ref.run_id,
                outbox.c.status == "pending",
                outbox.c.customer_id.in_(ids[start : start + 500]),
            )
            .values(run_id=died_run_id(ref), updated_at=now_text())
        ).rowcount
    return marked


def committed_before(conn: sa.Connection, ref: UnitRef) -> list[UnitRef]:
    """The run's units before ``ref`` committed and not done: writing, or died writing."""
    query = sa.select(retier_units.c.seq).where(
        retier_units.c.run_id == ref.run_id,
        retier_units.c.seq < ref.seq,
        retier_units.c.status == "committed",
    )
    return [UnitRef(ref.run_id, int(seq)) for seq in conn.execute(query).scalars()]
