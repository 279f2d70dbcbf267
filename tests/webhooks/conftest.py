"""Fixtures for the real-time path: settings with env-referenced secrets, a real SQLite state
store, the inbox, the ASGI app, and a live uvicorn server on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.types import ASGIApp
from wh_payloads import FX_SECRET, ORG_ID, WHSEC, WHSEC_NEW, ZOHO_CHANNEL, ZOHO_TOKEN

from sync.inbox import Inbox
from sync.store import StateStore
from webhooks.app import create_app
from webhooks.settings import WebhooksSettings

NOW = 1_800_000_000.0


class Clock:
    """Epoch seconds that tests move by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


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
    return WebhooksSettings.model_validate(
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


class LiveServer:
    """uvicorn serving an app on a loopback port in a thread."""

    def __init__(self, app: ASGIApp) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
        )
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


@pytest.fixture
def live(app: Starlette) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server
