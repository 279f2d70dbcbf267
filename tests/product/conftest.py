"""The ``org`` fixture of the ``crmtier doctor`` tests (helpers in ``product_doctor.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from product_doctor import Setup

from connectors.sandbox.base import Sandbox, open_sandbox


@pytest.fixture
def org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    """A started sandbox and its crmtier.toml (optionally edited), secrets in the env."""
    started: list[Sandbox] = []

    def make(crm: str, edit: Callable[[str], str] = lambda t: t) -> tuple[Sandbox, Path, dict]:
        sandbox = open_sandbox(crm, data_dir=tmp_path / crm)
        sandbox.seed(20)
        sandbox.start()
        started.append(sandbox)
        text, env = sandbox.crmtier_config()
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        path = tmp_path / f"{crm}.toml"
        path.write_text(edit(text), encoding="utf-8")
        return sandbox, path, env

    yield make
    for sandbox in started:
        sandbox.stop()
