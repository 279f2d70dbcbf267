"""The in-memory CRM's change notification: a JSON body signed with HMAC-SHA256.

``X-Memory-Timestamp`` (epoch seconds) and ``X-Memory-Signature`` (hex HMAC of
``timestamp + "." + body`` under ``[webhooks] memory_secret``), checked on the raw bytes in
constant time and against the replay window before the JSON is read, as every CRM's
verifier does (connectors/webhook_events.py has the shared pieces).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime

from connectors.webhook_events import (
    ChangeEvent,
    WebhookRejected,
    check_timestamp,
    header_digits,
    load_json_object,
    secrets_match,
)

KIND = "memory"
CONTENT_TYPES = ("application/json",)
TIMESTAMP = "x-memory-timestamp"
SIGNATURE = "x-memory-signature"
RECORD_ID = re.compile(r"C[0-9]{9}")


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def verify(
    headers: Mapping[str, str], body: bytes, *, secret: bytes, now: float, window: float
) -> list[ChangeEvent]:
    timestamp, offered = headers.get(TIMESTAMP), headers.get(SIGNATURE)
    if not timestamp or not offered:
        raise WebhookRejected(401, "missing X-Memory-Timestamp or X-Memory-Signature")
    check_timestamp(header_digits(timestamp, "X-Memory-Timestamp", "epoch seconds"), now, window)
    if not secrets_match(offered.lower(), sign(secret, timestamp, body)):
        raise WebhookRejected(401, "X-Memory-Signature does not match memory_secret")
    payload = load_json_object(body)
    event_id, record = payload.get("id"), payload.get("record")
    if not isinstance(event_id, str) or not isinstance(record, str):
        raise WebhookRejected(400, "id and record must be strings")
    if not RECORD_ID.fullmatch(record):
        raise WebhookRejected(400, "record is not a customer id", "bad_record_id")
    return [ChangeEvent(KIND, f"{KIND}:{event_id}", record, "update", _version(payload))]


def _version(payload: Mapping[str, object]) -> datetime | None:
    stamp = payload.get("modstamp")
    if stamp is None:
        return None
    try:
        return datetime.fromisoformat(str(stamp))
    except ValueError:
        raise WebhookRejected(400, "modstamp is not an ISO 8601 time") from None
