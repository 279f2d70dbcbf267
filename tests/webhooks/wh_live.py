"""A loopback uvicorn server in a thread, and a hand-moved clock, for the webhook tests."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from webhooks.connections import receiver_config
from webhooks.metrics import Metrics
from webhooks.settings import WebhooksSettings

NOW = 1_800_000_000.0


class Clock:
    """Epoch seconds that tests move by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class LiveServer:
    """uvicorn serving a receiver app on a loopback port in a thread, configured as
    ``crmtier serve`` configures it (connection limits from ``settings``, counted in
    ``metrics``)."""

    def __init__(
        self,
        app: ASGIApp,
        settings: WebhooksSettings | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = receiver_config(
            app,
            settings or WebhooksSettings(),
            metrics or Metrics(),
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
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
