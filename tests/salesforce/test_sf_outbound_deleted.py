"""An Outbound Message notification whose record was deleted before delivery "contains no
data" (Salesforce Help, "Considerations for Outbound Messages"): it is acknowledged with the
rest of its message and becomes no event, where refusing it would refuse the whole message
(up to 100 notifications) and Salesforce would resend it for 24 hours."""

from __future__ import annotations

import pytest

from connectors.salesforce import webhook as sf
from connectors.sandbox.salesforce_outbound import Notification, envelope
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
def test_a_notification_without_data_is_acked_and_makes_no_event(notes, customers):
    events = sf.verify_and_parse(_message(*notes), org_id=ORG_ID)
    assert [e.customer_id for e in events] == customers
    assert [e.event_key for e in events] == [f"salesforce:{LIVE.id}"] * len(customers)


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
