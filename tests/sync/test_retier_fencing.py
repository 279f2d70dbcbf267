"""Three races of a re-tier's page units against their run's end and against each other, on
PostgreSQL (its row locks are what closes them; ``sync.retier``):

* A unit that commits while the coordinator finishes the run (it stopped: no unit moved
  on). The coordinator marks the pending writes of its units still committed as a dead
  run's, since a stopped run's are re-sent as they are; a unit committing after that
  mark and before the run's record says it stopped left writes citing a stopped run,
  re-sent blindly by the next run. The coordinator now marks them in the transaction that
  finishes the run, under the run's row lock, which a unit's commit takes first.
* A worker frozen past ``lock_ttl`` after its unit's commit: its claims run out, the job
  runs again and takes the unit over (its writes held as a dead run's, the unit done).
  Woken, it still sent its queued writes and recorded their answers, and marked the unit
  done again with its own result. Now it owns the unit no longer (``units.owns``): it
  sends and records nothing more.
* ``retier_unit_answers`` rows of a unit left committed when its run finished (its worker
  died writing, and no attempt came back) stayed for ever; now the run's end folds them
  into the unit's result and deletes them.

Workers are threads with their own engine and store connection (``InProcessUnits``'
way); a freeze is a thread held at a kill point (``sync.killpoints``) while its claims'
heartbeat renews nothing, as a frozen process's does not.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from sync import page_step, recorder, retier, retier_worker, runs, schema, writepool
from sync import retier_units as units
from sync.claims import owner_id
from sync.claims_schema import customer_claims
from sync.engine import RunOptions, SyncEngine
from sync.retier_died import died_run_id
from sync.retier_results import retier_unit_answers
from sync.retier_units import UnitRef
from sync.store import StateStore
from tests.sync.conftest import PG_URL, pg_schema
from tests.sync.test_retier import AS_OF, PAGE, Book, BookConnector, engine_on

pytestmark = pytest.mark.postgres

StoreFactory = Callable[[], StateStore]


@pytest.fixture
def open_store() -> Iterator[StoreFactory]:
    """Opens a new connection to one PostgreSQL schema, as a process on another host."""
    opened: list[StateStore] = []
    with pg_schema() as name:

        def open_one() -> StateStore:
            engine = sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={name}"})
            opened.append(StateStore(engine))
            opened[-1].migrate("sync", schema.SYNC_MIGRATIONS)
            return opened[-1]

        try:
            yield open_one
        finally:
            for store in opened:
                store.close()


def pending_citing(store: StateStore) -> tuple[set[str], set[str]]:
    """The run ids the pending outbox rows cite, and those of them taken for a dead run's."""
    with store.begin() as conn:
        query = sa.select(schema.outbox.c.run_id).where(schema.outbox.c.status == "pending")
        cited = set(conn.execute(query).scalars())
        return cited, runs.died(conn, cited)


def unit_row(store: StateStore, ref: UnitRef) -> tuple[str, Any]:
    with store.begin() as conn:
        row = conn.execute(
            sa.select(units.retier_units.c.status, units.retier_units.c.result).where(
                units.retier_units.c.run_id == ref.run_id, units.retier_units.c.seq == ref.seq
            )
        ).one()
    return row.status, row.result


class DiesWriting:
    """Base of the executors below: a unit's attempt on a thread of its own (``name``),
    which raises as it starts sending its writes (a worker killed there: its job never
    runs again)."""

    name = "unit-attempt"

    def __init__(self, open_store: StoreFactory, book: Book, monkeypatch: pytest.MonkeyPatch):
        self.open_store, self.book = open_store, book
        self.threads: list[threading.Thread] = []
        sending = retier_worker.send_full_batches

        def dies(*args: object) -> None:
            if threading.current_thread().name == self.name:
                raise RuntimeError("killed while writing")
            sending(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(retier_worker, "send_full_batches", dies)

    def submit(self, unit: UnitRef) -> None:
        engine = engine_on(self.open_store(), self.book)
        thread = threading.Thread(target=self._attempt, args=(engine, unit), name=self.name)
        self.threads.append(thread)
        thread.start()

    def _attempt(self, engine: SyncEngine, unit: UnitRef) -> None:
        with contextlib.suppress(RuntimeError):
            retier_worker.run_unit(engine, unit)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=120)
            assert not thread.is_alive()


