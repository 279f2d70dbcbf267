"""Zoho fixtures: a seeded Zoho sandbox over HTTPS and connectors built from the
crmtier.toml it writes (the shared ``sandbox_factory``/``connect`` fixtures), with retry
waits shrunk to milliseconds so storms and outages run fast."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.sandbox.zoho import ZohoSandbox
from connectors.zoho.connector import ZohoConnector

FAST_RETRIES = {"max_attempts": 4, "backoff_base": 0.001, "backoff_cap": 0.01}


@pytest.fixture
def zoho(sandbox_factory: Callable[..., Any]) -> ZohoSandbox:
    sandbox: ZohoSandbox = sandbox_factory("zoho", customers=250)
    return sandbox


@pytest.fixture
def zconnect(connect: Callable[..., Any]) -> Callable[..., ZohoConnector]:
    def make(sandbox: ZohoSandbox, **overrides: Any) -> ZohoConnector:
        connector: ZohoConnector = connect(sandbox, **{**FAST_RETRIES, **overrides})
        return connector

    return make
