"""A re-tier's page unit whose worker died while sending its writes (``sync.retier``).

A unit commits its page's decisions and outbox rows, citing the coordinator's run, then
sends them. Killed meanwhile, it leaves rows never seen answered that may have reached the
CRM; yet the run's own writes are never in doubt (``sync.run_outbox``,
``Dispatcher._unsent``), so adopted as they are, they would be re-sent blindly: a sales
task for a customer sanctioned since. The unit recorded whose writes it was sending
(``retier_units.writing``); whoever learns that it died marks them as a dead run's here.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import TYPE_CHECKING

import sqlalchemy as sa

from sync import migrate
from sync import retier_units as units
from sync.claims import owner_id
from sync.retier_units import TurnTimeoutError, UnitRef, retier_units
from sync.schema import now_text, outbox, runs

if TYPE_CHECKING:
    from sync.engine import SyncEngine
    from sync.store import StateStore

log = logging.getLogger(__name__)

#: the error of a unit still writing when its run finished (``end_with_run``)
STOPPED_WRITING = "the run stopped while the unit was writing: its writes left are held"


class UnitStillWritingError(TurnTimeoutError):
    """The attempt that committed the unit still holds the claims of customers it writes:
    alive, its worker only late to beat (the task engine ran the job again). This attempt
    was not tried; the engine runs it again soon, as for a turn not come."""


def take_over_committed(engine: SyncEngine, ref: UnitRef) -> int:
    """An attempt finds the unit committed, not done: the attempt that committed it died
    while writing, or still writes. A live one holds the claims of the customers it writes
    until their writes are answered and marks the unit done before it lets them go
    (``sync.retier_worker.UnitRunner``); marked done here meanwhile, the unit would be added up by
    the coordinator without what that attempt records next (the run's counts then fail to
    reconcile). So the unit is taken for dead only once those claims are free (a process
    gone on this host frees them at once, another host's run out after ``lock_ttl``):
    its writes left are marked (``mark_died_writing``) and it is marked done. How many
    writes it marked; raises ``UnitStillWritingError`` while the claims are held."""
    claims, owner = engine.claims, owner_id()
    with engine.store.begin() as conn:
        customers = set(writing(conn, ref))
    got = claims.claim(customers, owner)
    try:
        if got != customers:
            raise UnitStillWritingError(
                f"page unit {ref.seq} is still being written by a live worker"
                f" ({len(customers - got)} customer(s) claimed)"
            )
        with engine.store.begin() as conn:
            if units.load(conn, ref).status != "committed":  # it finished meanwhile
                return 0
            held = mark_died_writing(conn, ref, engine.stream)  # a recording's lock order
            if units.locked_status(conn, ref) != "committed":  # finished as it was marked
                return 0
            units.set_status(conn, ref, "done")
    finally:
        claims.release(got, owner)
    log.warning(
        "page unit %d died while writing: its %d writes left are held as a dead run's",
        ref.seq,
        held,
        extra={"run_id": ref.run_id},
    )
    return held


def end_with_run(conn: sa.Connection, run_id: str, stream: str) -> None:
    """The coordinator records its run finished, in this transaction, under the run's row
    lock (``units.lock_run``; a unit's commit takes it first in its transaction, ``sync.
    retier_worker.UnitRunner._opening``: a commit under way is waited for and found here, a later
    one finds the run stopped and is given up). The units still committed, not done, were
    being written by workers that died, or still write. A stopped run's pending writes are
    re-sent as they are (``sync.runs.died``), so theirs are marked as a dead run's, as
    ``take_over_committed`` would have, and each unit is ended (failed): its attempt, if
    alive, owns it no longer and sends and records nothing more (``units.owns``), and its
    recordings are folded into its result and deleted (``units.set_status``). A unit its
    attempt is marking done meanwhile is waited for under its row lock, and left done
    with its result (its writes left, never sent, are held all the same: the safe side)."""
    units.lock_run(conn, run_id)
    for seq, status, _, _ in units.finished(conn, run_id):
        if status != "committed":
            continue
        ref = UnitRef(run_id, seq)
        held = mark_died_writing(conn, ref, stream)  # the outbox rows first, as a recording
        if units.locked_status(conn, ref) != "committed":  # done meanwhile
            continue
        units.set_status(conn, ref, "failed", error=STOPPED_WRITING)
        log.warning(
            "page unit %d was still writing as the run stopped: its %d writes left are"
            " held as a dead run's",
            seq,
            held,
            extra={"run_id": run_id},
        )


def end_dead_runs(store: StateStore, stream: str) -> int:
    """As a reading run of ``stream`` starts (``sync.run``, after marking a dead one
    interrupted): the re-tier runs of the stream no longer running whose units are still
    committed had a coordinator that died, and with it or since the workers writing those
    units, whose jobs never came back. Their units are ended here as the coordinator
    finishing the run would have ended them (``end_with_run``): their writes left held as
    a dead run's, their recordings folded into their results (which say what each did,
    calls made included) and deleted. Left as they were, the recordings waited for a next
    attempt that never comes. How many runs it ended units of.

    Cheap when there is nothing to end: a look for the table (none in a store that never
    ran a re-tier) and the component's version, then one look in the index of the units
    still committed (``dead_runs``)."""
    with store.begin() as conn:
        if not sa.inspect(conn).has_table(retier_units.name):
            return 0
        applied = migrate.version(conn, "retier")
    if applied < units.MIGRATIONS[-1].version:  # the index; the columns ``end_with_run`` sets
        store.migrate("retier", units.MIGRATIONS)
    with store.begin() as conn:
        dead = sorted(conn.execute(dead_runs(stream)).scalars())
        for run_id in dead:
            end_with_run(conn, run_id, stream)
    return len(dead)


def dead_runs(stream: str) -> sa.Select[tuple[str]]:
    """The runs of ``stream`` no longer running with units still committed. It reads the
    index of the units still committed (``retier_units_committed``, partial: the status
    is written into the query, as a planner matches it against the index's): without it,
    every unit of every stopped re-tier was walked at every run start, and units are never
    deleted (figures in docs/operations.md)."""
    stopped = sa.select(runs.c.id).where(runs.c.stream == stream, runs.c.status != "running")
    return (
        sa.select(retier_units.c.run_id)
        .distinct()
        .where(
            retier_units.c.stream == stream,
            retier_units.c.status == sa.literal_column("'committed'"),
            retier_units.c.run_id.in_(stopped),
        )
    )


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
    customers = set(writing(conn, ref))
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


def writing(conn: sa.Connection, ref: UnitRef) -> list[str]:
    """The customers whose writes the unit sends after its commit (none unless committed)."""
    query = sa.select(retier_units.c.writing).where(
        retier_units.c.run_id == ref.run_id, retier_units.c.seq == ref.seq
    )
    return list(conn.execute(query).scalar() or ())


def committed_before(conn: sa.Connection, ref: UnitRef) -> list[UnitRef]:
    """The run's units before ``ref`` committed and not done: writing, or died writing."""
    query = sa.select(retier_units.c.seq).where(
        retier_units.c.run_id == ref.run_id,
        retier_units.c.seq < ref.seq,
        retier_units.c.status == "committed",
    )
    return [UnitRef(ref.run_id, int(seq)) for seq in conn.execute(query).scalars()]
