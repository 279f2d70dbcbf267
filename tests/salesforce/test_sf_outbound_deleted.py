"""An Outbound Message notification whose record was deleted before delivery "contains no
data" (Salesforce Help, "Considerations for Outbound Messages"): it is acknowledged with the
rest of its message and becomes no event, where refusing it would refuse the whole message
(up to 100 notifications) and Salesforce would resend it for 24 hours."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from connectors.salesforce import webhook as sf
from connectors.sandbox.salesforce_outbound import Notification, envelope
from connectors.sandbox.salesforce_wire import ORG_ID as SANDBOX_ORG_ID
from connectors.webhook_events import WebhookRejected

ORG_ID = "00D5g000004ABCDEAA"
LIVE = Notification("04l000000000001AAA", "Account", {"Id": "001000000000001AAA"})
DELETED = Notification("04l000000000002AAA", "Account", {})


def _message(*notes: Notification) -> bytes:
    return envelope(ORG_ID, "04k000000000001AAA", "https://x.my.salesforce.com", list(notes))


@pytest.mark.parametrize(
    ("notes", "customers"),
    [
        ((LIVE, DELETED), ["001000000000001AAA"]),
        ((DELETED, LIVE), ["001000000000001AAA"]),
        ((DELETED,), []),
        ((Notification(DELETED.id, "Account", {"Id": None, "SystemModstamp": None}),), []),
    ],
)
def test_a_notification_without_data_is_acked_and_makes_no_event(notes, customers, caplog):
    with caplog.at_level(logging.INFO, logger=sf.__name__):
        events = sf.verify_and_parse(_message(*notes), org_id=ORG_ID)
    assert [e.customer_id for e in events] == customers
    assert [e.event_key for e in events] == [f"salesforce:{LIVE.id}"] * len(customers)
    # it leaves no inbox row: the log is what shows it came, by notification Id alone
    (record,) = caplog.records
    assert DELETED.id in record.getMessage() and "no data" in record.getMessage()


@pytest.mark.parametrize(
    "fields",
    [
        {"Id": "not an id", "SystemModstamp": "2026-11-28T10:00:00.000Z"},
        {"Id": None, "SystemModstamp": "2026-11-28T10:00:00.000Z"},
    ],
)
def test_a_notification_with_data_but_no_valid_record_id_is_still_refused(fields):
    with pytest.raises(WebhookRejected) as info:
        sf.verify_and_parse(
            _message(LIVE, Notification(DELETED.id, "Account", fields)), org_id=ORG_ID
        )
    assert info.value.status == 400


class _Listener(BaseHTTPRequestHandler):
    """Refuses every message (500) until ``accept`` is set, then acks as crmtier does;
    ``acked`` keeps the bodies it acked."""

    acked: ClassVar[list[bytes]] = []
    accept: ClassVar[threading.Event] = threading.Event()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if not type(self).accept.is_set():
            self.send_response(500)
            self.end_headers()
            return
        type(self).acked.append(body)
        self.send_response(200)
        self.send_header("Content-Length", str(len(sf.ACK)))
        self.end_headers()
        self.wfile.write(sf.ACK)

    def log_message(self, *args):
        pass


def test_the_sandbox_sends_a_deleted_records_notification_without_data(sandbox_factory):
    """The sandbox delivers as the org does: a record deleted while its notification waits
    goes out with no data, and the receiver acks it with no event, the other record's
    change still delivered (in the same message or an earlier one)."""
    sandbox = sandbox_factory("salesforce", customers=3)
    _Listener.acked, _Listener.accept = [], threading.Event()
    listener = ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    kept, deleted = sandbox.customer_id(0), sandbox.customer_id(1)
    try:
        sandbox.set_notification_target(
            f"http://127.0.0.1:{listener.server_port}/webhooks/salesforce",
            backoff_base=0.01,
            backoff_cap=0.05,
        )
        sandbox.edit_customer(kept, {"assets.deposits": 7_000_000})
        sandbox.edit_customer(deleted, {"assets.deposits": 8_000_000})
        sandbox.store.delete("Account", deleted)  # a user deletes it before delivery
        _Listener.accept.set()
        assert sandbox.outbound.wait_idle(timeout=10)
    finally:
        listener.shutdown()
    acked = b"".join(_Listener.acked)
    assert acked.count(b"<Notification>") == 2 and deleted.encode() not in acked
    events = [
        e for body in _Listener.acked for e in sf.verify_and_parse(body, org_id=SANDBOX_ORG_ID)
    ]
    assert [e.customer_id for e in events] == [kept]
