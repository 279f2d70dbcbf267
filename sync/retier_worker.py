"""A page unit of a re-tier on a worker (``sync.retier`` describes the run spread over
workers, and the coordinator that hands the units out).

``run_unit`` is a worker's job: it takes a unit up where the ledger (``sync.retier_units``)
says it stands. ``UnitRunner`` runs the unit's page through the engine's own page step
under the coordinator's run: it waits its turn, commits in page order, then sends its
writes and records their answers, owning the unit meanwhile (``retier_units.owns``: an
attempt taken over sends and records nothing more). ``give_up`` is the task engine's word
that a unit's last attempt failed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

import sqlalchemy as sa

from connectors.calltally import counting
from connectors.contract import ReadContext
from sync import retier_died as died
from sync import retier_units as units
from sync import run_outbox
from sync.page_step import PageStep
from sync.records import Outcome, Stop
from sync.retier_results import UnitResult, add_counts, counts_from_json, keep_recorded
from sync.retier_units import UnitGivenUpError, UnitRef, UnitTakenOverError
from sync.run_parts import RunParts
from sync.runs import RunCounts
from sync.settings import RunOptions
from sync.writepool import WritePool

if TYPE_CHECKING:
    from sync.engine import SyncEngine

log = logging.getLogger(__name__)


class UnitRunner:
    """One page unit on a worker: the engine's page step (``sync.page_step``) under the
    coordinator's run, its commit waiting for the unit before it."""

    def __init__(self, engine: SyncEngine, unit: units.StoredUnit, turn_timeout: float) -> None:
        opts = unit.options
        options = RunOptions(
            trigger=opts["trigger"],
            actor=opts["actor"],
            full=True,
            as_of=date.fromisoformat(opts["as_of"]),
            only_fields=bool(opts["only_fields"]),
        )
        self.p = RunParts(engine, options, run_id=unit.ref.run_id)
        self.step = PageStep(self.p, checkpoint=self._committed, opening=self._opening)
        self.unit = unit
        #: this attempt's token: it owns the unit from its commit until the unit ends or
        #: another takes it over (``units.owns``); it sends and records only meanwhile
        self.attempt = uuid.uuid4().hex
        self.p.pool.may_send = self._owns_unit
        self.turn_timeout = turn_timeout
        self.p.reader.writes_from = unit.hold_until  # the coordinator's signpost tick
        self.p.recorder.on_record = self._recorded
        #: the write tally's items as the unit's commit saved them (None until it commits)
        self.tally_at_commit: dict[str, int] | None = None

    def process(self) -> UnitResult:
        with counting(self.p.calls):  # the unit's own calls: its worker may run others
            return self._process_unit()

    def _process_unit(self) -> UnitResult:
        p, unit = self.p, self.unit
        if isinstance(p.e.connector, ReadContext):
            p.e.connector.adopt_read_context(unit.context)
        ids = {r.profile.id for r in unit.records}
        p.claims.hold(ids)  # first: a unit before this one still writing them holds them
        with p.e.store.begin() as conn:
            run_outbox.load_dead_letters(p, conn)
            for earlier in died.committed_before(conn, unit.ref):
                # committed, not done, and its claims free: it died writing them
                died.mark_died_writing(conn, earlier, p.e.stream, only=ids)
        run_outbox.take_over(p, ids)
        try:
            page = self.step.plan(list(unit.records), from_stream=True)
            assert page is not None  # a unit never runs dry
            budget = units.wait_turn(p.e.store.engine, unit.ref, timeout=self.turn_timeout)
            units.restore_budget(p.planner.budget, budget)
            with p.e.store.begin() as conn:
                p.reader.load(conn)  # as the unit before this one left it
            self.step.commit(page, unit.mark)
            p.pool.waiting.clear()  # planned: what the plan kept of a held write may go
            try:
                send_full_batches(p.pool, p.reader.holding_writes)
            except Stop as stop:  # its items wait in the outbox; the coordinator meets it too
                log.warning("page unit stopped writing: %s", stop, extra={"run_id": p.run_id})
            result = self._result()  # every call sent answered and recorded
            with p.e.store.begin() as conn:  # done before its claims go (``committed_before``)
                units.ensure_owner(conn, unit.ref, self.attempt, exclusive=True)
                units.set_status(conn, unit.ref, "done", result=result)
            return result
        finally:
            p.pool.shutdown()
            p.claims.release_all()  # customers with writes left: the coordinator's now

    def _opening(self, conn: sa.Connection) -> None:
        """First in the page's transaction: the run's row share-locked until the commit
        (``units.lock_run``). Not once the run has stopped, or the coordinator has begun
        finishing it: it no longer marks its units' writes left (``Coordinator.
        finishing``), so the page is rolled back and given up, for the rerun. Nor once
        another attempt has committed the unit (this one frozen before its commit past
        ``lock_ttl``, the job run again meanwhile): the page is not committed twice."""
        if not units.run_is_running(conn, self.unit.ref.run_id, share_lock=True):
            raise UnitGivenUpError("the run is no longer running")
        units.ensure_owner(conn, self.unit.ref, self.attempt, exclusive=True)  # queued

    def _committed(self, conn: sa.Connection) -> None:
        """The unit committed (in the page's transaction): its successor may commit. It
        records whose writes it sends next, for an attempt that finds it died while
        sending them (``run_unit``), and that this attempt owns it."""
        decisions = self.p.recorder.decisions
        self.tally_at_commit = dict(self.p.pool.tally.items)
        units.set_status(
            conn,
            self.unit.ref,
            "committed",
            budget=units.budget_json(self.p.planner.budget),
            result=self._result(),
            writing=[cid for cid, decision in decisions.items() if decision.outstanding],
            attempt=self.attempt,
        )

    def _owns_unit(self) -> bool:
        """Whether this attempt still owns its unit, right before a write call (on the
        write pool's thread): a worker frozen past ``lock_ttl`` whose unit was taken over
        meanwhile withdraws the call and every call after it."""
        with self.p.e.store.begin() as conn:
            return units.owns(conn, self.unit.ref, self.attempt)

    def _recorded(
        self, conn: sa.Connection, counts: RunCounts, outcomes: list[tuple[str, Outcome]]
    ) -> None:
        """Answers recorded (in their transaction, ``Recorder.on_record``): what they add
        to the unit's result, once it has committed. Its worker may die before the unit is
        done (``run_unit``), and the customers it finished are then counted by no one
        else. Before its commit nothing is kept: the commit saves the attempt's whole
        result, and an attempt that dies before it is run again from the start."""
        if self.tally_at_commit is None:
            return
        units.ensure_owner(conn, self.unit.ref, self.attempt)  # else nothing is recorded
        p = self.p
        tally = p.pool.tally
        keep_recorded(
            conn,
            self.unit.ref,
            self._counts(counts),
            dict(outcomes) if p.recorder.keep_outcomes else {},
            p.calls.counts(),
            tally,
            tally_moved=dict(tally.items) != self.tally_at_commit,
        )

    def _result(self) -> UnitResult:
        """What the unit did so far."""
        p = self.p
        return UnitResult.of(self._counts(), p.recorder.outcomes, p.calls.counts(), p.pool.tally)

    def _counts(self, more: RunCounts | None = None) -> RunCounts:
        """The unit's counts so far (and ``more``, a recording's not yet added)."""
        p = self.p
        counts = counts_from_json(p.counts.as_json())
        if more is not None:
            add_counts(counts, more)
        if p.planner.budget is not None:
            counts.tasks_deferred.update(p.planner.budget.deferred)
        return counts