class CommitsAsTheRunFinishes(DiesWriting):
    """The unit waits for its turn until the coordinator is recording the run finished
    (``runs.finish``, after its units were settled), which goes on once the unit has
    committed and died writing, or waits for the run's row lock."""

    def __init__(self, open_store: StoreFactory, book: Book, monkeypatch: pytest.MonkeyPatch):
        super().__init__(open_store, book, monkeypatch)
        self.finishing = threading.Event()
        self.waited_for_the_lock = False
        turn, finish = units.wait_turn, runs.finish

        def late_turn(*args: Any, **kwargs: Any) -> Any:
            assert self.finishing.wait(timeout=120)  # a guard against a hang only
            return turn(*args, **kwargs)

        def finishes(conn: sa.Connection, *args: Any, **kwargs: Any) -> None:
            self.finishing.set()
            self._until_committed_or_waiting(conn)
            finish(conn, *args, **kwargs)

        monkeypatch.setattr(units, "wait_turn", late_turn)
        monkeypatch.setattr(runs, "finish", finishes)

    def _until_committed_or_waiting(self, conn: sa.Connection) -> None:
        """Until the unit's thread has ended, or its commit waits for a lock this
        transaction holds."""
        self.waited_for_the_lock = until_blocking(
            conn, "%for share%", lambda: any(t.is_alive() for t in self.threads)
        )


def until_blocking(
    conn: sa.Connection, query: str = "%", alive: Callable[[], bool] = lambda: True
) -> bool:
    """Wait until another transaction (its statement ILIKE ``query``) waits for a lock
    ``conn``'s holds: True; False once ``alive()`` is not, or after a minute."""
    pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
    blocked = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
        " AND query ILIKE :query"
    )
    watcher = sa.create_engine(PG_URL)
    try:
        deadline = time.monotonic() + 60
        while alive() and time.monotonic() < deadline:
            with watcher.connect() as watching:
                if watching.execute(blocked, {"pid": pid, "query": query}).scalar():
                    return True
            time.sleep(0.02)
        return False
    finally:
        watcher.dispose()


