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
* **A worker** (``sync.retier_worker.run_unit``, on any host) takes a unit and runs the
  page through the engine's own page step (``sync.page_step``): assess and plan side by
  side with other units, then, in page order, admit its tasks within the run's budgets,
  commit its decisions, outbox items and state, and move the bookmark past it in one
  transaction; then send its writes and record the answers (state, audit). Its rows cite
  the coordinator's run.
* **The order of commits** is the page order (a unit waits its turn: it commits after the
  unit before it has). Task budgets are per run and admitted in page order, so a unit
  takes them over from the unit before it; and the bookmark, moved by each commit, is
  therefore past a page only once every page up to it is durable. A coordinator that dies
  leaves its units to finish or to be given up (``run_is_running``) and the bookmark
  behind them; the rerun reads from there, and the outbox makes its writes idempotent.
  The next reading run ends its units still committed as the run's end would
  (``retier_died.end_dead_runs``).
* **API calls stay at the minimum**: a unit sends only full write batches (and full bulk
  jobs); what is left, less than a batch of a kind per unit, stays in the outbox, and the
  coordinator sends the rests together at the end (``Dispatcher.recover`` counts them as
  the run's own). ``floor(a/b) + floor(c/b) + ceil((a%b + c%b)/b) = ceil((a+c)/b)``: the
  same calls as one process makes.
* **A unit whose worker dies while writing** (committed, not done) leaves writes that may
  have reached the CRM: the job's next attempt, a later unit reading their customers, or
  the coordinator finishing the run marks them as a dead run's (``sync.retier_died``); an
  attempt whose unit was taken over (frozen past ``lock_ttl``) sends and records nothing
  more (``retier_units.owns``). What the
  unit recorded before it died is in its stored result and the rows its recordings added
  (``retier_worker.UnitRunner._recorded``, ``sync.retier_results``).
* **The run's report** adds up every unit's counts, outcomes, API calls and writes; a unit
  the engine gave up on fails the run, naming the page (the pages after it are given up
  too, since they cannot commit past it), and the rerun does them again.

Households: a member decided beside an earlier page is settled, not decided again, when a
later unit reads it on the same inputs (``PagePlanner.settled`` knows the run's decisions
from the state rows, which carry the coordinator's run id); the run counts it read twice
and unchanged once, as one process does. The task engine that carries
units between hosts is plugged in through ``UnitExecutor`` (``sync.tasks.retier_page``);
``sync.retier_threads`` runs them on threads of this process.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import sqlalchemy as sa

from connectors.contract import CrmRecord, ReadContext
from sync import retier_died as died
from sync import retier_units as units
from sync import run_outbox
from sync.page_step import PageStep
from sync.records import Advance, Stop
from sync.retier_results import UnitResult, add_counts
from sync.retier_units import UnitRef
from sync.retier_worker import send_full_batches
from sync.run import Run
from sync.run_parts import RunParts
from sync.run_report import RunReport
from sync.settings import RunOptions

if TYPE_CHECKING:
    from sync.engine import SyncEngine


class UnitExecutor(Protocol):
    """Hands a unit to a worker (the task engine's job). The worker calls ``run_unit``
    (``sync.retier_worker``); when it raises, the engine retries it later, and after its
    last attempt calls ``give_up`` so the coordinator hears of it."""

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
        parts = RunParts(engine, options)
        coordinator = Coordinator(parts, executor, max_ahead, stall_seconds)
        return Run(parts, coordinator).execute(read_stream=True, records=())
    finally:
        engine.store.release_lock(engine.lock_name)


class Coordinator:
    """The stream's pages of a run become units (``sync.run.StreamHandOff``); what comes
    before the stream, and the rests of the units' writes at the end, the run does itself
    over the same ``parts``."""

    def __init__(
        self, parts: RunParts, executor: UnitExecutor, max_ahead: int, stall_seconds: float
    ) -> None:
        self.p = parts
        parts.e.store.migrate("retier", units.MIGRATIONS)
        self.executor = executor
        self.max_ahead = max(1, max_ahead)
        self.stall = stall_seconds
        self.seq = 0
        self.merged = False
        self.calls: Counter[str] = Counter()  # the units'
        options = parts.options
        self.unit_options = {
            "trigger": options.trigger,
            "actor": options.actor,
            "as_of": options.day().isoformat(),
            "only_fields": options.only_fields,
        }

    def page(self, records: list[CrmRecord], mark: Advance) -> None:
        """Store the page as the run's next unit and hand it to a worker."""
        if self.seq == 0:
            self._open()
        self._wait(lambda left: left < self.max_ahead)
        self.seq += 1
        ref = UnitRef(self.p.run_id, self.seq)
        connector = self.p.e.connector
        context = None
        if isinstance(connector, ReadContext):
            context = connector.read_context([r.profile.id for r in records])
        with self.p.e.store.begin() as conn:
            units.put(
                conn,
                ref,
                self.p.e.stream,
                options=self.unit_options,
                records=records,
                context=context,
                read_at=mark.read_at,
                hold_until=self.p.reader.writes_from,
            )
        self.executor.submit(ref)

    def _open(self) -> None:
        """Before the first unit: the head row, from which the first unit takes the run's
        task budgets; and this process's own writes (dead letters and waiting tasks
        fetched before the stream) handed over. Their full batches are sent and answered
        here; the rest stays in the outbox, where the unit whose page reads the customer
        again takes it up as this run's earlier decision (as one process superseding it
        would), and the rests of customers no page reads go out at the end."""
        p = self.p
        send_full_batches(p.pool, p.reader.holding_writes)
        p.pool.queue.clear()
        p.pool.due.clear()
        p.recorder.decisions.clear()
        p.claims.release_all()
        with p.e.store.begin() as conn:
            units.put(
                conn,
                UnitRef(p.run_id, 0),
                p.e.stream,
                options=self.unit_options,
                budget=units.budget_json(p.planner.budget),
                status="done",
            )

    def after_read(self) -> None:
        """Every unit finished: add up what they did, then queue the rests of their writes
        (the run's last drain sends them). A sales task among them that may have reached
        the CRM (left by a run or webhook pass that died during the re-tier, or a call of
        which went unanswered) is held until the run has read its customer again by id and
        planned it, as before the stream (``run_outbox.recover``): planned from the task
        budgets the last unit left."""
        self.merge()
        with self.p.e.store.begin() as conn:
            failed = [
                (seq, error)
                for seq, status, _, error in units.finished(conn, self.p.run_id)
                if status != "done"
            ]
            left = units.left_budget(conn, self.p.run_id)
        if failed:
            seq, error = failed[0]
            raise Stop("failed", f"{len(failed)} page unit(s) not done; page {seq}: {error}")
        units.restore_budget(self.p.planner.budget, left)
        run_outbox.recover(self.p, None, PageStep(self.p).refetch)

    def merge(self) -> None:
        """Wait for every unit handed out, and add their results into the run's, once."""
        if self.merged:
            return
        self.merged = True
        self._wait(lambda left: left == 0)
        p = self.p
        tally = p.pool.tally
        with p.e.store.begin() as conn:
            done = [r for _, status, r, _ in units.finished(conn, p.run_id) if status == "done"]
        for data in done:
            result = UnitResult.from_json(data)
            add_counts(p.counts, result.counts)
            p.recorder.outcomes.update(result.outcomes)  # type: ignore[arg-type]
            self.calls.update(result.api_calls)
            tally.items.update(result.tally_items)
            for kind, keys in result.tally_groups.items():
                tally.groups.setdefault(kind, set()).update(keys)

    def _wait(self, enough: Callable[[int], bool]) -> None:
        """Until ``enough(units not finished)``; a stall of ``stall`` seconds (no unit
        moving on) stops the run."""
        last: Counter[str] | None = None
        moved = time.monotonic()
        while True:
            with self.p.e.store.begin() as conn:
                now = units.progress(conn, self.p.run_id)
            left = now["queued"] + now["committed"]
            if enough(left):
                return
            if now != last:
                last, moved = now, time.monotonic()
            elif time.monotonic() - moved > self.stall:
                raise Stop("failed", f"no page unit moved on in {self.stall:.0f} s ({left} left)")
            time.sleep(0.02)

    def finishing(self, conn: sa.Connection) -> None:
        """In the transaction that records the run finished: its units still committed
        are ended, their writes left held as a dead run's (``retier_died.end_with_run``)."""
        died.end_with_run(conn, self.p.run_id, self.p.e.stream)
