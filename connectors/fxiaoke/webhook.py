"""FXiaoke workflow push: verify the HMAC and replay window, turn the push into an event.

FXiaoke's open platform documents no CRM record-change push (FXiaoke Open API v2 docs,
developer.fxiaoke.com/openapi_v2), so an admin adds a workflow function (APL, ``Fx.http.post``;
template in docs/fxiaoke-apl.md) that posts
``{"eventId", "event", "tenantId", "objectApiName", "dataId", "timestamp", "data"?}`` with
two headers (docs/webhooks.md):

* ``X-Fx-Timestamp``: epoch milliseconds;
* ``X-Fx-Signature``: lowercase hex HMAC-SHA256, under the shared secret, of the timestamp
  string followed directly by the raw body.

The signature is checked on the raw bytes before the JSON is parsed, in constant time, and
the timestamp must lie within the replay window (±300 s by default; FXiaoke's own demo
accepts 500 s, the plugin does not, docs/targets.md W2). FXiaoke retries a failed push only once, so
the scheduled sync remains the safety net (W13). The ``eventId`` is the dedupe key.

FXiaoke's open API (developer.fxiaoke.com/openapi_v2) documents no format for a record's
``_id``; the ids in its data query and update examples are 24 or 32 hexadecimal characters
(e.g. ``6621c7a2eb4c7f0001817f67``), so ``RECORD_ID`` accepts letters, digits, ``_`` and
``-``, at most 64 characters: nothing that needs escaping in the query re-reading the record.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from connectors.webhook_events import (
    ChangeEvent,
    Operation,
    WebhookRejected,
    check_timestamp,
    header_digits,
    load_json_object,
    secrets_match,
)

CONTENT_TYPES = ("application/json",)
TIMESTAMP_HEADER = "x-fx-timestamp"
SIGNATURE_HEADER = "x-fx-signature"
RECORD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_OPERATIONS: dict[str, Operation] = {"create": "create", "update": "update", "delete": "delete"}


def sign(secret: bytes, timestamp_ms: str, body: bytes) -> str:
    """The ``X-Fx-Signature`` value for ``body`` sent at ``timestamp_ms``."""
    return hmac.new(secret, timestamp_ms.encode("ascii") + body, hashlib.sha256).hexdigest()


def verify(
    headers: Mapping[str, str], body: bytes, *, secret: SecretStr, now_s: float, window_s: float
) -> None:
    """Raise ``WebhookRejected(401)`` unless the push is signed by ``secret`` and fresh."""
    timestamp = headers.get(TIMESTAMP_HEADER)
    offered = headers.get(SIGNATURE_HEADER)
    if not timestamp or not offered:
        raise WebhookRejected(401, "missing X-Fx-Timestamp or X-Fx-Signature")
    check_timestamp(
        header_digits(timestamp, "X-Fx-Timestamp", "epoch milliseconds") / 1000, now_s, window_s
    )
    expected = sign(secret.get_secret_value().encode("utf-8"), timestamp, body)
    if not secrets_match(offered.lower(), expected):
        raise WebhookRejected(401, "X-Fx-Signature does not match fxiaoke_secret")


def parse(body: bytes) -> list[ChangeEvent]:
    """The one change event of a verified push."""
    payload = load_json_object(body)
    event_id, data_id = payload.get("eventId"), payload.get("dataId")
    if not isinstance(event_id, str) or not event_id:
        raise WebhookRejected(400, "eventId must be a non-empty string")
    if not isinstance(data_id, str) or not RECORD_ID.fullmatch(data_id):
        raise WebhookRejected(
            400,
            f"event {event_id}: dataId must be a record id (1..64 of A-Za-z0-9_-)",
            "bad_record_id",
        )
    operation = _OPERATIONS.get(str(payload.get("event")))
    if operation is None:
        raise WebhookRejected(400, f"event {event_id}: event must be create|update|delete")
    return [
        ChangeEvent(
            crm="fxiaoke",
            event_key=f"fxiaoke:{event_id}",
            customer_id=data_id,
            operation=operation,
            version=_version(payload.get("data")),
        )
    ]


def _version(data: Any) -> datetime | None:
    """``data.last_modified_time`` (epoch ms) when the function sent the record along."""
    if not isinstance(data, dict) or "last_modified_time" not in data:
        return None
    stamp = data["last_modified_time"]
    if not isinstance(stamp, int) or isinstance(stamp, bool) or not 0 <= stamp < _YEAR_10000_MS:
        raise WebhookRejected(400, "data.last_modified_time must be epoch milliseconds")
    return datetime.fromtimestamp(stamp / 1000, tz=UTC)


_YEAR_10000_MS = 253_402_300_800_000  # datetime's range ends before the year 10000
