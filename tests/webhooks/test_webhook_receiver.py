"""The receiver over HTTP: ack only after a durable insert, refuse everything else and store
nothing (docs/targets.md W1, W2, W4, W8, W9, W10, W14)."""

from __future__ import annotations

import concurrent.futures
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from sync.inbox import Added, Inbox
from tests.webhooks.wh_live import Clock, LiveServer
from tests.webhooks.wh_payloads import (
    BILLION_LAUGHS,
    DEEP,
    EXTERNAL_DTD,
    FX_SECRET,
    QUADRATIC,
    WHSEC,
    WHSEC_NEW,
    XXE,
    fxiaoke_push,
    generic_event,
    salesforce_om,
    zoho_callback,
)
from webhooks.app import create_app
from webhooks.settings import load_webhooks

SOAP = {"content-type": "text/xml; charset=utf-8", "soapaction": '""'}
JSON = {"content-type": "application/json"}
SF_ID = "0015g00000AAAAAAAA"


def test_salesforce_outbound_message_is_acked_after_it_is_stored(
    client: TestClient, inbox: Inbox
) -> None:
    body = salesforce_om(
        [("04l5g000000AAAAAAA", SF_ID), ("04l5g000000AAAABAA", "0015g00000BBBBBBBB")]
    )
    response = client.post("/webhooks/salesforce", content=body, headers=SOAP)
    assert response.status_code == 200
    assert b"<Ack>true</Ack>" in response.content
    assert response.headers["content-type"].startswith("text/xml")
    assert inbox.event_keys() == {"salesforce:04l5g000000AAAAAAA", "salesforce:04l5g000000AAAABAA"}


def test_each_crm_route_acks_its_own_way(client: TestClient, inbox: Inbox, clock: Clock) -> None:
    zoho = client.post(
        "/webhooks/zoho", content=zoho_callback(["5725767000003000064"]), headers=JSON
    )
    assert zoho.status_code == 200 and zoho.json() == {"ok": True, "new_events": 1}
    body, headers = fxiaoke_push("evt-1", "6501abc", now_s=clock.now)
    fx = client.post("/webhooks/fxiaoke", content=body, headers=headers)
    assert fx.status_code == 200 and fx.text == "success"
    body, headers = generic_event("msg_1", "C1", now_s=clock.now)
    generic = client.post("/webhooks/generic", content=body, headers=headers)
    assert generic.status_code == 200
    assert len(inbox.event_keys()) == 3


def _sf(**kw: object) -> tuple[str, bytes, dict[str, str]]:
    return "/webhooks/salesforce", salesforce_om([("04l5g000000AAAAAAA", SF_ID)], **kw), SOAP  # type: ignore[arg-type]


Build = Callable[[float], tuple[str, bytes, dict[str, str]]]


def _signed(
    route: str,
    sign: Callable[[float], tuple[bytes, dict[str, str]]],
    *,
    skew: float = 0,
    drop: str = "",
    tamper: bytes = b"",
) -> Build:
    """A signed request for ``route`` sent ``skew`` seconds off, minus header ``drop``, with
    ``tamper`` appended to the body after signing."""

    def build(now: float) -> tuple[str, bytes, dict[str, str]]:
        body, headers = sign(now + skew)
        headers.pop(drop, None)
        return route, body + tamper, headers

    return build


def _fx(secret: str = FX_SECRET, **kw: Any) -> Build:
    sign = lambda at: fxiaoke_push("evt-9", "6501abc", now_s=at, secret=secret)  # noqa: E731
    return _signed("/webhooks/fxiaoke", sign, **kw)


def _generic(secrets: tuple[str, ...] = (WHSEC,), **kw: Any) -> Build:
    sign = lambda at: generic_event("msg_9", "C1", now_s=at, secrets=secrets)  # noqa: E731
    return _signed("/webhooks/generic", sign, **kw)


def _zoho(**kw: object) -> Callable[[float], tuple[str, bytes, dict[str, str]]]:
    return lambda _now: ("/webhooks/zoho", zoho_callback(["1"], **kw), JSON)  # type: ignore[arg-type]


