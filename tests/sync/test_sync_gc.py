"""``crmtier sync`` runs with fewer cyclic-GC passes and gives the process its settings back."""

from __future__ import annotations

import gc

import pytest

from crmtier.commands.sync import GC_THRESHOLDS, fewer_collections


def test_thresholds_are_raised_for_the_run_and_restored_after_it_even_on_error() -> None:
    before = gc.get_threshold()
    assert before != GC_THRESHOLDS
    with fewer_collections():
        assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("a failed run")
    assert gc.get_threshold() == before
