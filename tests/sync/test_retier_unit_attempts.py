"""Attempts at a page unit after its page's commit, while its writes go out, in one
process (SQLite store, threads for workers): what a retry or the task engine's giving up
does with a unit committed, not done (``sync.retier_died``). Killed workers are in
tests/sync/test_retier_died_writing.py and test_retier_kill.py.

* A unit whose last attempt fails while writing (an error out of its writes, not a kill):
  the task engine gives it up (``sync.retier_worker.give_up``) and the coordinator's run fails
  naming the page. The run's record then says it stopped, and a stopped run's pending
  writes are re-sent as they are (``sync.runs.died``), yet the unit may have sent some of
  them before the error: they must be held as a dead run's.
* A unit that commits after its run stopped (the coordinator gave up waiting, marking the
  writes of the units committed then), and whose worker dies writing, never run again:
  its writes would cite a stopped run's record, re-sent as they are.
* A retry of a unit whose first attempt is alive and still writing (its worker only late
  to beat, so the task engine ran the job again): marked done there, the coordinator
  would add the unit up without what the first attempt records next.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sync import retier, retier_worker, runs, schema
from sync import retier_units as units
from sync.engine import RunOptions, SyncEngine
from sync.retier_died import UnitStillWritingError, died_run_id
from sync.retier_threads import InProcessUnits
from sync.retier_units import UnitRef
from sync.store import StateStore
from tests.sync.test_retier import AS_OF, PAGE, Book, engine_on


def test_a_unit_given_up_after_its_commit_leaves_its_writes_held_as_a_dead_run_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'spread.db'}"
    book = Book(PAGE)  # one page: one unit
    sending = retier_worker.send_full_batches

    def fails_in_a_unit(*args: object) -> None:
        if threading.current_thread().name.startswith("retier-unit"):
            raise RuntimeError("the store went away while writing")
        sending(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(retier_worker, "send_full_batches", fails_in_a_unit)
    store = StateStore.open(url)
    opened: list[StateStore] = []

    def engine_for() -> object:
        opened.append(StateStore.open(url))
        return engine_on(opened[-1], book)

    executor = InProcessUnits(engine_for, workers=1, attempts=1)  # type: ignore[arg-type]
    try:
        report = retier.retier(engine_on(store, book), executor, RunOptions(full=True, as_of=AS_OF))
    finally:
        executor.close()
        for s in opened:
            s.close()
    try:
        assert report.status == "failed" and "page 1" in str(report.error), report.error
        with store.begin() as conn:
            pending = conn.execute(
                sa.select(schema.outbox.c.run_id).where(schema.outbox.c.status == "pending")
            ).scalars()
            cited = set(pending)
            dead = runs.died(conn, cited)
        # committed, then failed while writing: every write it left may have gone out
        assert cited == {died_run_id(UnitRef(report.run_id, 1))}
        assert dead == cited  # the next run holds them as a dead run's
    finally:
        store.close()


class LateBeat:
    """``sync.retier.UnitExecutor``: a unit's first attempt runs on a thread that stops
    after the page's commit, before its writes; meanwhile the job runs again here (the
    retry), then the first attempt goes on and finishes the unit."""

    def __init__(self, url: str, book: Book, monkeypatch: pytest.MonkeyPatch) -> None:
        self.url, self.book = url, book
        self.committed, self.go = threading.Event(), threading.Event()
        self.retried: list[BaseException | None] = []
        self.status_after_retry = ""
        self.stores: list[StateStore] = []
        sending = retier_worker.send_full_batches

        def late(*args: object) -> None:
            if threading.current_thread().name == "first-attempt":
                self.committed.set()
                self.go.wait()
            sending(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(retier_worker, "send_full_batches", late)

    def engine(self) -> SyncEngine:
        self.stores.append(StateStore.open(self.url))
        return engine_on(self.stores[-1], self.book)

    def submit(self, unit: UnitRef) -> None:
        first = threading.Thread(
            target=retier_worker.run_unit, args=(self.engine(), unit), name="first-attempt"
        )
        first.start()
        try:
            assert self.committed.wait(timeout=300)  # a guard against a hang only
            try:
                retier_worker.run_unit(self.engine(), unit)
                self.retried.append(None)
            except UnitStillWritingError as exc:
                self.retried.append(exc)
            with self.stores[-1].begin() as conn:
                self.status_after_retry = units.load(conn, unit).status
        finally:
            self.go.set()
            first.join()


def test_a_retry_leaves_a_unit_whose_first_attempt_is_still_writing_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'spread.db'}"
    book = Book(PAGE)  # one page: one unit
    store = StateStore.open(url)
    late = LateBeat(url, book, monkeypatch)
    try:
        report = retier.retier(engine_on(store, book), late, RunOptions(full=True, as_of=AS_OF))
        # the first attempt holds its customers' claims: the retry is not tried
        [retried] = late.retried
        assert isinstance(retried, UnitStillWritingError), retried
        assert late.status_after_retry == "committed"
        # the first attempt finished the unit: every customer counted, no write held
        assert report.status == "succeeded", report.error
        assert report.counts.reconciles() and report.counts.read == PAGE
        with store.begin() as conn:
            cited = set(conn.execute(sa.select(schema.outbox.c.run_id)).scalars())
        assert cited == {report.run_id}
    finally:
        store.close()
        for s in late.stores:
            s.close()


class AfterTheRunStopped:
    """``sync.retier.UnitExecutor``: a unit's attempt on a thread that waits for its turn
    until the run has stopped (``stopped``), then commits if it may and dies writing."""

    def __init__(self, url: str, book: Book, monkeypatch: pytest.MonkeyPatch) -> None:
        self.url, self.book = url, book
        self.stopped = threading.Event()
        self.threads: list[threading.Thread] = []
        self.stores: list[StateStore] = []
        turn = units.wait_turn

        def late_turn(*args: Any, **kwargs: Any) -> Any:
            assert self.stopped.wait(timeout=300)  # a guard against a hang only
            return turn(*args, **kwargs)

        sending = retier_worker.send_full_batches

        def dies(*args: object) -> None:
            if threading.current_thread().name == "late-unit":
                raise RuntimeError("killed while writing")
            sending(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(units, "wait_turn", late_turn)
        monkeypatch.setattr(retier_worker, "send_full_batches", dies)

    def submit(self, unit: UnitRef) -> None:
        self.stores.append(StateStore.open(self.url))
        engine = engine_on(self.stores[-1], self.book)
        thread = threading.Thread(target=self._attempt, args=(engine, unit), name="late-unit")
        self.threads.append(thread)
        thread.start()

    def _attempt(self, engine: SyncEngine, unit: UnitRef) -> None:
        with contextlib.suppress(RuntimeError):
            retier_worker.run_unit(engine, unit)


def test_a_unit_does_not_commit_after_its_run_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'spread.db'}"
    book = Book(PAGE)  # one page: one unit
    store = StateStore.open(url)
    late = AfterTheRunStopped(url, book, monkeypatch)
    try:
        options = RunOptions(full=True, as_of=AS_OF)
        report = retier.retier(engine_on(store, book), late, options, stall_seconds=1)
        assert report.status == "failed" and "no page unit moved on" in str(report.error)
        late.stopped.set()
        for thread in late.threads:
            thread.join()
        with store.begin() as conn:
            status = units.load(conn, UnitRef(report.run_id, 1)).status
            pending = conn.execute(
                sa.select(schema.outbox.c.run_id).where(schema.outbox.c.status == "pending")
            ).scalars()
            cited = set(pending)
            dead = runs.died(conn, cited)
        assert cited == dead  # none left to be re-sent blindly (none at all here)
        assert status == "abandoned"  # its page rolled back, read again by the next run
    finally:
        store.close()
        for s in late.stores:
            s.close()
