"""What the sweep at every reading run's start costs (``retier_died.end_dead_runs``) in a
store that keeps many page units of finished re-tiers, with and without the index of
those still committed (``retier_units_committed``, migration 5 of component ``retier``).

    python bench/retier_sweep.py                                  # 250,000 units, SQLite
    python bench/retier_sweep.py --units 50000 --outcomes 100
    python bench/retier_sweep.py --url postgresql+psycopg://postgres@127.0.0.1/test

Units are stored as finished re-tiers leave them (done, their page dropped, their result
kept: ``--outcomes`` customers' outcomes each), 5,000 a run, none to end. Printed: the
sweep's median time over 5 runs with the index (the sweep, and its query alone: the rest
is the look for the table and the component's version), then its query with the index
dropped (the sweep itself would add it back). On PostgreSQL the units go in a
schema of their own, dropped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sync import retier_died, runs, schema  # noqa: E402
from sync import retier_units as units  # noqa: E402
from sync.store import StateStore  # noqa: E402

STREAM = "bench:accounts"
PER_RUN = 5000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=250_000)
    parser.add_argument("--outcomes", type=int, default=0, help="outcomes kept a unit")
    parser.add_argument("--url", help="a PostgreSQL URL (default: a SQLite file)")
    args = parser.parse_args()
    if args.url is None:
        path = Path(tempfile.mkdtemp()) / "sweep.db"
        run(StateStore.open(f"sqlite:///{path}"), args.units, args.outcomes)
        return
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    try:
        run(
            StateStore.open(f"{args.url}?options=-csearch_path%3D{name}"), args.units, args.outcomes
        )
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def run(store: StateStore, count: int, outcomes: int) -> None:
    try:
        store.migrate("retier", units.MIGRATIONS)
        fill(store, count, outcomes)

        def query() -> None:
            with store.begin() as conn:
                conn.execute(retier_died.dead_runs(STREAM)).all()

        sweep = median_ms(lambda: retier_died.end_dead_runs(store, STREAM))
        print(f"{count:,} units, {outcomes} outcomes each")
        print(f"  with the index: the sweep {sweep:8.2f} ms, its query {median_ms(query):8.2f} ms")
        with store.begin() as conn:
            conn.execute(sa.text("DROP INDEX retier_units_committed"))
        print(f"  without it:                        its query {median_ms(query):8.2f} ms")
    finally:
        store.close()


def fill(store: StateStore, count: int, outcomes: int) -> None:
    result = {
        "counts": {},
        "outcomes": {f"C{i:07d}": "written" for i in range(outcomes)},
        "api_calls": {},
        "tally_items": {},
        "tally_groups": {},
    }
    for start in range(0, count, PER_RUN):
        run_id = runs.new_run_id()
        with store.begin() as conn:
            conn.execute(
                schema.runs.insert().values(
                    id=run_id,
                    stream=STREAM,
                    trigger="full",
                    status="succeeded",
                    started_at="2026-01-01T00:00:00Z",
                    dry_run=False,
                    counts={},
                    api_calls={},
                )
            )
            rows = [
                {
                    "run_id": run_id,
                    "seq": seq,
                    "stream": STREAM,
                    "status": "done",
                    "options": {},
                    "result": result,
                    "updated_at": "2026-01-01T00:00:00Z",
                }
                for seq in range(min(PER_RUN, count - start))
            ]
            conn.execute(units.retier_units.insert(), rows)
    with store.begin() as conn:
        conn.execute(sa.text("ANALYZE"))


def median_ms(step: Callable[[], object]) -> float:
    times = []
    for _ in range(5):
        began = time.perf_counter()
        step()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


if __name__ == "__main__":
    main()
