"""Standard Webhooks (https://www.standardwebhooks.com): verify, sign, and parse our payload.

For any CRM without a native notification crmtier understands, an admin points a sender
that speaks Standard Webhooks at ``/webhooks/generic``. The signature is HMAC-SHA256 over
``{webhook-id}.{webhook-timestamp}.{raw body}`` with a ``whsec_``-prefixed base64 key; the
``webhook-signature`` header is a space-separated list of ``v1,<base64>`` entries so a
sender can sign with the old and the new key during rotation, and the receiver likewise
accepts any of its configured keys (docs/targets.md W14). Verification runs on the raw bytes, before
any JSON parsing (the Standard Webhooks specification), and compares in constant time (W3).

``sign`` exists for tests and the bench, in the spirit of Stripe's
``generate_signature_header``: tests sign real payloads instead of mocking the verifier.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from connectors.webhook_events import (
    RECORD_ID,
    ChangeEvent,
    Operation,
    WebhookRejected,
    check_timestamp,
    header_digits,
    load_json_object,
    secrets_match,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the scheme prefix, not a secret
MIN_KEY_BYTES = 24  # the spec: "random, at least 24 bytes"
_TYPE_OPERATIONS: dict[str, Operation] = {
    "customer.created": "create",
    "customer.updated": "update",
    "customer.deleted": "delete",
}


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; raises ValueError naming the problem."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook secret must be 'whsec_' followed by base64") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"webhook secret must decode to at least {MIN_KEY_BYTES} bytes")
    return key


def signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    """The raw HMAC-SHA256 digest over ``id.timestamp.body``."""
    signed = msg_id.encode("utf-8") + b"." + timestamp.encode("utf-8") + b"." + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """One ``v1,<base64>`` signature entry, as a sender puts in ``webhook-signature``."""
    return "v1," + base64.b64encode(signature(key, msg_id, timestamp, body)).decode("ascii")


def verify(
    headers: Mapping[str, str],
    body: bytes,
    keys: Sequence[bytes],
    *,
    now_s: float,
    window_s: float,
) -> str:
    """Check the three headers against any of ``keys``; return the ``webhook-id``.

    Raises ``WebhookRejected(401)`` for a missing header, a malformed or stale timestamp,
    or no matching signature."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    header = headers.get("webhook-signature")
    if not msg_id or not timestamp or not header:
        raise WebhookRejected(401, "missing webhook-id, webhook-timestamp or webhook-signature")
    check_timestamp(
        header_digits(timestamp, "webhook-timestamp", "integer seconds"), now_s, window_s
    )
    offered = [
        entry.partition(",")[2].encode("ascii", "replace")
        for entry in header.split(" ")
        if entry.startswith("v1,")
    ]
    for key in keys:
        expected = base64.b64encode(signature(key, msg_id, timestamp, body))
        # Compare against every entry, never stopping early on the first mismatch.
        matches = [secrets_match(candidate, expected) for candidate in offered]
        if any(matches):
            return msg_id
    raise WebhookRejected(401, "no valid v1 signature for any configured secret")


def parse(msg_id: str, body: bytes, record_id: re.Pattern[str] = RECORD_ID) -> list[ChangeEvent]:
    """Our generic payload: ``{"type": "customer.updated", "data": {"id": ..., "modified_at"?}}``.

    ``type`` is ``customer.created|updated|deleted``; ``data.modified_at`` (ISO 8601) is the
    record's version when the sender knows it; ``data.id`` must match ``record_id``, the
    configured CRM's id format. The ``webhook-id`` is the dedupe key."""
    payload = load_json_object(body)
    if not isinstance(payload.get("data"), dict):
        raise WebhookRejected(400, "payload needs an object 'data'")
    operation = _TYPE_OPERATIONS.get(str(payload.get("type")))
    if operation is None:
        raise WebhookRejected(400, f"type must be one of {', '.join(_TYPE_OPERATIONS)}")
    data = payload["data"]
    customer_id = data.get("id")
    if not isinstance(customer_id, str) or not record_id.fullmatch(customer_id):
        raise WebhookRejected(
            400, "data.id must be a customer id in the CRM's id format", "bad_record_id"
        )
    version = _parse_version(data.get("modified_at"))
    return [ChangeEvent("generic", f"generic:{msg_id}", customer_id, operation, version)]


def _parse_version(value: object) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise WebhookRejected(400, "data.modified_at must be an ISO 8601 time") from None
