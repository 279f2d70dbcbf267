"""Zoho CRM notification callbacks (``actions/watch``): check token and channel, list events.

Zoho signs nothing (Zoho CRM "Enable Notifications"; docs/targets.md W11): the callback JSON echoes
the ``token`` (≤ 50 chars) and ``channel_id`` given when the channel was subscribed, so the
token is the shared secret and both are compared in constant time (W3). Because the secret
is inside the body, the JSON is parsed first, but only after the receiver has capped its
size.

A callback lists record ``ids`` and an ``operation`` (``insert|update|delete``). It carries
no record version and no notification id, so the dedupe key is the tuple Zoho repeats on a
redelivery: ``(channel_id, server_time, operation, record id)`` (W4). One event per id.
Zoho record ids are numbers (a ``Long`` record id, "Getting Record by ID",
zoho.com/developer/help/scripting/get-records-by-id.html; e.g. ``"5725767000003000064"``),
so ``RECORD_ID`` admits 1..19 digits (a signed 64-bit long) and nothing else.

crmtier's own write-back is an edit too, and Zoho notifies it (``"trigger": []`` on the write
does not suppress notifications). An ``update`` whose ``affected_fields`` for a record are
all fields crmtier itself writes (``own_fields``) is that echo and is dropped here, which
saves a CRM read per write; anything else, or an unrecognised ``affected_fields`` shape,
is kept (re-processing an echo writes nothing anyway).
"""

from __future__ import annotations

import re

from pydantic import SecretStr

from connectors.webhook_events import (
    ChangeEvent,
    Operation,
    WebhookRejected,
    load_json_object,
    secrets_match,
)

CONTENT_TYPES = ("application/json",)
MAX_TOKEN = 50
RECORD_ID = re.compile(r"[0-9]{1,19}")
_OPERATIONS: dict[str, Operation] = {"insert": "create", "update": "update", "delete": "delete"}


def verify_and_parse(
    body: bytes,
    *,
    token: SecretStr,
    channel_id: str,
    own_fields: frozenset[str] = frozenset(),
) -> list[ChangeEvent]:
    """The change events of one callback for the channel ``channel_id``.

    Raises ``WebhookRejected``: 400 malformed, 401 missing or wrong token, 403 another
    channel."""
    payload = load_json_object(body)
    received_token = payload.get("token")
    if not isinstance(received_token, str) or not received_token:
        raise WebhookRejected(401, "callback carries no token")
    if not secrets_match(received_token, token.get_secret_value()):
        raise WebhookRejected(401, "token does not match zoho_token")
    received_channel = str(payload.get("channel_id", ""))
    if not secrets_match(received_channel, channel_id):
        raise WebhookRejected(403, "channel_id does not match zoho_channel_id")
    operation = _OPERATIONS.get(str(payload.get("operation")))
    if operation is None:
        raise WebhookRejected(400, f"operation must be one of {', '.join(_OPERATIONS)}")
    ids = payload.get("ids")
    if not isinstance(ids, list) or not ids or not all(_is_record_id(i) for i in ids):
        raise WebhookRejected(
            400, "ids must be a non-empty list of numeric record ids", "bad_record_id"
        )
    server_time = payload.get("server_time")
    if not isinstance(server_time, int):
        raise WebhookRejected(400, "server_time must be epoch milliseconds")
    echoes = _echoes(payload.get("affected_fields"), own_fields) if operation == "update" else set()
    return [
        ChangeEvent(
            crm="zoho",
            event_key=f"zoho:{channel_id}:{server_time}:{operation}:{record_id}",
            customer_id=str(record_id),
            operation=operation,
        )
        for record_id in dict.fromkeys(ids)
        if str(record_id) not in echoes
    ]


def _is_record_id(value: object) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return isinstance(value, str) and RECORD_ID.fullmatch(value) is not None


def _echoes(affected: object, own_fields: frozenset[str]) -> set[str]:
    """Record ids whose changed fields (``[{"<id>": ["Field", ...]}, ...]``) are all ours."""
    if not own_fields or not isinstance(affected, list):
        return set()
    echoes = set()
    for entry in affected:
        if not isinstance(entry, dict):
            continue
        for record_id, fields in entry.items():
            if isinstance(fields, list) and fields and set(fields) <= own_fields:
                echoes.add(str(record_id))
    return echoes
