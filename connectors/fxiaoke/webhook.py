"""FXiaoke workflow push: verify the HMAC and replay window, turn the push into an event.

FXiaoke's open platform documents no CRM record-change push (crm_apis.md §3.7), so an admin
adds a workflow function (APL, ``Fx.http.post``; template in docs/fxiaoke-apl.md) that posts
``{"eventId", "event", "tenantId", "objectApiName", "dataId", "timestamp", "data"?}`` with
two headers (DESIGN §7):

* ``X-Fx-Timestamp``: epoch milliseconds;
* ``X-Fx-Signature``: lowercase hex HMAC-SHA256, under the shared secret, of the timestamp
  string followed directly by the raw body.

The signature is checked on the raw bytes before the JSON is parsed, in constant time, and
the timestamp must lie within the replay window (±300 s by default; FXiaoke's own demo
accepts 500 s, the plugin does not, W2). FXiaoke retries a failed push only once, so the
scheduled sync remains the safety net (W13). The ``eventId`` is the dedupe key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from connectors.webhook_events import (
    ChangeEvent,
    Operation,
    WebhookRejected,
    check_timestamp,
    load_json_object,
    secrets_match,
)

CONTENT_TYPES = ("application/json",)
TIMESTAMP_HEADER = "x-fx-timestamp"
SIGNATURE_HEADER = "x-fx-signature"
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
    if not timestamp.isdigit():
        raise WebhookRejected(401, "X-Fx-Timestamp must be epoch milliseconds")
    check_timestamp(int(timestamp) / 1000, now_s, window_s)
    expected = sign(secret.get_secret_value().encode("utf-8"), timestamp, body)
    if not secrets_match(offered.lower(), expected):
        raise WebhookRejected(401, "X-Fx-Signature does not match fxiaoke_secret")


def parse(body: bytes) -> list[ChangeEvent]:
    """The one change event of a verified push."""
    payload = load_json_object(body)
    event_id, data_id = payload.get("eventId"), payload.get("dataId")
    if not isinstance(event_id, str) or not event_id:
        raise WebhookRejected(400, "eventId must be a non-empty string")
    if not isinstance(data_id, str) or not data_id:
        raise WebhookRejected(400, f"event {event_id}: dataId must be the record id")
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
    if isinstance(data, dict) and isinstance(data.get("last_modified_time"), int):
        return datetime.fromtimestamp(data["last_modified_time"] / 1000, tz=UTC)
    return None
