"""Verification and parsing of each CRM's notification: pure functions, no server.

Known-answer vectors (docs/targets.md W1), replay window boundaries (W2), rotation (W14),
org/token/channel checks (W10, W11), XML hardening (W9)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from connectors.fxiaoke import webhook as fx
from connectors.salesforce import webhook as sf
from connectors.webhook_events import ChangeEvent, WebhookRejected
from connectors.zoho import webhook as zoho
from tests.webhooks.wh_payloads import (
    BILLION_LAUGHS,
    DEEP,
    EXTERNAL_DTD,
    FX_SECRET,
    ORG_ID,
    QUADRATIC,
    WHSEC,
    WHSEC_NEW,
    XXE,
    ZOHO_CHANNEL,
    ZOHO_TOKEN,
    fxiaoke_push,
    generic_event,
    salesforce_om,
    zoho_callback,
)
from webhooks import standard_webhooks as sw

NOW = 1_800_000_000.0

# --- Standard Webhooks --------------------------------------------------------------------


def test_standard_webhooks_known_answer_vector() -> None:
    key = sw.decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sw.sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body) == expected
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": expected,
    }
    assert sw.verify(headers, body, [key], now_s=1614265330, window_s=300) == headers["webhook-id"]


def _generic(**overrides: object) -> tuple[bytes, dict[str, str]]:
    body, headers = generic_event("msg_1", "001A", now_s=NOW)
    for name, value in overrides.items():
        if value is None:
            headers.pop(name.replace("_", "-"))
        else:
            headers[name.replace("_", "-")] = str(value)
    return body, headers


KEY = sw.decode_secret(WHSEC)
NEW_KEY = sw.decode_secret(WHSEC_NEW)


@pytest.mark.parametrize(
    ("overrides", "tamper", "keys"),
    [
        pytest.param({}, b"", [NEW_KEY], id="wrong-secret"),
        pytest.param({}, b" ", [KEY], id="tampered-body"),
        pytest.param({"webhook_id": None}, b"", [KEY], id="missing-id"),
        pytest.param({"webhook_timestamp": None}, b"", [KEY], id="missing-timestamp"),
        pytest.param({"webhook_signature": None}, b"", [KEY], id="missing-signature"),
        pytest.param({"webhook_signature": "v1,"}, b"", [KEY], id="empty-signature"),
        pytest.param({"webhook_signature": "v2,abc"}, b"", [KEY], id="unknown-version"),
        pytest.param({"webhook_timestamp": "12a"}, b"", [KEY], id="non-integer-timestamp"),
        pytest.param({"webhook_id": "msg_2"}, b"", [KEY], id="id-not-the-signed-one"),
        pytest.param({}, b"", [], id="no-secret-configured"),
    ],
)
def test_standard_webhooks_rejections(
    overrides: dict[str, object], tamper: bytes, keys: list[bytes]
) -> None:
    body, headers = _generic(**overrides)
    with pytest.raises(WebhookRejected) as info:
        sw.verify(headers, body + tamper, keys, now_s=NOW, window_s=300)
    assert info.value.status == 401


@pytest.mark.parametrize(
    ("skew", "accepted"),
    [(0, True), (299, True), (300, True), (301, False), (-299, True), (-300, True), (-301, False)],
)
def test_standard_webhooks_replay_window(skew: int, accepted: bool) -> None:
    body, headers = generic_event("msg_1", "001A", now_s=NOW + skew)
    if accepted:
        sw.verify(headers, body, [KEY], now_s=NOW, window_s=300)
    else:
        with pytest.raises(WebhookRejected, match="replay window"):
            sw.verify(headers, body, [KEY], now_s=NOW, window_s=300)


def test_rotation_accepts_either_key_and_a_multi_signature_header() -> None:
    for signers in ([WHSEC], [WHSEC_NEW], [WHSEC, WHSEC_NEW], [WHSEC_NEW, WHSEC]):
        body, headers = generic_event("msg_r", "001A", now_s=NOW, secrets=signers)
        assert sw.verify(headers, body, [NEW_KEY, KEY], now_s=NOW, window_s=300) == "msg_r"
    body, headers = generic_event("msg_r", "001A", now_s=NOW, secrets=[WHSEC])
    with pytest.raises(WebhookRejected):
        sw.verify(headers, body, [NEW_KEY], now_s=NOW, window_s=300)


@pytest.mark.parametrize("secret", ["whsec_!!notbase64", "whsec_c2hvcnQ=", "", "whsec_"], ids=str)
def test_bad_standard_webhooks_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        sw.decode_secret(secret)


def test_generic_payload_parse() -> None:
    body = json.dumps(
        {"type": "customer.deleted", "data": {"id": "C9", "modified_at": "2026-01-02T03:04:05Z"}}
    ).encode()
    assert sw.parse("msg_9", body) == [
        ChangeEvent(
            "generic", "generic:msg_9", "C9", "delete", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        )
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1]",
        b'{"type": "customer.updated"}',
        b'{"type": "order.created", "data": {"id": "1"}}',
        b'{"type": "customer.updated", "data": {"id": 5}}',
        b'{"type": "customer.updated", "data": {"id": "1", "modified_at": "yesterday"}}',
    ],
)
def test_generic_payload_malformed(body: bytes) -> None:
    with pytest.raises(WebhookRejected) as info:
        sw.parse("msg", body)
    assert info.value.status == 400


# --- FXiaoke ----------------------------------------------------------------------------


def test_fxiaoke_known_answer() -> None:
    # HMAC-SHA256(key="key", "1700000000000{}") computed independently with openssl:
    # printf '1700000000000{}' | openssl dgst -sha256 -hmac key
    assert fx.sign(b"key", "1700000000000", b"{}") == (
        "7af44a3bc4346336c90b6e5a8468c569f7de3e0050c650f658a3cde0b37647c5"
    )


def test_fxiaoke_verify_and_parse() -> None:
    body, headers = fxiaoke_push("evt-1", "6501abc", now_s=NOW)
    fx.verify(headers, body, secret=SecretStr(FX_SECRET), now_s=NOW, window_s=300)
    assert fx.parse(body) == [ChangeEvent("fxiaoke", "fxiaoke:evt-1", "6501abc", "update")]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b, h: (b + b" ", h), "does not match"),
        (lambda b, h: (b, {**h, "x-fx-signature": "00" * 32}), "does not match"),
        (lambda b, h: (b, {k: v for k, v in h.items() if k != "x-fx-signature"}), "missing"),
        (lambda b, h: (b, {k: v for k, v in h.items() if k != "x-fx-timestamp"}), "missing"),
        (lambda b, h: (b, {**h, "x-fx-timestamp": "1.5"}), "milliseconds"),
        (lambda b, h: (b, {**h, "x-fx-signature": "ä"}), "does not match"),
    ],
)
def test_fxiaoke_rejections(mutate: object, message: str) -> None:
    body, headers = mutate(*fxiaoke_push("evt-1", "6501abc", now_s=NOW))  # type: ignore[operator]
    with pytest.raises(WebhookRejected, match=message) as info:
        fx.verify(headers, body, secret=SecretStr(FX_SECRET), now_s=NOW, window_s=300)
    assert info.value.status == 401


def test_fxiaoke_wrong_secret() -> None:
    body, headers = fxiaoke_push("evt-1", "6501abc", now_s=NOW, secret="another-secret-of-length")
    with pytest.raises(WebhookRejected):
        fx.verify(headers, body, secret=SecretStr(FX_SECRET), now_s=NOW, window_s=300)


@pytest.mark.parametrize(
    ("skew", "accepted"), [(299, True), (300, True), (301, False), (-301, False)]
)
def test_fxiaoke_replay_window(skew: int, accepted: bool) -> None:
    body, headers = fxiaoke_push("evt-1", "6501abc", now_s=NOW + skew)
    if accepted:
        fx.verify(headers, body, secret=SecretStr(FX_SECRET), now_s=NOW, window_s=300)
    else:
        with pytest.raises(WebhookRejected, match="replay window"):
            fx.verify(headers, body, secret=SecretStr(FX_SECRET), now_s=NOW, window_s=300)


def test_fxiaoke_parse_version_and_errors() -> None:
    body = json.dumps(
        {
            "eventId": "e",
            "event": "create",
            "dataId": "d",
            "data": {"last_modified_time": 1_700_000_000_000},
        }
    ).encode()
    [event] = fx.parse(body)
    assert event.operation == "create"
    assert event.version == datetime.fromtimestamp(1_700_000_000, tz=UTC)
    for bad in (
        b'{"event": "update", "dataId": "d"}',
        b'{"eventId": "e", "event": "x", "dataId": "d"}',
        b'{"eventId": "e", "event": "update"}',
    ):
        with pytest.raises(WebhookRejected):
            fx.parse(bad)


# --- Zoho -------------------------------------------------------------------------------

TOKEN = SecretStr(ZOHO_TOKEN)


def test_zoho_callback_events_and_stable_keys() -> None:
    events = zoho.verify_and_parse(
        zoho_callback(["5725767000003000064", "5725767000003000065", "5725767000003000064"]),
        token=TOKEN,
        channel_id=ZOHO_CHANNEL,
    )
    assert [e.customer_id for e in events] == ["5725767000003000064", "5725767000003000065"]
    assert events[0].event_key == f"zoho:{ZOHO_CHANNEL}:1718117126473:update:5725767000003000064"
    again = zoho.verify_and_parse(
        zoho_callback(["5725767000003000064"]), token=TOKEN, channel_id=ZOHO_CHANNEL
    )
    assert again[0].event_key == events[0].event_key
    inserted = zoho.verify_and_parse(
        zoho_callback(["1"], operation="insert"), token=TOKEN, channel_id=ZOHO_CHANNEL
    )
    assert inserted[0].operation == "create"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (zoho_callback(["1"], token="wrong-token"), 401),
        (zoho_callback(["1"], token=""), 401),
        (zoho_callback(["1"], token=ZOHO_TOKEN + "x"), 401),
        (
            json.dumps({"ids": ["1"], "operation": "update", "channel_id": ZOHO_CHANNEL}).encode(),
            401,
        ),
        (zoho_callback(["1"], channel_id="999"), 403),
        (zoho_callback(["1"], operation="merge"), 400),
        (zoho_callback([]), 400),
        (b"{not json", 400),
        (b'"a string"', 400),
    ],
)
def test_zoho_rejections(body: bytes, status: int) -> None:
    with pytest.raises(WebhookRejected) as info:
        zoho.verify_and_parse(body, token=TOKEN, channel_id=ZOHO_CHANNEL)
    assert info.value.status == status


# --- Salesforce ---------------------------------------------------------------------------


def test_salesforce_outbound_message() -> None:
    body = salesforce_om(
        [("04l5g000000AAAAAAA", "0015g00000AAAAAAAA"), ("04l5g000000AAAABAA", "0015g00000BBBBBBBB")]
    )
    events = sf.verify_and_parse(body, org_id=ORG_ID)
    assert [e.event_key for e in events] == [
        "salesforce:04l5g000000AAAAAAA",
        "salesforce:04l5g000000AAAABAA",
    ]
    assert [e.customer_id for e in events] == ["0015g00000AAAAAAAA", "0015g00000BBBBBBBB"]
    assert events[0].version == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert "SESSION" not in repr(events)
    # The 15-character form of the org id is the case-sensitive prefix of the 18-character form.
    assert sf.verify_and_parse(body, org_id=ORG_ID[:15]) == events


def test_salesforce_wrong_org_is_forbidden() -> None:
    body = salesforce_om(
        [("04l5g000000AAAAAAA", "0015g00000AAAAAAAA")], org_id="00D5g000004ZZZZZZZ"
    )
    with pytest.raises(WebhookRejected) as info:
        sf.verify_and_parse(body, org_id=ORG_ID)
    assert info.value.status == 403
    lower = salesforce_om([("04l5g000000AAAAAAA", "0015g00000AAAAAAAA")], org_id=ORG_ID.lower())
    with pytest.raises(WebhookRejected):
        sf.verify_and_parse(lower, org_id=ORG_ID)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(BILLION_LAUGHS, id="billion-laughs"),
        pytest.param(XXE, id="external-entity"),
        pytest.param(EXTERNAL_DTD, id="external-dtd"),
        pytest.param(QUADRATIC, id="quadratic-blowup"),
        pytest.param(DEEP, id="deep-nesting"),
        pytest.param(b"<unclosed>", id="malformed"),
        pytest.param(b"", id="empty"),
        pytest.param(b"<a/>", id="not-soap"),
        pytest.param(
            b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
            b"<soapenv:Body/></soapenv:Envelope>",
            id="no-notifications",
        ),
        pytest.param(salesforce_om([], org_id=ORG_ID), id="zero-notifications"),
        pytest.param(salesforce_om([("bad id", "0015g00000AAAAAAAA")]), id="bad-notification-id"),
        pytest.param(salesforce_om([("04l5g000000AAAAAAA", "")]), id="no-record-id"),
        pytest.param(
            salesforce_om([("04l5g000000AAAAAAA", "0015g00000AAAAAAAA")], modstamp="soon"),
            id="bad-modstamp",
        ),
        pytest.param(
            salesforce_om([("04l5g000000AAAAAAA", "0015g00000AAAAAAAA")], org_id="nope"),
            id="bad-org",
        ),
    ],
)
def test_salesforce_hostile_or_malformed_xml_is_a_400(body: bytes) -> None:
    with pytest.raises(WebhookRejected) as info:
        sf.verify_and_parse(body, org_id=ORG_ID)
    assert info.value.status == 400


def test_salesforce_ack_is_the_documented_soap_response() -> None:
    root = sf.parse_xml(sf.ACK)
    ack = root.find(f"{{{sf.SOAP_ENV}}}Body/{{{sf.OM_NS}}}notificationsResponse/{{{sf.OM_NS}}}Ack")
    assert ack is not None and ack.text == "true"


def test_decode_secret_round_trip() -> None:
    raw = b"k" * 32
    assert sw.decode_secret("whsec_" + base64.b64encode(raw).decode()) == raw


def test_zoho_echo_of_our_own_write_is_dropped() -> None:
    own = frozenset({"Value_Tier", "Tier_Reasons"})

    def callback(affected: object, operation: str = "update") -> bytes:
        payload = json.loads(zoho_callback(["1", "2"], operation=operation))
        payload["affected_fields"] = affected
        return json.dumps(payload).encode()

    def ids(body: bytes) -> list[str]:
        events = zoho.verify_and_parse(body, token=TOKEN, channel_id=ZOHO_CHANNEL, own_fields=own)
        return [e.customer_id for e in events]

    assert ids(callback([{"1": ["Value_Tier"]}, {"2": ["Value_Tier", "Deposits"]}])) == ["2"]
    assert ids(callback([{"1": ["Value_Tier"]}, {"2": ["Tier_Reasons"]}])) == []
    assert ids(callback([{"1": []}, {"2": ["Deposits"]}])) == ["1", "2"]  # unknown: keep
    assert ids(callback("not a list")) == ["1", "2"]
    assert ids(callback([{"1": ["Value_Tier"]}], operation="insert")) == ["1", "2"]