def test_a_unit_committing_as_the_run_finishes_waits_and_is_given_up(
    open_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = Book(PAGE)  # one page: one unit
    store = open_store()
    late = CommitsAsTheRunFinishes(open_store, book, monkeypatch)
    options = RunOptions(full=True, as_of=AS_OF)
    report = retier.retier(engine_on(store, book), late, options, stall_seconds=1)
    late.join()
    assert report.status == "failed" and "no page unit moved on" in str(report.error)
    cited, dead = pending_citing(store)
    assert cited == dead  # none left to be re-sent blindly as a stopped run's
    assert late.waited_for_the_lock  # its commit began while the run was finishing...
    status, _ = unit_row(store, UnitRef(report.run_id, 1))
    assert status == "abandoned"  # ...and then found it stopped: rolled back, for the rerun


class DoneAsTheRunFinishes(DiesWriting):
    """The unit's attempt sends and records every write, then marks the unit done in a
    transaction held open until the coordinator finishing the run waits for it: the
    coordinator sees the units move on until that transaction is open, then none (its
    stall time passes, and it stops)."""

    name = "finishing-unit"

    def __init__(self, open_store: StoreFactory, book: Book, monkeypatch: pytest.MonkeyPatch):
        self.open_store, self.book = open_store, book
        self.threads = []
        self.done_open = threading.Event()
        self.waited = False
        self.result: Any = None
        set_status, progress, ticks = units.set_status, units.progress, itertools.count()

        def held_open(conn: sa.Connection, ref: UnitRef, status: str, **kwargs: Any) -> None:
            set_status(conn, ref, status, **kwargs)  # type: ignore[arg-type]
            if status == "done" and threading.current_thread().name == self.name:
                self.result = kwargs["result"].to_json()
                self.done_open.set()
                self.waited = until_blocking(conn)

        def moving(conn: sa.Connection, run_id: str) -> Counter[str]:
            now = progress(conn, run_id)
            if not self.done_open.is_set():  # however slow the unit's writes
                now["moving on"] = next(ticks)
            return now

        monkeypatch.setattr(units, "set_status", held_open)
        monkeypatch.setattr(units, "progress", moving)


def test_a_unit_marked_done_as_the_run_finishes_stays_done(
    open_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The coordinator ends the units it finds committed as it finishes the run; one whose
    attempt was marking it done meanwhile was found committed, then failed over its done
    (its result the one at its last recording). Now it is waited for and left done."""
    book = Book(PAGE)  # one page: one unit
    store = open_store()
    done = DoneAsTheRunFinishes(open_store, book, monkeypatch)
    options = RunOptions(full=True, as_of=AS_OF)
    report = retier.retier(engine_on(store, book), done, options, stall_seconds=1)
    done.join()
    assert report.status == "failed" and "no page unit moved on" in str(report.error)
    assert done.waited  # the run's end waited for the unit's done...
    assert unit_row(store, UnitRef(report.run_id, 1)) == ("done", done.result)  # ...kept


class FrozenPastTtl:
    """The unit's first attempt runs on a thread that freezes at the kill point ``at``;
    its claims' heartbeat renews nothing from then on and its claims run out (``lock_ttl``
    past), so the job, run again here, takes the unit over (committed: marks it done; not
    yet: runs it itself). Then the first attempt wakes and goes on."""

    name = "frozen-attempt"

    def __init__(
        self,
        open_store: StoreFactory,
        book: Book,
        at: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.open_store, self.book, self.at = open_store, book, at
        self.frozen, self.wake = threading.Event(), threading.Event()
        self.owner = ""
        self.connector = BookConnector(book)
        self.engine = engine_on(open_store(), book, self.connector)
        self.writes_when_taken_over: dict[str, int] = {}
        self.unit_when_taken_over: tuple[str, Any] = ("", None)
        self.outcome: list[object] = []
        for module in (page_step, writepool):
            monkeypatch.setattr(module, "kill_point", self._kill_point)
        self.monkeypatch = monkeypatch

    def _kill_point(self, name: str) -> None:
        if name != self.at or threading.current_thread().name != self.name:
            return
        if self.frozen.is_set():
            return
        self.owner = owner_id()
        self.monkeypatch.setattr(self.engine.claims, "renew", lambda owner: 0)
        self.frozen.set()
        assert self.wake.wait(timeout=120)  # a guard against a hang only

    def _writes(self) -> dict[str, int]:
        return {k: n for k, n in self.connector.calls.counts().items() if k != "read"}

    def submit(self, unit: UnitRef) -> None:
        first = threading.Thread(target=self._first, args=(unit,), name=self.name)
        first.start()
        try:
            assert self.frozen.wait(timeout=120)
            with self.engine.store.begin() as conn:  # lock_ttl past, no renewal
                conn.execute(
                    customer_claims.update()
                    .where(customer_claims.c.owner == self.owner)
                    .values(expires_at=0.0)
                )
            other = engine_on(self.open_store(), self.book)
            retier_worker.run_unit(other, unit)  # the job again, on another worker
            self.unit_when_taken_over = unit_row(other.store, unit)
            # (the write pool's threads are not frozen here: calls it had started went on)
            self.writes_when_taken_over = self._writes()
        finally:
            self.wake.set()
            first.join(timeout=120)

    def _first(self, unit: UnitRef) -> None:
        try:
            self.outcome.append(retier_worker.run_unit(self.engine, unit))
        except Exception as exc:
            self.outcome.append(exc)


@pytest.mark.parametrize("at", ["before_commit", "after_commit", "before_record"])
def test_a_worker_frozen_past_its_ttl_sends_and_records_nothing_once_taken_over(
    open_store: StoreFactory, monkeypatch: pytest.MonkeyPatch, at: str
) -> None:
    book = Book(PAGE)  # one page: one unit, full write batches to send
    store = open_store()
    frozen = FrozenPastTtl(open_store, book, at, monkeypatch)
    report = retier.retier(engine_on(store, book), frozen, RunOptions(full=True, as_of=AS_OF))
    ref = UnitRef(report.run_id, 1)
    status, _ = frozen.unit_when_taken_over
    assert status == "done"  # taken over: its writes left held as a dead run's
    if at != "before_record":
        assert frozen.writes_when_taken_over == {}  # it had sent nothing
    else:
        assert frozen.writes_when_taken_over  # calls answered, not yet recorded
    # woken, it sends nothing more, records nothing, and leaves the unit as it was taken
    # over (the coordinator may have added its result up already)
    assert frozen._writes() == frozen.writes_when_taken_over
    assert unit_row(store, ref) == frozen.unit_when_taken_over
    assert frozen.outcome == [0]  # it stopped; not an error for the task engine to retry
    with store.begin() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(retier_unit_answers))
        assert left.scalar() == 0


class RecordsThenDies(DiesWriting):
    """The unit commits, records the answers of its first write calls, then its worker
    freezes until the run has finished and dies (its job is never run again)."""

    name = "writing-unit"

    def __init__(self, open_store: StoreFactory, book: Book, monkeypatch: pytest.MonkeyPatch):
        self.open_store, self.book = open_store, book
        self.threads = []
        self.recorded, self.finished = threading.Event(), threading.Event()
        record = recorder.Recorder.record_results

        def records_then_dies(this: recorder.Recorder, calls: Any) -> Any:
            retries = record(this, calls)
            if threading.current_thread().name == self.name and not self.recorded.is_set():
                self.recorded.set()
                assert self.finished.wait(timeout=120)  # a guard against a hang only
                raise RuntimeError("killed while writing")
            return retries

        monkeypatch.setattr(recorder.Recorder, "record_results", records_then_dies)
        # the coordinator's stall counts from the freeze: until the first recording the
        # unit is on its way (a loaded box may take longer than the stall to get there)
        progress, moves = units.progress, itertools.count()

        def moving(conn: sa.Connection, run_id: str) -> Counter[str]:
            now = progress(conn, run_id)
            move = next(moves)
            if not self.recorded.is_set() and move < 6000:  # polls: a guard against a hang
                now["on its way"] = move
            return now

        monkeypatch.setattr(units, "progress", moving)


def test_a_run_that_finishes_with_a_unit_still_writing_keeps_no_answer_rows(
    open_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = Book(PAGE)  # one page: one unit
    store = open_store()
    dying = RecordsThenDies(open_store, book, monkeypatch)
    options = RunOptions(full=True, as_of=AS_OF)
    try:
        report = retier.retier(engine_on(store, book), dying, options, stall_seconds=1)
    finally:
        dying.finished.set()
        dying.join()
    assert dying.recorded.is_set()
    assert report.status == "failed" and "no page unit moved on" in str(report.error)
    with store.begin() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(retier_unit_answers))
        assert left.scalar() == 0
    ref = UnitRef(report.run_id, 1)
    status, result = unit_row(store, ref)
    assert status == "failed"  # ended with the run: its recordings are in its result
    assert result["counts"]["writes"]  # what its recordings added
    cited, dead = pending_citing(store)
    assert cited == dead == {died_run_id(ref)}
