"""Reading the next page while the engine works on this one.

A page read is mostly waiting: the CRM's latency, its query time, the transfer. The
engine's work on a page (assess, plan, commit) is CPU. Fetching page n+1 on a worker
thread while page n is processed overlaps the two; pages still come out one at a time,
in order, so the bookmark rules (``sync.bookmarks``) see exactly the sequence they would
without it. An error from the CRM surfaces where that page would have been taken. At
most one page is read that the run then does not process (it stops early, or fails);
the next run reads it again from the bookmark. None is when the caller says, of the page
just read, that it is the last it takes (``last``: the sync's page past its signpost).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, cast

from connectors.calltally import carry

T = TypeVar("T")

_END = object()


def read_ahead(items: Iterator[T], last: Callable[[T], bool] | None = None) -> Iterator[T]:
    """Yield ``items`` in order, fetching each next one on a thread while the caller works;
    none after an item ``last`` holds true of (each such page is a CRM call and a page of
    records decoded for nothing)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crm-read")
    try:
        pending = pool.submit(carry(next), items, _END)  # its calls count for the caller
        while True:
            item = pending.result()
            if item is _END:
                return
            if last is not None and last(cast(T, item)):
                yield cast(T, item)
                return
            pending = pool.submit(carry(next), items, _END)
            yield cast(T, item)
    finally:
        pool.shutdown(wait=True)  # the fetch under way finishes before the source closes
        close = getattr(items, "close", None)
        if close is not None:
            close()
