"""The start of every product test's ``org`` fixture: a seeded, started sandbox and the
crmtier.toml it writes, its secrets in the environment (each fixture then edits the text)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.base import Sandbox, open_sandbox


def start_org(
    crm: str,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    started: list[Sandbox],
    *,
    prepare: Callable[[Sandbox], None] | None = None,
    **options: Any,
) -> tuple[Sandbox, str, dict[str, str]]:
    """A sandbox of ``crm`` with 20 customers (``options`` to its constructor; ``prepare``
    changes its org before it starts), appended to ``started`` for the fixture to stop, with
    the text of its crmtier.toml and the secrets it refers to, set in the environment."""
    sandbox = open_sandbox(crm, data_dir=data_dir, **options)
    if prepare is not None:
        prepare(sandbox)
    sandbox.seed(20)
    sandbox.start()
    started.append(sandbox)
    text, env = sandbox.crmtier_config()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return sandbox, text, env
