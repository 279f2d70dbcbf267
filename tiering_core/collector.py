"""Pausing Python's cyclic garbage collector around bulk object construction.

Deciding or validating thousands of customers allocates far more container objects than
the collector's generation-0 threshold, so it runs scans over and over while the batch
grows; measured, those scans cost as much as the work itself (bench/core.py). The objects
are acyclic and freed by reference counting, so pausing the collector for a bounded piece
of bulk work loses nothing; it is restored afterwards, whatever happens, and never
re-enabled if the caller had it off. The rules and the engine never pause it: the process
that runs the bulk work does (``crmtier tier`` for its run, ``simulate`` and
``calibrate`` for theirs).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
