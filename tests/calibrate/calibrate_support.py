"""Constants and helpers of the ``crmtier calibrate`` tests (fixtures in conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

CUSTOMERS = 10_000  # per snapshot; enough for the floors to land within 2 % (measured)
SEED = 3
SENSITIVE = ["region", "age_band", "gender"]


def numbered(lines: Iterator[str]) -> Iterator[tuple[int, bytes]]:
    return ((i, line.encode()) for i, line in enumerate(lines, start=1))
