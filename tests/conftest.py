"""Shared fixtures: sandboxes of any CRM, and connectors wired to them through the exact
``crmtier.toml`` text the sandbox writes for an admin (so the config path is tested too)."""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from connectors import limits
from connectors.contract import Connector
from connectors.mapping import FieldMapping, WritebackConfig
from connectors.registry import build_connector
from connectors.sandbox.base import Sandbox, open_sandbox
from tests.ram_scratch import ram_scratch

SandboxFactory = Callable[..., Sandbox]
ConnectorFactory = Callable[..., Connector]

# Hypothesis's per-example deadline and its too-slow health check are wall-clock limits: the
# default run shares two cores between parallel workers (and other jobs), where an example
# that takes 200 ms alone can take a second. A property fails on what it computes, never on
# how long that took; pytest-timeout remains the hang guard.
settings.register_profile("crmtier", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("crmtier")


def pytest_configure(config: pytest.Config) -> None:
    """Scratch files on the RAM disk where there is a roomy one (``tests/ram_scratch.py``:
    SQLite's per-commit disk syncs were most of a small sync's time). Set before xdist
    starts its workers, so they, their ``tmp_path`` and every ``crmtier`` subprocess a test
    starts inherit it."""
    root = ram_scratch(os.environ)
    if root is not None and config.option.basetemp is None:
        os.environ["TMPDIR"] = str(root)
        tempfile.tempdir = None  # gettempdir() reads TMPDIR again


@pytest.fixture(autouse=True)
def _in_process_limits() -> Iterator[None]:
    """Opening a PostgreSQL store installs the CRM limits it shares for the whole process
    (``sync/shared_limits.py``); each test starts and ends with the in-process ones."""
    limits.install(None)
    yield
    limits.install(None)


@pytest.fixture
def sandbox_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxFactory]:
    """``make(crm, customers=N, seed=S, **options)`` → a started, seeded sandbox, stopped
    after the test."""
    opened: list[Sandbox] = []

    def make(
        crm: str = "salesforce", customers: int = 50, seed: int = 7, **options: Any
    ) -> Sandbox:
        sandbox = open_sandbox(crm, data_dir=tmp_path_factory.mktemp(crm), **options)
        if customers:
            sandbox.seed(customers, seed)
        sandbox.start()
        opened.append(sandbox)
        return sandbox

    yield make
    for sandbox in opened:
        sandbox.stop()


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectorFactory]:
    """``connect(sandbox, **crm_overrides)`` → a connector built from the sandbox's own
    crmtier.toml (secrets set as the environment variables it names)."""
    made: list[Connector] = []

    def make(sandbox: Sandbox, **overrides: Any) -> Connector:
        text, env = sandbox.crmtier_config()
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        config = tomllib.loads(text)
        connector = build_connector(
            {**config["crm"], **overrides},
            FieldMapping.model_validate(config["mapping"]),
            WritebackConfig.model_validate(config["writeback"]),
        )
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()
