"""``read_ahead``: same items, same order, errors where that item would have come, the
next item fetched while the caller works, and the source closed however the caller stops."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from sync.readahead import read_ahead


class Source:
    """Pages 0..n-1, optionally failing at one; records which thread fetched each."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at = n, fail_at
        self.fetched: list[int] = []
        self.second = threading.Event()  # set when page 1 has been fetched
        self.threads: set[str] = set()
        self.closed = False

    def pages(self) -> Iterator[int]:
        try:
            for i in range(self.n):
                if i == self.fail_at:
                    raise ConnectionError(f"page {i}")
                self.threads.add(threading.current_thread().name)
                self.fetched.append(i)
                if i == 1:
                    self.second.set()
                yield i
        finally:
            self.closed = True


@pytest.mark.parametrize("n", [0, 1, 2, 7])
def test_yields_every_item_in_order_and_closes_the_source(n: int) -> None:
    source = Source(n)
    assert list(read_ahead(source.pages())) == list(range(n))
    assert source.closed
    assert threading.current_thread().name not in source.threads


def test_the_next_item_is_fetched_while_the_caller_holds_this_one() -> None:
    source = Source(5)
    pages = read_ahead(source.pages())
    assert next(pages) == 0
    assert source.second.wait(timeout=30)  # fetched by the worker without being asked
    assert source.fetched == [0, 1]
    pages.close()
    assert source.closed


def test_an_error_surfaces_where_its_item_would_have_come() -> None:
    source = Source(5, fail_at=2)
    taken = []
    with pytest.raises(ConnectionError, match="page 2"):
        for page in read_ahead(source.pages()):
            taken.append(page)
    assert taken == [0, 1]
    assert source.closed


def test_stopping_early_reads_at_most_one_item_more() -> None:
    source = Source(10)
    for page in read_ahead(source.pages()):
        if page == 3:
            break
    assert source.fetched == [0, 1, 2, 3, 4]
    assert source.closed


def test_nothing_is_read_ahead_after_the_item_the_caller_takes_last() -> None:
    """The sync's page past its signpost: it stops there, so the page after it (a CRM call
    and a page of records decoded) is not fetched."""
    source = Source(10)
    assert list(read_ahead(source.pages(), last=lambda page: page == 3)) == [0, 1, 2, 3]
    assert source.fetched == [0, 1, 2, 3]
    assert source.closed
