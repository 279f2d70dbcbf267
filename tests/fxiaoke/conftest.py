"""Fixtures: an FXiaoke sandbox over real HTTPS and connectors built from its own config."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.fxiaoke.client import FxiaokeClient
from connectors.fxiaoke.config import load_config
from connectors.fxiaoke.connector import FxiaokeConnector
from connectors.mapping import FieldMapping, WritebackConfig
from connectors.sandbox.fxiaoke import FxiaokeSandbox

MakeSandbox = Callable[..., FxiaokeSandbox]
Connect = Callable[..., FxiaokeConnector]


@pytest.fixture
def make_sandbox(tmp_path: Path) -> Iterator[MakeSandbox]:
    started: list[FxiaokeSandbox] = []

    def make(customers: int = 40, **options: Any) -> FxiaokeSandbox:
        sandbox = FxiaokeSandbox(data_dir=tmp_path / f"sb{len(started)}", **options)
        if customers:
            sandbox.seed(customers)
        started.append(sandbox.start())
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> FxiaokeSandbox:
    return make_sandbox()


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch) -> Iterator[Connect]:
    """Build a connector from ``sandbox.crmtier_config()``, with ``[crm]`` overrides."""
    built: list[FxiaokeConnector] = []

    def connect(
        sandbox: FxiaokeSandbox, *, clock: Any = None, sleep: Any = None, **crm: Any
    ) -> FxiaokeConnector:
        text, env = sandbox.crmtier_config()
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        cfg = tomllib.loads(text)
        config = load_config({**cfg["crm"], **crm})
        kwargs: dict[str, Any] = {}
        if clock is not None:
            kwargs["clock"] = clock
        if sleep is not None:
            kwargs["sleep"] = sleep
        connector = FxiaokeConnector(
            config,
            FieldMapping.model_validate(cfg["mapping"]),
            WritebackConfig.model_validate(cfg["writeback"]),
            client=FxiaokeClient(config, **kwargs),
        )
        built.append(connector)
        return connector

    yield connect
    for connector in built:
        connector.close()


@pytest.fixture
def read_ids() -> Callable[..., list[str]]:
    """Every customer id ``read_changed(since)`` yields, in order."""

    def read(connector: FxiaokeConnector, since: Any = None) -> list[str]:
        return [r.profile.id for page in connector.read_changed(since) for r in page.records]

    return read