REJECTIONS = [
    pytest.param(lambda _n: _sf(org_id="00D5g000004ZZZZZZZ"), 403, id="salesforce-wrong-org"),
    pytest.param(
        lambda _n: ("/webhooks/salesforce", BILLION_LAUGHS, SOAP), 400, id="billion-laughs"
    ),
    pytest.param(lambda _n: ("/webhooks/salesforce", XXE, SOAP), 400, id="external-entity"),
    pytest.param(lambda _n: ("/webhooks/salesforce", EXTERNAL_DTD, SOAP), 400, id="external-dtd"),
    pytest.param(lambda _n: ("/webhooks/salesforce", QUADRATIC, SOAP), 400, id="quadratic-blowup"),
    pytest.param(lambda _n: ("/webhooks/salesforce", DEEP, SOAP), 400, id="deep-nesting"),
    pytest.param(
        lambda _n: ("/webhooks/salesforce", b"<a" * 600_000, SOAP), 413, id="soap-too-large"
    ),
    pytest.param(
        lambda _n: ("/webhooks/salesforce", salesforce_om([("04l5g000000AAAAAAA", SF_ID)]), JSON),
        415,
        id="soap-as-json",
    ),
    pytest.param(_zoho(token="wrong-token"), 401, id="zoho-wrong-token"),
    pytest.param(_zoho(token=""), 401, id="zoho-empty-token"),
    pytest.param(_zoho(channel_id="42"), 403, id="zoho-wrong-channel"),
    pytest.param(
        lambda _n: ("/webhooks/zoho", zoho_callback(["1"]), {"content-type": "text/plain"}),
        415,
        id="zoho-text",
    ),
    pytest.param(
        lambda _n: ("/webhooks/zoho", b"{" + b" " * 300_000 + b"}", JSON), 413, id="json-too-large"
    ),
    pytest.param(_fx(secret="another-secret-long-enough"), 401, id="fxiaoke-wrong-secret"),
    pytest.param(_fx(tamper=b" "), 401, id="fxiaoke-tampered"),
    pytest.param(_fx(drop="x-fx-signature"), 401, id="fxiaoke-missing-signature"),
    pytest.param(_fx(drop="x-fx-timestamp"), 401, id="fxiaoke-missing-timestamp"),
    pytest.param(_fx(skew=-301), 401, id="fxiaoke-stale"),
    pytest.param(_fx(skew=301), 401, id="fxiaoke-future"),
    pytest.param(_generic(secrets=(WHSEC_NEW,)), 401, id="generic-wrong-secret"),
    pytest.param(_generic(tamper=b" "), 401, id="generic-tampered"),
    pytest.param(_generic(drop="webhook-id"), 401, id="generic-missing-id"),
    pytest.param(_generic(drop="webhook-signature"), 401, id="generic-missing-signature"),
    pytest.param(_generic(drop="webhook-timestamp"), 401, id="generic-missing-timestamp"),
    pytest.param(_generic(skew=-301), 401, id="generic-stale"),
    pytest.param(_generic(skew=301), 401, id="generic-future"),
]


@pytest.mark.parametrize(("build", "status"), REJECTIONS)
def test_rejections_store_nothing(
    client: TestClient,
    inbox: Inbox,
    clock: Clock,
    build: Callable[[float], tuple[str, bytes, dict[str, str]]],
    status: int,
) -> None:
    path, body, headers = build(clock.now)
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert b"Ack" not in response.content
    assert inbox.event_keys() == set()
    assert FX_SECRET not in response.text and "MfKQ9r8" not in response.text


@pytest.mark.parametrize("skew", [-299, 299, -300, 300])
def test_timestamps_inside_the_window_are_accepted(
    client: TestClient, inbox: Inbox, clock: Clock, skew: int
) -> None:
    for build in (_fx(skew=skew), _generic(skew=skew)):
        path, body, headers = build(clock.now)
        assert client.post(path, content=body, headers=headers).status_code == 200
    assert len(inbox.event_keys()) == 2


def test_unconfigured_routes_are_not_mounted(webhook_env: dict[str, str], inbox: Inbox) -> None:
    only_zoho = load_webhooks({"zoho_token": "env:T_ZOHO_TOKEN", "zoho_channel_id": "1"})
    with TestClient(create_app(only_zoho, inbox)) as client:
        body = salesforce_om([("04l5g000000AAAAAAA", SF_ID)])
        assert client.post("/webhooks/salesforce", content=body, headers=SOAP).status_code == 404
        assert client.post("/webhooks/generic", content=b"{}", headers=JSON).status_code == 404
    assert inbox.event_keys() == set()


@pytest.mark.parametrize("deliveries", [1, 2, 5, 10])
def test_redeliveries_are_stored_once(
    client: TestClient, inbox: Inbox, clock: Clock, deliveries: int
) -> None:
    body = salesforce_om([("04l5g000000AAAAAAA", SF_ID)])
    for _ in range(deliveries):
        assert client.post("/webhooks/salesforce", content=body, headers=SOAP).status_code == 200
    assert inbox.stats(clock_dt(clock)).depth == 1


