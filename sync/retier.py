"""A full re-tier spread over workers, a page a unit (issue 22: the re-tier half).

``crmtier sync --full`` (and the re-tier a new policy asks for) reads the whole book. One
process reading, assessing, planning and writing it all leaves every other host idle, so
the run is split where it splits cleanly:

* **The coordinator** (``retier``) holds the stream's lease, which now guards only the
  read cursor. It does what a run does before the stream (outbox left by an earlier run,
  dead-lettered customers, waiting tasks), then reads the pages exactly as an in-process
  run does (``sync.reader``: the signpost, the read-ahead) and stores each page as a unit
  (``sync.retier_units``) for the task engine to hand to a worker: the unit carries the
  page's records, so no worker reads the CRM and the reads stay at one call a page.
* **A worker** (``run_unit``, on any host) takes a unit and runs the page through the
  engine's own path (``sync.run.Run``): assess and plan side by side with other units,
  then, in page order, admit its tasks within the run's budgets, commit its decisions,
  outbox items and state, and move the bookmark past it in one transaction; then send its
  writes and record the answers (state, audit). Its rows cite the coordinator's run.
* **The order of commits** is the page order (a unit waits its turn: it commits after the
  unit before it has). Task budgets are per run and admitted in page order, so a unit
  takes them over from the unit before it; and the bookmark, moved by each commit, is
  therefore past a page only once every page up to it is durable. A coordinator that dies
  leaves its units to finish or to be given up (``run_is_running``) and the bookmark
  behind them; the rerun reads from there, and the outbox makes its writes idempotent.
* **API calls stay at the minimum**: a unit sends only full write batches (and full bulk
  jobs); what is left, less than a batch of a kind per unit, stays in the outbox, and the
  coordinator sends the rests together at the end (``Dispatcher.recover`` counts them as
  the run's own). ``floor(a/b) + floor(c/b) + ceil((a%b + c%b)/b) = ceil((a+c)/b)``: the
  same calls as one process makes.
* **The run's report** adds up every unit's counts, outcomes, API calls and writes; a unit
  the engine gave up on fails the run, naming the page (the pages after it are given up
  too, since they cannot commit past it), and the rerun does them again.

Households: a member decided beside an earlier page is decided again when a later page
reads it (a unit knows only its own page); the end state is the same, the run counts it
read twice. The task engine that carries units between hosts is plugged in through
``UnitExecutor`` (``sync.tasks.retier_page``); ``sync.retier_threads`` runs them on
threads of this process.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Protocol

import sqlalchemy as sa

from connectors.calltally import counting
from connectors.contract import CrmRecord, ReadContext
from sync import outbox
from sync import retier_units as units
from sync.records import Advance, Stop
from sync.retier_units import UnitGivenUpError, UnitRef, UnitResult
from sync.run import PagePlans, Run, RunReport
from sync.runs import RunStatus
from sync.settings import RunOptions
from sync.state import load_states
from sync.writepool import WritePool

if TYPE_CHECKING:
    from sync.engine import SyncEngine

log = logging.getLogger(__name__)


class UnitExecutor(Protocol):
    """Hands a unit to a worker (the task engine's job). The worker calls ``run_unit``;
    when it raises, the engine retries it later, and after its last attempt calls
    ``give_up`` so the coordinator hears of it."""

    def submit(self, unit: UnitRef) -> None: ...


def retier(
    engine: SyncEngine,
    executor: UnitExecutor,
    options: RunOptions | None = None,
    *,
    max_ahead: int = 8,
    stall_seconds: float = 600.0,
) -> RunReport:
    """A full re-tier of ``engine``'s stream, its pages processed by ``executor``'s
    workers; the same report as ``SyncEngine.run``. ``max_ahead``: page units stored and
    not yet done before the read waits (each holds a page of customer data in the store).
    ``stall_seconds``: how long the coordinator waits while no unit moves on."""
    from sync.engine import AlreadyRunningError

    options = options or RunOptions(full=True)
    if not options.full or options.dry_run or options.limit is not None:
        raise ValueError("a re-tier spread over workers reads the whole book: --full only")
    if not engine.store.acquire_lock(engine.lock_name, ttl=engine.settings.lock_ttl):
        raise AlreadyRunningError(f"another process is already syncing {engine.stream}")
    try:
        coordinator = Coordinator(engine, options, executor, max_ahead, stall_seconds)
        return coordinator.execute(read_stream=True, records=())
    finally:
        engine.store.release_lock(engine.lock_name)


class Coordinator(Run):
    """A run whose stream pages become units; what comes before the stream, and the rests
    of the units' writes at the end, it does itself."""

    def __init__(
        self,
        engine: SyncEngine,
        options: RunOptions,
        executor: UnitExecutor,
        max_ahead: int,
        stall_seconds: float,
    ) -> None:
        super().__init__(engine, options)
        engine.store.migrate("retier", units.MIGRATIONS)
        self.executor = executor
        self.max_ahead = max(1, max_ahead)
        self.stall = stall_seconds
        self.seq = 0
        self.merged = False
        self.unit_calls: Counter[str] = Counter()
        self.unit_options = {
            "trigger": options.trigger,
            "actor": options.actor,
            "as_of": options.day().isoformat(),
            "only_fields": options.only_fields,
        }

    def _process(self, records: list[CrmRecord], mark: Advance | None) -> None:
        if mark is None:  # dead letters and waiting tasks, fetched before the stream
            super()._process(records, mark)
            return
        if self.seq == 0:
            self._open()
        self._wait(lambda left: left < self.max_ahead)
        self.seq += 1
        ref = UnitRef(self.run_id, self.seq)
        connector = self.e.connector
        context = None
        if isinstance(connector, ReadContext):
            context = connector.read_context([r.profile.id for r in records])
        with self.e.store.begin() as conn:
            units.put(
                conn,
                ref,
                self.e.stream,
                options=self.unit_options,
                records=records,
                context=context,
                read_at=mark.read_at,
                hold_until=self.reader.writes_from,
            )
        self.executor.submit(ref)

    def _open(self) -> None:
        """Before the first unit: the head row, from which the first unit takes the run's
        task budgets; and this process's own writes (dead letters and waiting tasks
        fetched before the stream) handed over. Their full batches are sent and answered
        here; the rest stays in the outbox, where the unit whose page reads the customer
        again takes it up as this run's earlier decision (as one process superseding it
        would), and the rests of customers no page reads go out at the end."""
        send_full_batches(self.pool, self.reader.holding_writes)
        self.pool.queue.clear()
        self.pool.due.clear()
        self.recorder.decisions.clear()
        self.claims.release_all()
        with self.e.store.begin() as conn:
            units.put(
                conn,
                UnitRef(self.run_id, 0),
                self.e.stream,
                options=self.unit_options,
                budget=units.budget_json(self.planner.budget),
                status="done",
            )

    def _after_read(self) -> None:
        """Every unit finished: add up what they did, then queue the rests of their writes
        (the run's last drain sends them)."""
        self._merge()
        with self.e.store.begin() as conn:
            failed = [
                (seq, error)
                for seq, status, _, error in units.finished(conn, self.run_id)
                if status != "done"
            ]
        if failed:
            seq, error = failed[0]
            raise Stop("failed", f"{len(failed)} page unit(s) not done; page {seq}: {error}")
        self._recover_outbox(None)

    def _verdict(
        self, status: RunStatus, error: str | None, *, read_stream: bool, interrupted: int
    ) -> tuple[RunStatus, str | None]:
        try:
            self._merge()  # a run stopped early still counts the units it handed out
        except Stop as stop:
            if status != "failed":
                status, error = stop.status, str(stop)
        return super()._verdict(status, error, read_stream=read_stream, interrupted=interrupted)

    def _report(self, status: RunStatus, error: str | None) -> RunReport:
        report = super()._report(status, error)
        for kind, n in self.unit_calls.items():
            report.api_calls[kind] = report.api_calls.get(kind, 0) + n
        return report

    def _merge(self) -> None:
        """Wait for every unit handed out, and add their results into the run's, once."""
        if self.merged:
            return
        self.merged = True
        self._wait(lambda left: left == 0)
        tally = self.pool.tally
        with self.e.store.begin() as conn:
            done = [r for _, status, r, _ in units.finished(conn, self.run_id) if status == "done"]
        for data in done:
            result = UnitResult.from_json(data)
            units.add_counts(self.counts, result.counts)
            self.recorder.outcomes.update(result.outcomes)  # type: ignore[arg-type]
            self.unit_calls.update(result.api_calls)
            tally.items.update(result.tally_items)
            for kind, keys in result.tally_groups.items():
                tally.groups.setdefault(kind, set()).update(keys)

    def _wait(self, enough: Callable[[int], bool]) -> None:
        """Until ``enough(units not finished)``; a stall of ``stall`` seconds (no unit
        moving on) stops the run."""
        last: Counter[str] | None = None
        moved = time.monotonic()
        while True:
            with self.e.store.begin() as conn:
                now = units.progress(conn, self.run_id)
            left = now["queued"] + now["committed"]
            if enough(left):
                return
            if now != last:
                last, moved = now, time.monotonic()
            elif time.monotonic() - moved > self.stall:
                raise Stop("failed", f"no page unit moved on in {self.stall:.0f} s ({left} left)")
            time.sleep(0.02)


class UnitRun(Run):
    """One page unit on a worker: the engine's page path under the coordinator's run."""

    def __init__(self, engine: SyncEngine, unit: units.StoredUnit, turn_timeout: float) -> None:
        opts = unit.options
        options = RunOptions(
            trigger=opts["trigger"],
            actor=opts["actor"],
            full=True,
            as_of=date.fromisoformat(opts["as_of"]),
            only_fields=bool(opts["only_fields"]),
        )
        super().__init__(engine, options, run_id=unit.ref.run_id)
        self.unit = unit
        self.turn_timeout = turn_timeout
        self.reader.writes_from = unit.hold_until  # the coordinator's signpost tick

    def process(self) -> UnitResult:
        with counting(self.calls):  # the unit's own calls: its worker may run others
            return self._process_unit()

    def _process_unit(self) -> UnitResult:
        if isinstance(self.e.connector, ReadContext):
            self.e.connector.adopt_read_context(self.unit.context)
        with self.e.store.begin() as conn:
            self.recorder.dead_letter_customers = set(
                outbox.open_dead_letter_customers(conn, self.e.stream)
            )
        self._take_over(self.unit.records)
        try:
            page = self._plan_page(list(self.unit.records), from_stream=True)
            assert page is not None  # a unit never runs dry
            self._commit_page(page, self.unit.mark)
            try:
                self._send_full_batches()
            except Stop as stop:  # its items wait in the outbox; the coordinator meets it too
                log.warning("page unit stopped writing: %s", stop, extra={"run_id": self.run_id})
        finally:
            self.pool.shutdown()
            self.claims.release_all()  # customers with writes left: the coordinator's now
        return self._result()

    def _commit_page(self, page: PagePlans, mark: Advance | None) -> None:
        budget = units.wait_turn(self.e.store.engine, self.unit.ref, timeout=self.turn_timeout)
        units.restore_budget(self.planner.budget, budget)
        with self.e.store.begin() as conn:
            self.reader.load(conn)  # as the unit before this one left it
        super()._commit_page(page, mark)

    def _checkpoint(self, conn: sa.Connection) -> None:
        """The unit committed (in the page's transaction): its successor may commit."""
        units.set_status(
            conn,
            self.unit.ref,
            "committed",
            budget=units.budget_json(self.planner.budget),
            result=self._result(),
        )

    def _take_over(self, records: Sequence[CrmRecord]) -> None:
        """The writes this run queued for the page's customers and has not sent (the
        coordinator's, before the stream): their decisions become this unit's, to be
        superseded or kept by the page's, as in one process."""
        ids = {r.profile.id for r in records}
        self.claims.hold(ids)
        with self.e.store.begin() as conn:
            items = outbox.pending(conn, self.e.stream, ids)
            states = load_states(conn, self.e.stream, {i.customer_id for i in items})
        self.dispatcher.recover(items, states)

    def _send_full_batches(self) -> None:
        send_full_batches(self.pool, self.reader.holding_writes)

    def _result(self) -> UnitResult:
        counts = units.counts_from_json(self.counts.as_json())
        if self.planner.budget is not None:
            counts.tasks_deferred.update(self.planner.budget.deferred)
        return UnitResult.of(
            counts, dict(self.recorder.outcomes), self.calls.counts(), self.pool.tally
        )


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
    again: a unit done is not done twice, a unit committed is only marked done, a unit of
    a run no longer running is given up). Raises to be retried: the engine's retry runs
    it again."""
    store = engine.store
    store.migrate("retier", units.MIGRATIONS)
    with store.begin() as conn:
        unit = units.load(conn, ref)
        running = units.run_is_running(conn, ref.run_id)
    if unit.status in ("done", "failed", "abandoned"):
        return 0
    if unit.status == "committed":  # committed by an attempt that died while writing
        with store.begin() as conn:
            units.set_status(conn, ref, "done")
        return len(unit.records)
    if not running:
        with store.begin() as conn:
            units.set_status(conn, ref, "abandoned", error="the run is no longer running")
        return 0
    try:
        result = UnitRun(engine, unit, turn_timeout).process()
    except UnitGivenUpError as exc:
        with store.begin() as conn:
            units.set_status(conn, ref, "abandoned", error=str(exc))
        return 0
    with store.begin() as conn:
        units.set_status(conn, ref, "done", result=result)
    return len(unit.records)


def give_up(engine: SyncEngine, ref: UnitRef, error: str) -> None:
    """The engine's last attempt at a unit failed: the coordinator reports it."""
    with engine.store.begin() as conn:
        units.set_status(conn, ref, "failed", error=error)
    log.error("page unit %d given up: %s", ref.seq, error, extra={"run_id": ref.run_id})
