"""Run records, call counts and task caps of runs that go side by side (issue 22, the
leftovers of concurrent passes): a killed webhook pass's record is marked interrupted by
the next run or pass and a live one never is; each run counts its own CRM calls; an
owner's cap on open tasks holds across passes committing at once. Both backends."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from sync import runs, taskbudget
from sync.engine import RunOptions, SyncEngine
from sync.run import RunReport
from sync.schema import runs as runs_table
from sync.store import StateStore
from sync.taskbudget import Budget, TaskLimit, split
from tests.sync import test_task_budget
from tests.sync.memory_crm import memory_engine
from tests.sync.test_task_budget import AS_OF, WRITEBACK, TaskCrm, assess
from tiering_core.models import AssessmentData, CustomerProfile, TaskAction

STREAM = "tasks:Customer"


def engine_on(store: StateStore, crm: TaskCrm) -> SyncEngine:
    return memory_engine(crm, store, WRITEBACK, assess, stream=STREAM)


def dead_pid() -> int:
    """The pid of a process of this host that has ended (and was reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def statuses(store: StateStore) -> dict[str, tuple[str, str | None]]:
    with store.begin() as conn:
        rows = conn.execute(sa.select(runs_table.c.id, runs_table.c.status, runs_table.c.error))
        return {r.id: (r.status, r.error) for r in rows}


# --- 1. a killed webhook pass's record ---------------------------------------------------


@pytest.mark.parametrize("later", ["webhook pass", "sync run"])
def test_a_killed_pass_is_marked_interrupted_and_a_live_one_never_is(
    store: StateStore, later: str
) -> None:
    """Records as passes leave them: killed on this host (its process gone), on another
    host and silent past its expiry, on another host still beating, in this very process
    (another thread), and one written before records had a liveness signal. The next
    pass, or the next sync run, marks the dead ones failed and leaves the live ones be."""
    host = socket.gethostname()[:60]
    minute, gone = timedelta(minutes=1), timedelta(seconds=-1)
    records = {
        "killed_here": (f"{host}:{dead_pid()}:1:a", minute),
        "silent_elsewhere": ("elsewhere:7:1:b", gone),
        "beating_elsewhere": ("elsewhere:8:1:c", minute),
        "other_thread_here": (f"{host}:{os.getpid()}:999:d", minute),
    }
    e = engine_on(store, TaskCrm(2))
    with store.begin() as conn:
        for run_id, (owner, ttl) in records.items():
            runs.start(conn, run_id, STREAM, trigger="webhook", dry_run=False, owner=owner, ttl=ttl)
        conn.execute(
            runs_table.insert().values(
                id="before_liveness",
                stream=STREAM,
                trigger="webhook",
                status="running",
                dry_run=False,
                started_at="2026-01-01T00:00:00.000000Z",
                counts={},
                api_calls={},
            )
        )
    if later == "webhook pass":
        report = e.process_records(e.connector.fetch(["C00"]))
    else:
        report = e.run(RunOptions(as_of=AS_OF))
    assert report.status == "succeeded", report.error
    after = statuses(store)
    for run_id in ("killed_here", "silent_elsewhere", "before_liveness"):
        assert after[run_id] == ("failed", runs.INTERRUPTED), run_id
    for run_id in ("beating_elsewhere", "other_thread_here"):
        assert after[run_id] == ("running", None), run_id
    assert after[report.run_id][0] == "succeeded"


def test_a_reader_still_marks_every_other_reading_run_it_outlived(store: StateStore) -> None:
    """The stream's lease makes a sync run the one reader: another reading run's record
    still ``running`` is a dead run's whatever its heartbeat said, as before; and a
    webhook pass never counts as one (it does not hold the lease). A pass leaves even a
    dead reader's record to the next reader, which must know it follows a dead run."""
    records = {
        "live_reader": ("sync", timedelta(days=1)),
        "dead_reader": ("backfill", timedelta(seconds=-1)),
        "pass": ("webhook", timedelta(days=1)),
    }
    with store.begin() as conn:
        for run_id, (trigger, ttl) in records.items():
            owner = f"elsewhere:1:1:{run_id}"
            runs.start(conn, run_id, STREAM, trigger=trigger, dry_run=False, owner=owner, ttl=ttl)
        assert runs.mark_interrupted(conn, STREAM, "me", reader=False) == runs.Interrupted(0, 0)
        still = sa.select(runs_table.c.status).where(runs_table.c.id == "dead_reader")
        assert conn.execute(still).scalar_one() == "running"
        assert runs.mark_interrupted(conn, STREAM, "me", reader=True) == runs.Interrupted(2, 0)
    after = statuses(store)
    assert after["live_reader"] == after["dead_reader"] == ("failed", runs.INTERRUPTED)
    assert after["pass"] == ("running", None)


def test_a_run_record_names_its_owner_and_its_heartbeat_moves_the_expiry(
    store: StateStore,
) -> None:
    e = engine_on(store, TaskCrm(2))
    report = e.run(RunOptions(as_of=AS_OF))
    with store.begin() as conn:
        row = conn.execute(sa.select(runs_table).where(runs_table.c.id == report.run_id)).one()
    host, pid = row.owner.split(":")[:2]
    assert (host, int(pid)) == (socket.gethostname()[:60], os.getpid())
    assert row.status == "succeeded"

    def expiry() -> float:
        with store.begin() as conn:
            query = sa.select(runs_table.c.expires_at).where(runs_table.c.id == "beating")
            return float(conn.execute(query).scalar_one())

    ttl = timedelta(milliseconds=300)
    with store.begin() as conn:
        runs.start(conn, "beating", STREAM, trigger="webhook", dry_run=False, owner="o", ttl=ttl)
    first = expiry()
    heartbeat = runs.keep_alive(store, "beating", "o", ttl)
    try:
        while expiry() <= first:  # renewed every 100 ms (pytest-timeout guards a hang)
            time.sleep(0.02)
    finally:
        heartbeat.stop()


# --- 2. each run's own CRM calls ----------------------------------------------------------


@pytest.mark.parametrize("first", ["webhook pass", "sync run"])
def test_runs_sharing_a_connector_each_count_only_their_own_calls(
    store: StateStore, first: str
) -> None:
    """The pass beside makes its write call while the first is under way on the same
    connector; the first's record must not count it. Before, a run counted the
    difference of the connector's total over its time, the other's calls included. The
    first's reads (on the read-ahead thread) and writes (on write-pool threads) are its."""
    crm = TaskCrm(3)
    report, beside = side_by_side(engine_on(store, crm), crm, first)
    # one customer each, the same writes: the same write calls (each counted once)
    assert report.api_calls["write"] == beside.api_calls["write"] > 0, report.api_calls
    assert set(beside.api_calls) == {"write"}
    assert report.api_calls.get("read", 0) == crm.calls["read"]  # only the run reads
    assert report.api_calls["write"] + beside.api_calls["write"] == crm.calls["write"]
    with store.begin() as conn:
        stored = dict(
            conn.execute(sa.select(runs_table.c.id, runs_table.c.api_calls)).tuples().all()
        )
    assert (stored[report.run_id], stored[beside.run_id]) == (report.api_calls, beside.api_calls)


# --- 3. an owner's cap on open tasks, two passes at once ---------------------------------


class Paused:
    """``assess`` that stops the thread named ``paused`` in it until ``go`` is set, after
    it has loaded its task budget and before it commits its page."""

    def __init__(self, paused: str) -> None:
        self.paused = paused
        self.inside = threading.Event()
        self.go = threading.Event()

    def __call__(self, profiles: Sequence[CustomerProfile]) -> list[AssessmentData]:
        if threading.current_thread().name == self.paused:
            self.inside.set()
            self.go.wait()
        return assess(profiles)


def side_by_side(e: SyncEngine, crm: TaskCrm, first: str) -> tuple[RunReport, RunReport]:
    """``first`` (a webhook pass for C00, or a sync run reading only C00) is paused in its
    assessment, after it loaded its task budget and before it commits; a webhook pass for
    C02 runs from start to end meanwhile, on the same engine and connector; then the first
    goes on. Their reports: (first, beside)."""
    crm.ids = ["C00"]  # what the first reads; C02 comes after it has read
    paused = Paused("first")
    e.assess = paused
    reports: list[RunReport] = []

    def run_first() -> None:
        if first == "sync run":
            reports.append(e.run(RunOptions(as_of=test_task_budget.AS_OF)))
        else:
            reports.append(e.process_records(crm.fetch(["C00"])))

    thread = threading.Thread(target=run_first, name="first")
    thread.start()
    while not paused.inside.wait(0.05):  # a first run that fails early fails the test
        assert thread.is_alive(), reports
    crm.ids.append("C02")
    beside = e.process_records(crm.fetch(["C02"]))
    paused.go.set()
    thread.join()
    assert beside.status == "succeeded" and reports[0].status == "succeeded", reports
    return reports[0], beside


@pytest.mark.parametrize("first", ["webhook pass", "sync run"])
def test_two_passes_committing_at_once_never_overspend_an_owners_cap(
    store: StateStore, first: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RM0 may have one open ``call`` task; C00 and C02 both want one for RM0. The pass
    beside the first makes RM0's one task while the first is paused before its commit;
    when the first goes on, it must count that task: C00's waits. Before, each admitted
    against the count it loaded at its start, and RM0 got two."""
    monkeypatch.setattr(test_task_budget, "AS_OF", date.today())  # a pass's day: not due
    crm = TaskCrm(3)
    e = engine_on(store, crm)
    e.task_limits = {"call": TaskLimit(open_per_owner=1)}
    report, _ = side_by_side(e, crm, first)
    assert set(crm.tasks) == {"C02:call"}, "RM0's cap of one open task was overspent"
    assert report.counts.tasks_deferred == Counter({"call": 1})
    with store.begin() as conn:
        assert taskbudget.waiting_by_rule(conn, STREAM) == {"call": 1}


@pytest.mark.postgres
def test_on_postgresql_an_owners_second_admission_waits_for_the_first_to_commit(
    pg_store: StateStore,
) -> None:
    """Two passes recording RM0's tasks in transactions that overlap: the second's count
    waits on the owner's lock until the first commits, then sees its task (on SQLite the
    transactions themselves take turns: ``BEGIN IMMEDIATE``)."""
    limits = {"call": TaskLimit(open_per_owner=1)}
    due = date.today() + timedelta(days=5)

    def rm0_task(cid: str) -> TaskAction:
        return TaskAction(
            rule="call", subject="s", priority="normal", due=due, owner_id="RM0", dedupe_key=cid
        )

    def admit(budget: Budget, conn: sa.Connection, cid: str) -> dict[str, list[TaskAction]]:
        budget.recount(conn, STREAM, date.today(), [rm0_task(cid)])
        admitted, waiting = split(budget, [(cid, [rm0_task(cid)])])
        taskbudget.record(conn, STREAM, cid, [cid], admitted, waiting)
        return admitted

    second: list[dict[str, list[TaskAction]]] = []

    def run_second() -> None:
        with pg_store.begin() as conn:
            second.append(admit(Budget(limits), conn, "C02"))

    waiting_lock = sa.text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND classid = :first AND database = (SELECT oid FROM pg_database "
        "WHERE datname = current_database())"
    )
    with pg_store.begin() as conn:
        assert admit(Budget(limits), conn, "C00")  # RM0's one open task
        thread = threading.Thread(target=run_second)
        thread.start()
        with pg_store.engine.connect() as watch:
            while (
                thread.is_alive()
                and not watch.execute(waiting_lock, {"first": 0x63727462}).scalar()
            ):
                time.sleep(0.01)
        assert thread.is_alive(), "the second admission did not wait for the first"
    thread.join()
    assert second == [{}], "RM0 got a second open task"
