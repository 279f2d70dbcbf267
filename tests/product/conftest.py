"""The ``org`` fixture of the ``crmtier doctor`` tests (helpers in ``product_doctor.py``), and
``started``: the sandboxes a test starts with ``product_org.start_org``, stopped after it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from product_doctor import Setup
from product_org import start_org

from connectors.sandbox.base import Sandbox


@pytest.fixture
def org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    """A started sandbox and its crmtier.toml (optionally edited), secrets in the env."""
    started: list[Sandbox] = []

    def make(crm: str, edit: Callable[[str], str] = lambda t: t) -> tuple[Sandbox, Path, dict]:
        sandbox, text, env = start_org(crm, tmp_path / crm, monkeypatch, started)
        path = tmp_path / f"{crm}.toml"
        path.write_text(edit(text), encoding="utf-8")
        return sandbox, path, env

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def started() -> Iterator[list[Sandbox]]:
    sandboxes: list[Sandbox] = []
    yield sandboxes
    for sandbox in sandboxes:
        sandbox.stop()
