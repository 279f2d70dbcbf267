"""Fixtures: the shared sandbox and connector factories (tests/conftest.py), narrowed to
FXiaoke, plus injectable clock and sleep for tests of time-dependent behaviour."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.fxiaoke.client import FxiaokeClient
from connectors.fxiaoke.connector import FxiaokeConnector
from connectors.sandbox.fxiaoke import FxiaokeSandbox
from tests.fxiaoke.fx_wire import Wire

MakeSandbox = Callable[..., FxiaokeSandbox]
Connect = Callable[..., FxiaokeConnector]


@pytest.fixture
def make_sandbox(sandbox_factory: Callable[..., Any]) -> MakeSandbox:
    def make(customers: int = 40, **options: Any) -> FxiaokeSandbox:
        sandbox: FxiaokeSandbox = sandbox_factory("fxiaoke", customers=customers, **options)
        return sandbox

    return make


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> FxiaokeSandbox:
    return make_sandbox()


@pytest.fixture
def wire(sandbox: FxiaokeSandbox) -> Wire:
    """A bare client of the shared sandbox (tests of its wire format)."""
    return Wire(sandbox)


@pytest.fixture
def connect(connect: Callable[..., Any]) -> Iterator[Connect]:
    """``connect(sandbox, clock=..., sleep=..., **crm_overrides)``: the connector built from
    the sandbox's own crmtier.toml; with a clock or sleep, its client uses them."""
    rebuilt: list[FxiaokeConnector] = []

    def make(
        sandbox: FxiaokeSandbox,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        **crm: Any,
    ) -> FxiaokeConnector:
        built: FxiaokeConnector = connect(sandbox, **crm)
        if clock is None and sleep is None:
            return built
        kwargs: dict[str, Any] = {"sleep": sleep}
        if clock is not None:
            kwargs["clock"] = clock
        client = FxiaokeClient(built.config, **kwargs)
        connector = FxiaokeConnector(built.config, built.mapping, built.writeback, client=client)
        rebuilt.append(connector)
        return connector

    yield make
    for connector in rebuilt:
        connector.close()


@pytest.fixture
def read_ids() -> Callable[..., list[str]]:
    """Every customer id ``read_changed(since)`` yields, in order."""

    def read(connector: FxiaokeConnector, since: Any = None) -> list[str]:
        return [r.profile.id for page in connector.read_changed(since) for r in page.records]

    return read
