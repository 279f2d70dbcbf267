"""Zoho notification channels: registration and renewal before expiry (docs/targets.md W11), and the
callbacks the sandbox delivers, verified by crmtier's own Zoho webhook parser."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr

from connectors.contract import FieldUpdate, WritePlan
from connectors.errors import ConfigError
from connectors.zoho.webhook import verify_and_parse

CHANNEL = "1000000068001"
TOKEN = "k3Vd9-channel-token-0123456789abcdefXYZ"


@pytest.fixture
def receiver():
    """A local HTTP endpoint that records every callback body."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/zoho", bodies
    server.shutdown()
    server.server_close()


def test_channel_is_created_then_renewed_when_expiring_within_a_day(zoho, zconnect):
    connector = zconnect(zoho)
    now = datetime.now(UTC)
    created = connector.ensure_channel("https://crmtier.example/webhooks/zoho", CHANNEL, TOKEN)
    assert created.action == "created"
    (channel,) = zoho.channels()
    assert (channel.channel_id, channel.events, channel.token) == (CHANNEL, ["Contacts.all"], TOKEN)
    assert timedelta(hours=23) < channel.expiry - now <= timedelta(days=1)
    # Zoho lists a Contacts.all subscription as its operations ("Get Notification Details")
    (listed,) = connector.client.channels()
    assert set(listed.events) == {"Contacts.create", "Contacts.edit", "Contacts.delete"}
    # v2 channels live at most a day, so any live channel is within the 24 h renewal window
    renewed = connector.ensure_channel("https://crmtier.example/webhooks/zoho", CHANNEL, TOKEN)
    assert renewed.action == "renewed"
    assert zoho.server.calls.count("watch") == 2
    # seen from an hour earlier, the same channel has more than a day left: nothing to do
    earlier = now - timedelta(hours=1)
    unchanged = connector.ensure_channel(
        "https://crmtier.example/webhooks/zoho", CHANNEL, TOKEN, now=earlier
    )
    assert unchanged.action == "unchanged"
    assert zoho.server.calls.count("watch") == 2


def test_a_changed_url_or_token_renews_the_channel(zoho, zconnect):
    connector = zconnect(zoho)
    earlier = datetime.now(UTC) - timedelta(hours=1)
    connector.ensure_channel("https://a.example/z", CHANNEL, TOKEN)
    moved = connector.ensure_channel("https://b.example/z", CHANNEL, TOKEN, now=earlier)
    assert moved.action == "renewed"
    rotated = connector.ensure_channel(
        "https://b.example/z", CHANNEL, SecretStr(TOKEN + "2"), now=earlier
    )
    assert rotated.action == "renewed"
    (channel,) = zoho.channels()
    assert (channel.notify_url, channel.token) == ("https://b.example/z", TOKEN + "2")


def test_a_token_zoho_refuses_is_a_config_error(zoho, zconnect):
    with pytest.raises(ConfigError, match="token"):
        zconnect(zoho).ensure_channel("https://a.example/z", CHANNEL, "x" * 51)


def _channel_check(connector):
    return {c.name: c for c in connector.check()}["notifications: channel"]


def test_doctor_reports_the_channel(zoho, zconnect):
    """A fresh channel is fine, not a warning (a v2 channel always expires within a day);
    one that missed two of serve's hourly renewals is."""
    connector = zconnect(zoho)
    before = _channel_check(connector)
    assert (before.ok, before.severity) == (False, "warning")
    three_hours_ago = datetime.now(UTC) - timedelta(hours=3)
    connector.ensure_channel("https://a.example/z", CHANNEL, TOKEN, now=three_hours_ago)
    stale = _channel_check(connector)
    assert (stale.ok, stale.severity) == (True, "warning")
    assert "not renewed in the last 2 hours" in stale.detail and "serve" in stale.fix
    assert connector.ensure_channel("https://a.example/z", CHANNEL, TOKEN).action == "renewed"
    fresh = _channel_check(connector)
    assert (fresh.ok, fresh.severity, fresh.fix) == (True, "error", "")
    assert "renews hourly" in fresh.detail


def test_edits_and_our_writes_are_delivered_as_zoho_callbacks(zoho, zconnect, receiver):
    url, bodies = receiver
    connector = zconnect(zoho)
    connector.ensure_channel(url, CHANNEL, TOKEN)
    customer = zoho.customer_ids()[3]
    zoho.edit_customer(customer, {"assets.deposits": 7_000_000.0})
    connector.apply(WritePlan(field_updates=(FieldUpdate(customer, {"value_tier": "private"}),)))
    deliveries = zoho.deliveries(wait_for=2)
    assert [d.status for d in deliveries] == [200, 200]
    events = [verify_and_parse(b, token=SecretStr(TOKEN), channel_id=CHANNEL) for b in bodies]
    assert [(e.customer_id, e.operation) for batch in events for e in batch] == [
        (customer, "update"),
        (customer, "update"),
    ]
    edit, ours = (json.loads(b) for b in bodies)
    assert edit["module"] == "Contacts" and edit["affected_fields"] == [{customer: ["Deposits"]}]
    # our own write names only the write-back field: the receiver can ignore it (loop guard)
    assert ours["affected_fields"] == [{customer: ["Value_Tier"]}]
