"""Constants and helpers of the ``crmtier calibrate`` tests (fixtures in conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

CUSTOMERS = 10_000  # per snapshot; enough for the floors to land within 2 % (measured)
SEED = 3
SENSITIVE = ["region", "age_band", "gender"]


def numbered(lines: Iterator[str]) -> Iterator[tuple[int, bytes]]:
    return ((i, line.encode()) for i, line in enumerate(lines, start=1))


def exit_2_or_written(result: Any, history: Path, proposal: Path) -> bool:
    """Whether a ``crmtier calibrate`` run wrote its proposal (exit 0), having checked that
    it ended in one of the two ways it may: that, or one exit-2 line naming the history
    with nothing written. A traceback, or any other exit, fails the test."""
    assert isinstance(result.exception, SystemExit | None), result.exc_info
    if result.exit_code == 2:
        [line] = [ln for ln in result.output.splitlines() if ln.startswith("Error: ")]
        assert line.startswith(f"Error: {history}: ")
        assert not proposal.exists()
        return False
    assert result.exit_code == 0, result.output
    return True
