"""Sandbox workflow push: signed as docs/webhooks.md says, retried once, not for our writes."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.contract import FieldUpdate, WritePlan
from connectors.fxiaoke import webhook
from connectors.fxiaoke.connector import FxiaokeConnector
from connectors.sandbox.fxiaoke import FxiaokeSandbox
from connectors.sandbox.generator import customer_id

Connect = Callable[..., FxiaokeConnector]


@dataclass
class Receiver:
    """A loopback endpoint standing in for crmtier's /webhooks/fxiaoke."""

    statuses: list[int] = field(default_factory=list)  # answers to give, then 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            rec.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = rec.statuses.pop(0) if rec.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/fxiaoke"
    yield rec
    server.shutdown()
    server.server_close()


def test_a_crm_edit_is_pushed_signed(sandbox: FxiaokeSandbox, receiver: Receiver) -> None:
    sandbox.set_notification_target(receiver.url)
    sandbox.edit_customer(customer_id(4), {"assets.deposits": 9_000_000.0})
    assert sandbox.push.drain()
    ((headers, body),) = receiver.received
    timestamp = headers["x-fx-timestamp"]
    expected = hmac.new(
        sandbox.push_secret.encode(), timestamp.encode() + body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(headers["x-fx-signature"], expected)
    assert abs(int(timestamp) - time.time() * 1000) < 60_000
    assert headers["content-type"] == "application/json"
    payload = json.loads(body)
    assert payload.keys() == {
        "eventId",
        "event",
        "tenantId",
        "objectApiName",
        "dataId",
        "timestamp",
        "data",
    }
    assert (payload["event"], payload["objectApiName"], payload["dataId"]) == (
        "update",
        "AccountObj",
        customer_id(4),
    )
    assert "9000000" not in body.decode()  # ids and stamps only: no customer data in a push


def test_the_receivers_verifier_accepts_the_push(
    sandbox: FxiaokeSandbox, receiver: Receiver
) -> None:
    """Interop with connectors/fxiaoke/webhook.py (the receiver side)."""
    sandbox.set_notification_target(receiver.url)
    new_id = sandbox.add_customer({"assets.deposits": 10.0})
    assert sandbox.push.drain()
    ((headers, body),) = receiver.received
    secret = SecretStr(sandbox.push_secret)
    webhook.verify(headers, body, secret=secret, now_s=time.time(), window_s=300)
    (event,) = webhook.parse(body)
    assert (event.customer_id, event.operation) == (new_id, "create")
    with pytest.raises(webhook.WebhookRejected):
        webhook.verify(headers, body + b" ", secret=secret, now_s=time.time(), window_s=300)


def test_a_failed_push_is_retried_once_then_dropped(
    sandbox: FxiaokeSandbox, receiver: Receiver
) -> None:
    sandbox.set_notification_target(receiver.url)
    receiver.statuses = [503]
    sandbox.edit_customer(customer_id(1), {"feedback.csat": 2.0})
    assert sandbox.push.drain()
    assert len(receiver.received) == 2 and sandbox.push.deliveries[0].delivered
    receiver.statuses = [500, 500, 500]
    sandbox.edit_customer(customer_id(2), {"feedback.csat": 2.0})
    assert sandbox.push.drain()
    assert len(receiver.received) == 4  # one retry only, like FXiaoke
    assert not sandbox.push.deliveries[1].delivered
    ids = {json.loads(b)["eventId"] for _, b in receiver.received}
    assert len(ids) == 2  # a retry repeats the event id, so the receiver dedupes it


def test_crmtiers_own_writes_do_not_fire_the_workflow(
    sandbox: FxiaokeSandbox, receiver: Receiver, connect: Connect
) -> None:
    sandbox.set_notification_target(receiver.url)
    connector = connect(sandbox)
    plan = WritePlan(field_updates=(FieldUpdate(customer_id(3), {"value_tier": "mass"}),))
    assert connector.apply(plan)[0].ok
    sandbox.edit_customer(customer_id(3), {"feedback.nps": 50})  # a user's edit does
    assert sandbox.push.drain()
    assert [json.loads(b)["dataId"] for _, b in receiver.received] == [customer_id(3)]
    assert len(receiver.received) == 1


def test_no_target_no_push(sandbox: FxiaokeSandbox) -> None:
    sandbox.edit_customer(customer_id(1), {"feedback.csat": 3.0})
    assert sandbox.push.drain() and sandbox.push.deliveries == []


def test_crmtier_config_names_the_push_secret(sandbox: FxiaokeSandbox) -> None:
    text, env = sandbox.crmtier_config("ACME")
    assert 'fxiaoke_secret = "env:ACME_FXIAOKE_SECRET"' in text
    assert env["ACME_FXIAOKE_SECRET"] == sandbox.push_secret
    assert sandbox.push_secret not in text and sandbox.app_secret not in text
