"""CRM limits shared through the PostgreSQL store (issue 22 item 3): threads and real
processes together never exceed a limit, a killed holder's slot comes back after its
lease, quotas are never overspent, and the SQLite store keeps the in-process limiters.

Every check is on recorded timestamps, not on how long anything took: calls are stamped
just after their slot is taken and just before it is given back, with the same clock the
database uses (CLOCK_REALTIME, one host), so the properties hold exactly.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors import limits
from sync import shared_limits
from sync.shared_limits import PgLimits
from sync.store import StateStore
from tests.sync.conftest import PG_URL, pg_schema

Call = tuple[float, float]  # (start, end), epoch seconds


def _engine(schema_name: str) -> sa.Engine:
    return sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema_name}"})


@pytest.fixture
def schema_name() -> Iterator[str]:
    with pg_schema() as name:
        engine = _engine(name)
        store = StateStore(engine)
        assert shared_limits.share(store) is not None
        store.close()
        yield name


def _calls(limiter: PgLimits, name: str, limit: int, window: float, n: int) -> list[Call]:
    slots = limiter.slots(name, limit, window)
    out = []
    for _ in range(n):
        with slots.slot("query"):
            start = time.time()
            time.sleep(0.002)
            out.append((start, time.time()))
    return out


def _worker(schema_name: str, name: str, limit: int, window: float, n: int, q: object) -> None:
    engine = _engine(schema_name)
    calls = _calls(PgLimits(engine, lease=30.0, poll=0.01), name, limit, window, n)
    q.put(calls)  # type: ignore[attr-defined]
    engine.dispose()


def _start(schema_name: str, procs: int, *args: object) -> Callable[[], list[Call]]:
    """Start ``procs`` worker processes (forked: each makes its own engine); the returned
    function waits for them and gives their calls."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(schema_name, *args, q)) for _ in range(procs)]
    for w in workers:
        w.start()

    def results() -> list[Call]:
        calls = [c for _ in workers for c in q.get(timeout=120)]
        for w in workers:
            w.join(timeout=60)
            assert w.exitcode == 0
        return calls

    return results


def _in_threads(limiter: PgLimits, threads: int, *args: object) -> list[Call]:
    calls: list[Call] = []
    lock = threading.Lock()

    def run() -> None:
        got = _calls(limiter, *args)  # type: ignore[arg-type]
        with lock:
            calls.extend(got)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return calls


def assert_at_most_per_window(calls: list[Call], limit: int, window: float) -> None:
    """No ``window`` seconds hold more than ``limit`` call starts."""
    starts = sorted(start for start, _ in calls)
    for i in range(len(starts) - limit):
        assert starts[i + limit] - starts[i] >= window, (i, starts[i : i + limit + 1])


def max_in_flight(calls: list[Call]) -> int:
    edges = sorted([(s, 1) for s, _ in calls] + [(e, -1) for _, e in calls])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def test_threads_and_processes_together_stay_within_the_window(schema_name: str) -> None:
    limit, window = 4, 0.25
    name = f"fx-{uuid.uuid4().hex[:8]}"
    limiter = PgLimits(_engine(schema_name), lease=30.0, poll=0.01)
    procs = _start(schema_name, 2, name, limit, window, 5)  # forked before any thread starts
    calls = _in_threads(limiter, 3, name, limit, window, 4) + procs()
    assert len(calls) == 3 * 4 + 2 * 5
    assert_at_most_per_window(calls, limit, window)
    # the limiter's own cost: a take and a give-back per call, plus polls while waiting
    assert limiter.round_trips >= 2 * 12


def test_concurrency_slots_across_processes(schema_name: str) -> None:
    name = f"sf-{uuid.uuid4().hex[:8]}"
    calls = _start(schema_name, 3, name, 2, 0.0, 6)()
    assert len(calls) == 18
    assert max_in_flight(calls) <= 2


def _hold_forever(schema_name: str, name: str, ready: object) -> None:
    slots = PgLimits(_engine(schema_name), lease=1.5).slots(name, 1, 0.0)
    with slots.slot("api"):
        ready.set()  # type: ignore[attr-defined]
        time.sleep(3600)


def test_a_killed_holders_slot_comes_back_after_its_lease(schema_name: str) -> None:
    name = f"sf-{uuid.uuid4().hex[:8]}"
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_forever, args=(schema_name, name, ready))
    holder.start()
    assert ready.wait(60)
    os.kill(holder.pid or 0, signal.SIGKILL)
    holder.join()
    limiter = PgLimits(_engine(schema_name), lease=30.0, poll=0.01)
    row = f"{name}:api"
    with limiter.engine.connect() as conn:
        freed_at = conn.execute(
            sa.text("SELECT free_at FROM crm_limit_slots WHERE name = :n"), {"n": row}
        ).scalar_one()
    # still held right after the kill ...
    got = limiter.execute(shared_limits._TAKE_SLOT, name=row, limit=1, lease=30.0, holder="probe")
    assert got is not None and got.slot is None and got.wait > 0
    # ... and taken again once the lease ran out
    with limiter.slots(name, 1, 0.0).slot("api"):
        assert time.time() >= freed_at
    assert limiter.waits >= 1


def _spend(schema_name: str, name: str, tries: int, q: object) -> None:
    limiter = PgLimits(_engine(schema_name), block=10)
    quota = limiter.quota(name, 100, 3600.0)
    granted = 0
    while granted < tries and quota.take(1):  # a refusal pauses the run
        granted += 1
    q.put((granted, limiter.round_trips))  # type: ignore[attr-defined]


def test_a_quota_is_never_overspent_by_several_processes(schema_name: str) -> None:
    name = f"zoho-{uuid.uuid4().hex[:8]}"
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    workers = [ctx.Process(target=_spend, args=(schema_name, name, 60, q)) for _ in range(3)]
    for w in workers:
        w.start()
    results = [q.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    granted = sum(g for g, _ in results)
    trips = sum(t for _, t in results)
    # 180 tries for 100 credits: the blocks left unspent in a process are lost, never
    # overspent, so the processes together get at most the limit
    assert 100 - 3 * 9 <= granted <= 100
    assert trips <= 100 // 10 + 3 * 2  # blocks of 10, a partial one and a refusal each
    with _engine(schema_name).connect() as conn:
        used = conn.execute(
            sa.text("SELECT sum(used) FROM crm_limit_quota WHERE name = :n"), {"n": name}
        ).scalar_one()
    assert used == 100


@pytest.mark.parametrize(
    ("cost", "block", "expect"), [(1, 10, 25), (3, 10, 8), (3, 1, 8), (7, 50, 3), (30, 10, 0)]
)
def test_quota_blocks_table(schema_name: str, cost: int, block: int, expect: int) -> None:
    """One process spends ``limit // cost`` takes of a limit of 25, whatever the block."""
    quota = PgLimits(_engine(schema_name), block=block).quota(f"q-{uuid.uuid4().hex}", 25, 3600)
    assert sum(quota.take(cost) for _ in range(40)) == expect


def test_sqlite_store_keeps_in_process_limiters(tmp_path: Path) -> None:
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        assert shared_limits.share(store) is None
    finally:
        store.close()
    assert limits.installed() is None
    assert limits.shared_slots("x", 1, 1.0) is None
    assert limits.shared_quota("x", 1, 1.0) is None
