"""Zoho fixtures: a seeded Zoho sandbox over HTTPS and connectors built from the
crmtier.toml it writes (the shared ``sandbox_factory``/``connect`` fixtures), with retry
waits shrunk to milliseconds so storms and outages run fast."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

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


@pytest.fixture
def api(zoho):
    """``call(method, path, **kw)`` with a fresh access token, trusting only the sandbox CA."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(zoho.ca_bundle)
    base = zoho.server.base_url
    token = session.post(
        zoho.accounts_url,
        data={
            "grant_type": "refresh_token",
            "client_id": zoho.app.client_id,
            "client_secret": zoho.app.client_secret,
            "refresh_token": zoho.app.refresh_token,
        },
    ).json()["access_token"]

    def call(method, path, **kwargs):
        headers = {"Authorization": f"Zoho-oauthtoken {token}", **kwargs.pop("headers", {})}
        return session.request(method, base + path, headers=headers, timeout=10, **kwargs)

    yield call
    session.close()
