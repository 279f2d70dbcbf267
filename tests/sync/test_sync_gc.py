"""``crmtier sync`` runs with fewer cyclic-GC passes, a full one every so many customers read,
and gives the process its settings back."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

import pytest

from crmtier.commands import sync as sync_command
from crmtier.commands.sync_gc import (
    FULL_COLLECTION_EVERY,
    GC_THRESHOLDS,
    OldestGeneration,
    fewer_collections,
)
from crmtier.config import CrmtierConfig
from sync.engine import AlreadyRunningError, RunOptions
from sync.runs import RunCounts


def test_thresholds_are_raised_for_the_run_and_restored_after_it_even_on_error() -> None:
    before = gc.get_threshold()
    assert before != GC_THRESHOLDS
    with fewer_collections():
        assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("a failed run")
    assert gc.get_threshold() == before


class _Node:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_a_cycle_in_the_oldest_generation_is_freed_once_so_many_customers_are_read() -> None:
    passed: list[tuple[int, int]] = []
    progress = OldestGeneration(lambda counts, calls: passed.append((counts.read, calls)))
    gc.disable()  # no automatic pass: only the callback's may free the cycle
    try:
        node = _Node()
        gone = weakref.ref(node)
        gc.collect()  # the cycle survives a full pass: it is in the oldest generation now
        del node
        progress(RunCounts(read=FULL_COLLECTION_EVERY - 1), 1)
        assert gone() is not None
        progress(RunCounts(read=FULL_COLLECTION_EVERY + 5), 2)
        assert gone() is None
        again = _Node()
        gone = weakref.ref(again)
        gc.collect()
        del again
        progress(RunCounts(read=2 * FULL_COLLECTION_EVERY), 3)  # counted from the last pass
        assert gone() is not None
        progress(RunCounts(read=2 * FULL_COLLECTION_EVERY + 5), 4)
        assert gone() is None
    finally:
        gc.enable()
    assert passed == [
        (FULL_COLLECTION_EVERY - 1, 1),
        (FULL_COLLECTION_EVERY + 5, 2),
        (2 * FULL_COLLECTION_EVERY, 3),
        (2 * FULL_COLLECTION_EVERY + 5, 4),
    ]


def test_crmtier_sync_runs_under_both(monkeypatch: pytest.MonkeyPatch) -> None:
    """``crmtier sync``'s run is built with ``OldestGeneration`` as its progress callback,
    under ``fewer_collections``: without the callback the raised thresholds would keep
    every promoted cycle for the whole run."""
    seen: list[tuple[object, tuple[int, int, int]]] = []

    @contextmanager
    def engine_seen(
        config: object, *, as_of: object, on_progress: object, only_fields: bool
    ) -> Iterator[None]:
        seen.append((on_progress, gc.get_threshold()))
        raise AlreadyRunningError("another run holds the stream")
        yield

    monkeypatch.setattr(sync_command, "open_engine", engine_seen)
    code = sync_command._run_once(
        cast(CrmtierConfig, None), RunOptions(), as_json=True, quiet=True, show_restricted=False
    )
    assert code == sync_command.EXIT_RUNNING
    [(progress, thresholds)] = seen
    assert isinstance(progress, OldestGeneration)
    assert thresholds == GC_THRESHOLDS
