"""What a verified CRM change notification becomes: small ``ChangeEvent`` values.

Each CRM notifies differently (Salesforce Outbound Message SOAP, Zoho notification JSON,
FXiaoke workflow push, Standard Webhooks for anything else), but the receiver stores and the
worker processes one shape. A ``ChangeEvent`` only says *which* customer changed and how to
recognise a redelivery of the same notification (``event_key``); it never carries field
values, because the worker re-fetches the current record before tiering (events can be late,
duplicated or out of order, reference W12) and the inbox keeps as little data as it can (S5).

The verification helpers here are shared by every CRM's ``webhook.py``: one rejection type
whose HTTP status says what the sender did wrong, a replay-window check, and the constant-time
comparison every secret goes through (reference W3).
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Operation = Literal["create", "update", "delete"]
OPERATIONS: tuple[Operation, ...] = ("create", "update", "delete")

#: Longest event key the inbox stores; keys are built from sender ids, never from payload text.
MAX_EVENT_KEY = 200


@dataclass(frozen=True)
class ChangeEvent:
    """One customer changed in one CRM.

    ``event_key`` is unique per notification and identical on every redelivery of it (the
    sender's own id where it has one), so a durable unique index dedupes retries.
    ``version`` is the record's modstamp when the notification carries it; it is a lower
    bound for the version the worker must see when it re-fetches.
    """

    crm: str
    event_key: str
    customer_id: str
    operation: Operation = "update"
    version: datetime | None = None

    def __post_init__(self) -> None:
        if not self.event_key or len(self.event_key) > MAX_EVENT_KEY:
            raise WebhookRejected(400, f"event key must be 1..{MAX_EVENT_KEY} characters")
        if not self.customer_id:
            raise WebhookRejected(400, "notification names no record id")


class WebhookRejected(Exception):
    """The notification is refused; ``status`` is the HTTP status the receiver answers.

    400 malformed, 401 unauthenticated (bad or missing signature/token, stale timestamp),
    403 authenticated as someone else (wrong org or channel), 413 too large, 415 wrong
    content type. The message names the problem, never a secret or payload value.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def secrets_match(received: str | bytes, expected: str | bytes) -> bool:
    """Constant-time equality for secret material (signatures, tokens, org ids).

    ``hmac.compare_digest`` on bytes, so non-ASCII input cannot raise and timing does not
    reveal how long a prefix matched (a "signing oracle", per Standard Webhooks)."""
    a = received.encode("utf-8") if isinstance(received, str) else received
    b = expected.encode("utf-8") if isinstance(expected, str) else expected
    return hmac.compare_digest(a, b)


def check_timestamp(timestamp_s: float, now_s: float, window_s: float) -> None:
    """Reject a signed timestamp more than ``window_s`` seconds in the past or future.

    The boundary itself is accepted: a window of 300 admits 300 s, refuses 301 s (W2)."""
    if abs(now_s - timestamp_s) > window_s:
        raise WebhookRejected(401, "timestamp outside the replay window")


def load_json_object(body: bytes) -> dict[str, Any]:
    """Parse a (size-capped) JSON body that must be an object; 400 otherwise."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WebhookRejected(400, "body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "body must be a JSON object")
    return payload
