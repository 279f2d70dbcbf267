"""Slowloris: idle and trickling connections are closed, and never crowd out a real sender.

Against a real uvicorn server on 127.0.0.1 configured as ``crmtier serve`` configures it
(``webhooks.connections``), and against ``crmtier serve`` itself with the file-descriptor
limit a systemd unit often has. Every wait is bounded by a socket timeout; loops are
bounded by counts."""

from __future__ import annotations

import contextlib
import logging
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.sandbox.base import Sandbox
from sync.inbox import Inbox
from tests.webhooks.test_webhook_serve import _post_fx, _serve, sandbox  # noqa: F401
from tests.webhooks.wh_live import LiveServer
from tests.webhooks.wh_payloads import ZOHO_CHANNEL, zoho_callback
from webhooks.app import create_app
from webhooks.settings import WebhooksSettings, load_webhooks

JSON = {"content-type": "application/json"}
PARTIAL = b"POST /webhooks/zoho HTTP/1.1\r\nHost: x\r\n"


@pytest.fixture
def limits(webhook_env: dict[str, str]) -> WebhooksSettings:
    return load_webhooks(
        {
            "zoho_token": "env:T_ZOHO_TOKEN",
            "zoho_channel_id": ZOHO_CHANNEL,
            "max_connections": 8,
            "header_timeout_seconds": 0.5,
        }
    )


@contextlib.contextmanager
def _connections(port: int, n: int, first_bytes: bytes = b"") -> Iterator[list[socket.socket]]:
    socks = []
    try:
        for _ in range(n):
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            if first_bytes:
                conn.sendall(first_bytes)
            socks.append(conn)
        yield socks
    finally:
        for conn in socks:
            conn.close()


def _closed_by_server(conn: socket.socket) -> bool:
    """True once the server closed ``conn`` (read returns EOF or a reset); waits at most
    the socket's timeout."""
    try:
        while conn.recv(4096):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def test_idle_and_trickling_connections_are_closed_after_the_header_timeout(
    limits: WebhooksSettings, inbox: Inbox
) -> None:
    app = create_app(limits, inbox)
    with LiveServer(app, limits, app.state.metrics) as live, _connections(live.port, 1) as idle:
        with _connections(live.port, 1, PARTIAL) as trickling:
            trickler = trickling[0]
            for _ in range(3):  # a header line every 0.2 s: never complete, never silent
                time.sleep(0.2)
                with contextlib.suppress(OSError):
                    trickler.sendall(b"X-Slow: 1\r\n")
            assert _closed_by_server(idle[0])
            assert _closed_by_server(trickler)
        metrics = httpx.get(f"{live.url}/metrics").text
    assert 'crmtier_webhook_connections_closed_total{reason="header_timeout"} 2' in metrics


def test_headers_past_the_cap_are_refused(limits: WebhooksSettings, inbox: Inbox) -> None:
    app = create_app(limits, inbox)
    huge = PARTIAL + b"X-Pad: " + b"a" * (70 * 1024)
    with LiveServer(app, limits, app.state.metrics) as live, _connections(live.port, 1) as (conn,):
        with contextlib.suppress(OSError):
            conn.sendall(huge)
        reply = conn.recv(4096)
    assert reply.startswith(b"HTTP/1.1 431")


def test_idle_connections_up_to_the_limit_do_not_stop_a_valid_delivery(
    limits: WebhooksSettings, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    """8 connections allowed, 8 held open (idle or mid-headers): a real callback is still
    acknowledged and stored, ``/healthz`` answers, the limit is logged and counted. The
    header timeout is far off, so on a slow box too only eviction can make room."""
    limits = limits.model_copy(update={"header_timeout_seconds": 60.0})
    app = create_app(limits, inbox)
    caplog.set_level(logging.WARNING, logger="webhooks.connections")
    with (
        LiveServer(app, limits, app.state.metrics) as live,
        _connections(live.port, 4) as idle,
        _connections(live.port, 4, PARTIAL) as partial,
    ):
        with httpx.Client(base_url=live.url, timeout=10) as client:
            body = zoho_callback(["5725767000003000064"])
            assert client.post("/webhooks/zoho", content=body, headers=JSON).status_code == 200
            assert client.get("/healthz").status_code == 200
            metrics = client.get("/metrics").text
        evicted = [conn for conn in idle + partial if _closed_within(conn, 0.05)]
    assert inbox.event_keys() == {"zoho:1000000068001:1718117126473:update:5725767000003000064"}
    assert evicted  # the longest-waiting connections made room
    assert 'crmtier_webhook_connections_closed_total{reason="evicted"}' in metrics
    assert "connection limit 8 reached" in caplog.text


def _closed_within(conn: socket.socket, seconds: float) -> bool:
    conn.settimeout(seconds)
    return _closed_by_server(conn)


@contextlib.contextmanager
def _file_limit(files: int) -> Iterator[None]:
    """Children started inside inherit a soft ``RLIMIT_NOFILE`` of ``files``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (files, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_serve_with_a_1024_file_limit_acks_through_1100_idle_connections(
    tmp_path: Path,
    sandbox: Sandbox,  # noqa: F811
) -> None:
    """Issue 17.3 as reported: ``crmtier serve`` under ``LimitNOFILE=1024``, 1,100 connections
    that send nothing; a signed delivery must still be acknowledged, ``/healthz`` answer,
    and the log say that the connection limit was reached."""
    with _file_limit(1024):
        served = _serve(tmp_path, sandbox, "--no-sync")
    try:
        port = int(served.url.rpartition(":")[2])
        with _connections(port, 1100), httpx.Client(base_url=served.url, timeout=10) as client:
            body = b'{"eventId": "e-1", "event": "update", "dataId": "C000000001"}'
            acknowledged = _post_fx(client, served.secret, body)
            health = client.get("/healthz").status_code
        assert acknowledged, "the delivery was not acknowledged"
        assert health == 200
    finally:
        served.process.terminate()
        served.process.wait(timeout=60)
    log = (tmp_path / "serve.log").read_text()
    assert "connection limit" in log
