"""Shared CRM limits benchmark: what the store-held limiter costs per CRM call (issue 22 §3).

    python bench/limits.py                      # 4 workers, about 15 s
    python bench/limits.py --workers 8 --calls 60 --latency 0.2

Real processes share limits through the local PostgreSQL (``sync/shared_limits.py``), each
making ``--calls`` simulated CRM calls of ``--latency`` seconds (a sleep: the CRM is not
the subject, the limiter is). Three phases, as the three CRMs use it:

* window: FXiaoke-style, at most ``--limit`` calls per ``--window`` seconds per interface;
* concurrency: Salesforce-style, at most half the workers' calls in flight;
* quota: Zoho-style credits, one credit per call, taken from the store in blocks of 10.

For each it prints the calls made, the most calls seen in any window / in flight (must not
exceed the limit), the limiter's own database round trips per CRM call, and the mean time
of one round trip. No CRM call is ever added by the limiter: it only delays calls.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sync.shared_limits import MIGRATIONS, PgLimits  # noqa: E402
from sync.store import StateStore  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1/test"


def _engine(schema: str) -> sa.Engine:
    return sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})


def _worker(schema: str, phase: str, args: argparse.Namespace, name: str, q: object) -> None:
    limiter = PgLimits(_engine(schema), lease=60.0)
    calls: list[tuple[float, float]] = []
    spent = time.perf_counter()
    if phase == "quota":
        quota = limiter.quota(name, args.workers * args.calls, 3600.0)
        for _ in range(args.calls):
            if quota.take(1):
                calls.append((time.time(), time.time()))
    else:
        window = args.window if phase == "window" else 0.0
        slots = limiter.slots(name, _limit(phase, args), window)
        for _ in range(args.calls):
            with slots.slot("query"):
                start = time.time()
                time.sleep(args.latency)
                calls.append((start, time.time()))
    spent = time.perf_counter() - spent
    q.put((calls, limiter.round_trips, limiter.waits, spent))  # type: ignore[attr-defined]


def _limit(phase: str, args: argparse.Namespace) -> int:
    """Concurrency is limited to half the workers, so that it binds."""
    return max(1, args.workers // 2) if phase == "concurrency" else args.limit


def _most_per_window(calls: list[tuple[float, float]], window: float) -> int:
    starts = sorted(s for s, _ in calls)
    best, j = 0, 0
    for i, s in enumerate(starts):
        while starts[j] <= s - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def _most_in_flight(calls: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in calls] + [(e, -1) for _, e in calls])
    level = best = 0
    for _, step in edges:
        level += step
        best = max(best, level)
    return best


def _trip_time(schema: str) -> float:
    """Mean seconds of one limiter round trip (a quota take that always refuses)."""
    limiter = PgLimits(_engine(schema), block=1)
    quota = limiter.quota(f"probe-{uuid.uuid4().hex}", 1, 3600.0)
    quota.take(1)
    start, n = time.perf_counter(), 200
    for _ in range(n):
        quota.take(1)
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--window", type=float, default=1.0)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    schema = f"crmtier_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        StateStore(_engine(schema)).migrate("crm_limits", MIGRATIONS)
        print(f"{args.workers} processes x {args.calls} calls, limit {args.limit}", end="")
        print(f", window {args.window} s, CRM latency {args.latency} s")
        ctx = multiprocessing.get_context("fork")
        for phase in ("window", "concurrency", "quota"):
            q = ctx.Queue()
            name = f"{phase}-{uuid.uuid4().hex[:8]}"
            procs = [
                ctx.Process(target=_worker, args=(schema, phase, args, name, q))
                for _ in range(args.workers)
            ]
            for p in procs:
                p.start()
            results = [q.get() for _ in procs]
            for p in procs:
                p.join()
            calls = [c for r in results for c in r[0]]
            trips = sum(r[1] for r in results)
            waits = sum(r[2] for r in results)
            wall = max(r[3] for r in results)
            seen = {
                "window": f"most in any {args.window} s: {_most_per_window(calls, args.window)}",
                "concurrency": f"most in flight: {_most_in_flight(calls)}",
                "quota": f"credits granted: {len(calls)} of {args.workers * args.calls}",
            }[phase]
            print(
                f"{phase:12s} calls {len(calls):5d}  {seen}  (limit {_limit(phase, args)})  "
                f"db round trips {trips} = {trips / max(len(calls), 1):.2f}/call "
                f"(polls while waiting: {waits})  wall {wall:.1f} s"
            )
        print(f"one limiter round trip: {_trip_time(schema) * 1000:.2f} ms (mean of 200)")
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
