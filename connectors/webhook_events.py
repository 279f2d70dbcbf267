"""What a verified CRM change notification becomes: small ``ChangeEvent`` values.

Each CRM notifies differently (Salesforce Outbound Message SOAP, Zoho notification JSON,
FXiaoke workflow push, Standard Webhooks for anything else), but the receiver stores and the
worker processes one shape. A ``ChangeEvent`` only says *which* customer changed and how to
recognise a redelivery of the same notification (``event_key``); it never carries field
values, because the worker re-fetches the current record before tiering (events can be late,
duplicated or out of order, docs/targets.md W12) and the inbox keeps as little data as it can (S5).

The verification helpers here are shared by every CRM's ``webhook.py``: one rejection type
whose HTTP status and reason code say what the sender did wrong, a replay-window check, the
constant-time comparison every secret goes through (docs/targets.md W3), and the bounded parsers
every header and body goes through. A hostile request must never reach a parser that can
fail in a way the receiver did not foresee (an interpreter limit, an overflow, an encoding
error would be a 500): numbers are bounded in digits before they are converted, JSON in
nesting depth and in the length of every integer, text in what UTF-8 can encode, and record
ids in length and characters before they reach a CRM's URL.
"""

from __future__ import annotations

import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Operation = Literal["create", "update", "delete"]
OPERATIONS: tuple[Operation, ...] = ("create", "update", "delete")

#: Longest event key the inbox stores; keys are built from sender ids, never from payload text.
MAX_EVENT_KEY = 200
#: Deepest JSON nesting accepted (a notification is 3 levels deep; docs/webhooks.md).
MAX_JSON_DEPTH = 16
#: Longest JSON integer accepted: epoch milliseconds have 13 digits, Zoho record ids 19.
MAX_INT_DIGITS = 20
#: What any record id must look like, whatever the CRM: the inbox and the worker's version
#: table hold at most 64 characters, and an id ends up in a CRM's request URL or query, so
#: only characters that need no escaping there. Each CRM's ``webhook.py`` narrows this to
#: its own id format.
RECORD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_DIGITS = re.compile(r"[0-9]{1,15}")
_STATUS_CODES = {
    400: "malformed",
    401: "unauthenticated",
    403: "forbidden",
    408: "body_timeout",
    413: "too_large",
    415: "unsupported_media_type",
}


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
        if not RECORD_ID.fullmatch(self.customer_id):
            raise WebhookRejected(
                400, "record id must be 1..64 letters, digits or _.:-", "bad_record_id"
            )


class WebhookRejected(Exception):
    """The notification is refused; ``status`` is the HTTP status the receiver answers.

    400 malformed, 401 unauthenticated (bad or missing signature/token, stale timestamp),
    403 authenticated as someone else (wrong org or channel), 413 too large, 415 wrong
    content type or encoding. ``code`` is a stable reason code for the response and the
    refusal metric (by default the status's generic one). The message names the problem,
    never a secret or payload value.
    """

    def __init__(self, status: int, reason: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.code = code or _STATUS_CODES.get(status, "refused")


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


def header_digits(value: str, name: str, unit: str) -> int:
    """An integer header (a timestamp) of 1..15 ASCII digits; 401 otherwise.

    ``str.isdigit`` admits ``²`` and thousands of digits, which ``int`` then refuses or
    arithmetic overflows on; 15 digits hold any epoch in milliseconds for 30,000 years."""
    if not _DIGITS.fullmatch(value):
        raise WebhookRejected(401, f"{name} must be {unit}: 1..15 ASCII digits", "bad_timestamp")
    return int(value)


def load_json_object(body: bytes) -> dict[str, Any]:
    """Parse a (size-capped) JSON body that must be an object, within explicit bounds.

    The body must be UTF-8 (RFC 8259 §8.1), nest at most ``MAX_JSON_DEPTH`` levels, hold no
    integer longer than ``MAX_INT_DIGITS`` digits, no ``NaN``/``Infinity`` and no string
    UTF-8 cannot encode (a lone surrogate such as ``"\\ud800"``); 400 otherwise."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected(400, "body is not UTF-8", "not_utf8") from None
    try:
        payload = json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)
    except RecursionError:  # the parser's own stack limit, far past MAX_JSON_DEPTH
        raise _too_deep() from None
    except json.JSONDecodeError:
        raise WebhookRejected(400, "body is not JSON", "not_json") from None
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "body must be a JSON object", "not_json_object")
    _check_json_shape(payload)
    return payload


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise WebhookRejected(
            400, f"JSON integer longer than {MAX_INT_DIGITS} digits", "number_too_long"
        )
    return int(digits)


def _no_constant(name: str) -> float:
    raise WebhookRejected(400, f"JSON does not allow {name}", "not_json")


def _too_deep() -> WebhookRejected:
    return WebhookRejected(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels", "too_deep")


def _check_json_shape(payload: dict[str, Any]) -> None:
    """Nesting depth and encodable text, walked with an explicit stack (no recursion)."""
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = [*value.keys(), *value.values()]
        elif isinstance(value, list):
            children = value
        else:
            if isinstance(value, str):
                _check_encodable(value)
            continue
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        stack.extend((child, depth + 1) for child in children)


def _check_encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise WebhookRejected(400, "JSON string holds a lone surrogate", "bad_unicode") from None