def test_concurrent_redeliveries_are_stored_once(live: LiveServer, inbox: Inbox) -> None:
    import httpx

    body = salesforce_om([("04l5g000000AAAAAAA", SF_ID), ("04l5g000000AAAABAA", SF_ID)])
    zoho = zoho_callback(["5725767000003000064"])

    def send(i: int) -> int:
        with httpx.Client(base_url=live.url) as http:
            if i % 2:
                return http.post("/webhooks/zoho", content=zoho, headers=JSON).status_code
            return http.post("/webhooks/salesforce", content=body, headers=SOAP).status_code

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(send, range(20)))
    assert statuses == [200] * 20
    assert len(inbox.event_keys()) == 3
    metrics = httpx.get(f"{live.url}/metrics").text
    assert 'crmtier_webhook_events_total{outcome="accepted"} 3' in metrics
    assert 'crmtier_webhook_events_total{outcome="duplicate"} 27' in metrics


def test_rotation_mid_stream_rejects_no_legitimate_delivery(
    webhook_env: dict[str, str], inbox: Inbox, clock: Clock
) -> None:
    rotating = load_webhooks(
        {
            "secrets": [
                "env:T_WHSEC_NEW",
                {"ref": "env:T_WHSEC", "not_after": "2027-01-15T08:00:00Z"},
            ]
        }
    )
    grace_end = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    clock.now = grace_end - 600
    with TestClient(create_app(rotating, inbox, clock=clock)) as client:
        statuses = []
        for i in range(1000):
            # The sender switches keys half way, and signs with both for a while in between.
            signers = (WHSEC,) if i < 400 else (WHSEC, WHSEC_NEW) if i < 600 else (WHSEC_NEW,)
            body, headers = generic_event(f"msg_{i}", f"C{i}", now_s=clock.now, secrets=signers)
            statuses.append(
                client.post("/webhooks/generic", content=body, headers=headers).status_code
            )
        assert statuses == [200] * 1000
        clock.now = grace_end
        old_body, old_headers = generic_event("msg_old", "C1", now_s=clock.now, secrets=(WHSEC,))
        assert (
            client.post("/webhooks/generic", content=old_body, headers=old_headers).status_code
            == 401
        )
        new_body, new_headers = generic_event(
            "msg_new", "C1", now_s=clock.now, secrets=(WHSEC_NEW,)
        )
        assert (
            client.post("/webhooks/generic", content=new_body, headers=new_headers).status_code
            == 200
        )
    assert len(inbox.event_keys()) == 1001


def test_oversized_chunked_body_is_refused_without_reading_it_whole(
    live: LiveServer, inbox: Inbox
) -> None:
    """A body with no Content-Length is cut off at the cap: the server answers 413 while
    the client is still sending, long before the 8 MB it announced by its chunks."""
    chunk = b"x" * 65536
    total_planned, sent = 128 * len(chunk), 0
    with socket.create_connection(("127.0.0.1", live.port), timeout=30) as conn:
        conn.sendall(
            b"POST /webhooks/zoho HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        conn.settimeout(0.05)
        reply = b""
        while sent < total_planned and not reply:
            try:
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                reply = conn.recv(4096)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        conn.settimeout(30)
        while b"\r\n" not in reply:
            reply += conn.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413")
    assert sent < total_planned
    assert inbox.event_keys() == set()


def test_a_body_trickled_too_slowly_is_a_408(webhook_env: dict[str, str], inbox: Inbox) -> None:
    impatient = load_webhooks(
        {"zoho_token": "env:T_ZOHO_TOKEN", "zoho_channel_id": "1", "body_timeout_seconds": 0.5}
    )
    with (
        LiveServer(create_app(impatient, inbox)) as live,
        socket.create_connection(("127.0.0.1", live.port), timeout=30) as conn,
    ):
        conn.sendall(
            b"POST /webhooks/zoho HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        reply = b""
        while b"\r\n" not in reply:
            reply += conn.recv(4096)
    assert reply.startswith(b"HTTP/1.1 408")
    assert inbox.event_keys() == set()


def test_inbox_outage_is_a_503_so_the_sender_retries(
    client: TestClient, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    def down(*_: object) -> Added:
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(inbox, "add_batch", down)
    body = salesforce_om([("04l5g000000AAAAAAA", SF_ID)])
    response = client.post("/webhooks/salesforce", content=body, headers=SOAP)
    assert response.status_code == 503
    assert b"Ack" not in response.content
    assert response.headers["retry-after"] == "5"


def test_health_and_metrics(client: TestClient, clock: Clock) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    client.post("/webhooks/zoho", content=zoho_callback(["1", "2"]), headers=JSON)
    client.post("/webhooks/zoho", content=zoho_callback(["1"], token="bad"), headers=JSON)
    clock.now += 42
    text = client.get("/metrics").text
    assert "crmtier_inbox_depth 2" in text
    assert "crmtier_inbox_oldest_pending_age_seconds 42.0" in text
    assert 'crmtier_webhook_requests_total{route="zoho",status="200"} 1' in text
    assert 'crmtier_webhook_requests_total{route="zoho",status="401"} 1' in text
    assert 'crmtier_webhook_events_total{outcome="accepted"} 2' in text


def clock_dt(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock.now, UTC)
