"""What keeping a re-tier page unit's result costs its recordings (``sync.retier_results``).

    python bench/retier_recordings.py                   # 2,000 customers, PostgreSQL
    python bench/retier_recordings.py --customers 4000 --url sqlite:////tmp/r.db

One page unit of ``--customers`` customers on an in-memory CRM that takes one record a
write call, one call at a time (as FXiaoke does): one answer a recording, the worst case
for what a recording saves of the unit's result. Run twice: as shipped, and with the
unit's recording hook (``UnitRunner._recorded``) a no-op, so the difference is what
keeping the result costs. Printed per side: the unit's wall time (coordinator, one worker
thread, store), the recordings, and the time spent in the hook, in all and a recording
over the first and the last tenth of them (flat when a recording's cost does not grow
with the unit). On PostgreSQL each side gets a schema of its own.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PG_URL = "postgresql+psycopg://postgres@127.0.0.1/test"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--url", default=PG_URL, help="a store URL (PostgreSQL: a schema a side)")
    args = parser.parse_args()
    for keep in (True, False):
        wall, spent = run_side(args.url, args.customers, keep)
        line = f"{'kept' if keep else 'no-op hook':10} wall {wall:6.2f} s"
        if keep:
            tenth = max(1, len(spent) // 10)
            line += (
                f"  recordings {len(spent)}  in the hook {sum(spent):.2f} s"
                f" (first tenth {1000 * sum(spent[:tenth]) / tenth:.2f} ms a recording,"
                f" last tenth {1000 * sum(spent[-tenth:]) / tenth:.2f} ms)"
            )
        print(line, flush=True)


def run_side(url: str, customers: int, keep: bool) -> tuple[float, list[float]]:
    import sqlalchemy as sa

    from connectors.contract import Capabilities, Cursor, Page
    from sync.engine import RunOptions, SyncEngine
    from sync.retier import retier
    from sync.retier_threads import InProcessUnits
    from sync.retier_worker import UnitRunner
    from sync.store import StateStore
    from tests.sync.test_retier import AS_OF, Book, BookConnector, engine_on

    class OnePageOneRecordACall(BookConnector):
        capabilities = Capabilities(crm="book", page_size=customers, max_write_batch=1)

        def read_changed(self, since: Cursor | None) -> Iterator[Page]:
            with self.book.lock:
                ids = sorted(self.book.profiles, key=lambda c: (self.book.stamps[c], c))
                page = Page(tuple(self.book.record(c) for c in ids))
            self.calls.add("read")
            yield page

    spent: list[float] = []  # seconds in the hook, a recording
    kept = UnitRunner._recorded

    def timed(*args: Any) -> None:
        start = time.perf_counter()
        kept(*args)
        spent.append(time.perf_counter() - start)

    def no_op(*_: Any) -> None:
        pass

    UnitRunner._recorded = timed if keep else no_op  # type: ignore[method-assign,assignment]
    schema = f"bench_{uuid.uuid4().hex[:12]}" if url.startswith("postgresql") else None
    admin = sa.create_engine(url)
    if schema:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = f"{url}?options=-csearch_path%3D{schema}"
    book = Book(customers)
    opened: list[StateStore] = []

    def open_store() -> StateStore:
        opened.append(StateStore.open(url))
        return opened[-1]

    def engine_for() -> SyncEngine:
        store = open_store()
        engine = engine_on(store, book, OnePageOneRecordACall(book))
        engine.settings = replace(engine.settings, write_concurrency=1)
        return engine

    try:
        coordinator = engine_on(open_store(), book, OnePageOneRecordACall(book))
        executor = InProcessUnits(engine_for, workers=1)
        start = time.perf_counter()
        try:
            report = retier(coordinator, executor, RunOptions(full=True, as_of=AS_OF))
        finally:
            executor.close()
        wall = time.perf_counter() - start
        assert report.status == "succeeded", report.error
        assert report.counts.written == customers, report.counts
    finally:
        UnitRunner._recorded = kept  # type: ignore[method-assign]
        for s in opened:
            s.close()
        if schema:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return wall, spent


if __name__ == "__main__":
    main()