def send_full_batches(pool: WritePool, holding: Callable[[], bool]) -> None:
    """Send the full batches of what ``pool`` holds (once ``holding`` no longer holds
    writes back) and record every answer; the rest stays queued, and in the outbox."""
    while holding():
        time.sleep(0.05)
    while True:
        pool.drain(final=False)
        if not pool.inflight and not pool.landed:
            return
        pool.collect(block=True)


def run_unit(engine: SyncEngine, ref: UnitRef, *, turn_timeout: float = 60.0) -> int:
    """Process one page unit; how many customers it finished (a worker's job; safe to run
    again: a unit done is not done twice, a unit committed is only marked done once the
    attempt that committed it is gone (``retier_died.take_over_committed``), a unit of a
    run no longer running is given up). Raises to be retried: the engine's retry runs it
    again."""
    store = engine.store
    store.migrate("retier", units.MIGRATIONS)
    with store.begin() as conn:
        unit = units.load(conn, ref)
        running = units.run_is_running(conn, ref.run_id)
    if unit.status in ("done", "failed", "abandoned"):
        return 0
    if unit.status == "committed":  # by an attempt that died while writing, or still writes
        died.take_over_committed(engine, ref)
        return len(unit.records)
    if not running:
        with store.begin() as conn:
            units.set_status(conn, ref, "abandoned", error="the run is no longer running")
        return 0
    try:
        UnitRunner(engine, unit, turn_timeout).process()
    except UnitGivenUpError as exc:
        with store.begin() as conn:
            units.set_status(conn, ref, "abandoned", error=str(exc))
        return 0
    except UnitTakenOverError as exc:  # the unit is no longer this job's: not retried
        log.warning("%s", exc, extra={"run_id": ref.run_id})
        return 0
    return len(unit.records)


def give_up(engine: SyncEngine, ref: UnitRef, error: str) -> None:
    """The engine's last attempt at a unit failed: the coordinator reports it. An attempt
    that failed after the unit's commit, while writing, may have sent some of its writes:
    those left pending are marked as a dead run's first, as the next attempt would have
    (the run's record will say it stopped, and a stopped run's writes are re-sent as they
    are); a unit not committed has none to mark."""
    with engine.store.begin() as conn:
        held = died.mark_died_writing(conn, ref, engine.stream)
        units.set_status(conn, ref, "failed", error=error)
    log.error(
        "page unit %d given up (%d writes left held as a dead run's): %s",
        ref.seq,
        held,
        error,
        extra={"run_id": ref.run_id},
    )
