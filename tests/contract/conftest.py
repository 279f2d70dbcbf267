"""The contract suite runs over every registered CRM plugin plus the test-only in-memory
CRM, which is registered here the way a separately installed package registers one: a
distribution on ``sys.path`` whose metadata holds one ``crmtier.connectors`` entry point."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors import registry

#: the directory holding the in-memory CRM's distribution metadata (its one entry point)
MEMORY_DIST = Path(__file__).parent / "memory_dist"
MEMORY = "memory"


@pytest.fixture(autouse=True)
def memory_crm(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The in-memory CRM registered for the test, and forgotten after it."""
    monkeypatch.syspath_prepend(str(MEMORY_DIST))
    registry.reload()
    yield
    monkeypatch.undo()
    registry.reload()
