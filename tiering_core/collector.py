"""Pausing Python's cyclic garbage collector around bulk object construction.

Validating or building thousands of pydantic models allocates far more container objects
than the collector's generation-0 threshold, so it runs scans over and over while the batch
grows; measured, those scans cost as much as the work itself (docs/targets.md P3 ingest and
materialise stages). The objects built here are acyclic and freed by reference counting,
so pausing the collector for one bounded batch loses nothing; it is restored afterwards,
whatever happens, and never re-enabled if the caller had it off.
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
