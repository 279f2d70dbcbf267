"""Run records, call counts and task caps of runs that go side by side (issue 22, the
leftovers of concurrent passes): a killed webhook pass's record is marked interrupted by
the next run or pass and a live one never is; each run counts its own CRM calls; an
owner's cap on open tasks holds across passes committing at once. Both backends."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from sync import runs
from sync.engine import RunOptions, SyncEngine, SyncSettings
from sync.schema import runs as runs_table
from sync.store import StateStore
from tests.sync.test_task_budget import AS_OF, WRITEBACK, TaskCrm, assess

STREAM = "tasks:Customer"


def engine_on(store: StateStore, crm: TaskCrm) -> SyncEngine:
    return SyncEngine(
        store,
        crm,
        WRITEBACK,
        assess,
        stream=STREAM,
        pseudonym_key=b"k" * 32,
        settings=SyncSettings(overlap=timedelta(seconds=5)),
        policy_version="memory@1",
    )


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
    webhook pass never counts as one (it does not hold the lease)."""
    with store.begin() as conn:
        runs.start(
            conn, "reader", STREAM, trigger="sync", dry_run=False, owner="x:1:1:a", ttl=timedelta(1)
        )
        runs.start(
            conn,
            "pass",
            STREAM,
            trigger="webhook",
            dry_run=False,
            owner="x:1:1:b",
            ttl=timedelta(1),
        )
        assert runs.mark_interrupted(conn, STREAM, "me", reader=False) == runs.Interrupted(0, 0)
        assert runs.mark_interrupted(conn, STREAM, "me", reader=True) == runs.Interrupted(1, 0)
    assert statuses(store)["pass"] == ("running", None)


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
