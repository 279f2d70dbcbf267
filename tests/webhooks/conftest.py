"""Fixtures for the real-time path: settings with env-referenced secrets, a real SQLite state
store, the inbox, the ASGI app, and a live uvicorn server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from sync.inbox import Inbox
from sync.store import StateStore
from tests.webhooks.wh_live import Clock, LiveServer
from tests.webhooks.wh_payloads import FX_SECRET, ORG_ID, WHSEC, WHSEC_NEW, ZOHO_CHANNEL, ZOHO_TOKEN
from webhooks.app import create_app
from webhooks.settings import WebhooksSettings, load_webhooks


@pytest.fixture
def webhook_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "T_WHSEC": WHSEC,
        "T_WHSEC_NEW": WHSEC_NEW,
        "T_ZOHO_TOKEN": ZOHO_TOKEN,
        "T_FX_SECRET": FX_SECRET,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def settings(webhook_env: dict[str, str]) -> WebhooksSettings:
    return load_webhooks(
        {
            "secrets": ["env:T_WHSEC"],
            "salesforce_org_id": ORG_ID,
            "zoho_token": "env:T_ZOHO_TOKEN",
            "zoho_channel_id": ZOHO_CHANNEL,
            "fxiaoke_secret": "env:T_FX_SECRET",
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    state = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield state
    state.close()


@pytest.fixture
def inbox(store: StateStore) -> Inbox:
    return Inbox(store)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(settings: WebhooksSettings, inbox: Inbox, clock: Clock) -> Starlette:
    return create_app(settings, inbox, clock=clock)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def live(app: Starlette) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server
