"""How ``crmtier sync`` runs Python's cyclic garbage collector: seldom, with a full pass
every ``FULL_COLLECTION_EVERY`` customers read."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sync.runs import RunCounts

#: gen-0 threshold for a sync run (Python's default is 700), and the older generations'
GC_THRESHOLDS = (1_000_000, 50, 1_000)

#: customers read between two full collections of a sync run (``OldestGeneration``)
FULL_COLLECTION_EVERY = 20_000

Progress = Callable[[RunCounts, int], None]


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector far less often during a sync run, and restore it.

    A run allocates millions of short-lived objects (records, models, rows, JSON) and keeps
    few. CPython counts allocations net of frees, so a gen-0 pass starts only when that
    many tracked objects are alive and new, and walks them all: at a threshold the size of
    a page's objects every page pays several full walks of itself. At ``GC_THRESHOLDS``
    cycles are still freed, but bench/sync.py (100,000 customers) spends 0.3 s in the
    collector instead of 7 s (at 50,000) or far more (Python's 700), for about 20 MiB more
    peak RSS. Only ``crmtier sync`` does this: in ``serve`` the receiver shares the
    process, and fewer, larger collections would land in its ack latency."""
    old = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*old)


class OldestGeneration:
    """A run's progress callback that collects every generation once each
    ``FULL_COLLECTION_EVERY`` customers read, then passes the progress on.

    Under ``GC_THRESHOLDS`` the oldest generation is in effect never collected (a pass
    needs 1,000 gen-1 passes; a 100,000-customer run makes 18). Cycles that die after a
    gen-1 pass promoted them (SQLAlchemy statements holding a page's ``IN`` lists of ids,
    calls and their retry state, futures of bulk jobs) then stay for the rest of the run
    with all they reference: about 260 bytes a customer read, the growth issue 18 measured
    at 1,000,000 customers (docs/operations.md). A full pass walks every tracked object
    (about 0.2 s at a run's size: a 300,000-customer run makes 15, 3 s of its 89 s of
    CPU), so it runs per this many customers, not per page."""

    def __init__(self, then: Progress | None = None) -> None:
        self._then = then
        self._next = FULL_COLLECTION_EVERY

    def __call__(self, counts: RunCounts, api_calls: int) -> None:
        if counts.read >= self._next:
            gc.collect()
            self._next = counts.read + FULL_COLLECTION_EVERY
        if self._then is not None:
            self._then(counts, api_calls)
