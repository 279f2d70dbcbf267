"""Hostile and malformed requests never produce a 500 and never store anything.

One table row per request an independent attack turned into a 500 (UTF-7 XML, 200,000
``[``, a 5,000-digit integer, a lone surrogate in a token, timestamps of 401 or 5,000
digits or non-ASCII digits, the same parser errors behind a valid signature, JSON nested
past the documented 16 levels), each with the status and reason code it must get and its
count in ``/metrics``; then a Hypothesis fuzz over every endpoint, signed and unsigned."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from connectors.fxiaoke import webhook as fx
from sync.inbox import Inbox
from tests.webhooks.wh_live import Clock
from tests.webhooks.wh_payloads import (
    FX_SECRET,
    WHSEC,
    ZOHO_CHANNEL,
    ZOHO_TOKEN,
    salesforce_om,
)
from webhooks import standard_webhooks as sw
from webhooks.app import create_app
from webhooks.settings import WebhooksSettings

JSON = {"content-type": "application/json"}
SOAP = {"content-type": "text/xml; charset=utf-8"}
BIG_INT = b"9" * 5000
ROUTES = ("salesforce", "zoho", "fxiaoke", "generic")
Headers = dict[str, str | bytes]


def signed_generic(body: bytes, now: float, timestamp: str | None = None) -> Headers:
    """Standard Webhooks headers that really sign ``body``."""
    ts = timestamp or str(int(now))
    signature = sw.sign(sw.decode_secret(WHSEC), "msg_h", ts, body)
    return {**JSON, "webhook-id": "msg_h", "webhook-timestamp": ts, "webhook-signature": signature}


def signed_fxiaoke(body: bytes, now: float) -> Headers:
    ts = str(int(now * 1000))
    return {**JSON, "x-fx-timestamp": ts, "x-fx-signature": fx.sign(FX_SECRET.encode(), ts, body)}


def generic_body(customer_id: object, **data: object) -> bytes:
    return json.dumps({"type": "customer.updated", "data": {"id": customer_id, **data}}).encode()


def nested(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


def zoho_body(**fields: object) -> bytes:
    callback = {
        "server_time": 1718117126473,
        "ids": ["5725767000003000064"],
        "operation": "update",
        "channel_id": ZOHO_CHANNEL,
        "token": ZOHO_TOKEN,
    }
    return json.dumps({**callback, **fields}).encode()


def fxiaoke_body(**fields: object) -> bytes:
    push = {"eventId": "evt-h", "event": "update", "dataId": "6621c7a2eb4c7f0001817f67"}
    return json.dumps({**push, **fields}).encode()


def unsigned_fx(timestamp: str | bytes) -> Headers:
    return {**JSON, "x-fx-timestamp": timestamp, "x-fx-signature": "00"}


def unsigned_generic(timestamp: str | bytes) -> Headers:
    return {
        **JSON,
        "webhook-id": "msg_h",
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1,AAAA",
    }


Case = Callable[[float], tuple[str, bytes, Headers]]


def _sf_declaring(encoding: str) -> Case:
    body = salesforce_om([("04l5g000000AAAAAAA", "0015g00000AAAAAAAA")])
    body = body.replace(b'encoding="UTF-8"', f'encoding="{encoding}"'.encode())
    return lambda _now: ("salesforce", body, SOAP)


def _generic_signed(body: bytes) -> Case:
    return lambda now: ("generic", body, signed_generic(body, now))


def _fx_signed(body: bytes) -> Case:
    return lambda now: ("fxiaoke", body, signed_fxiaoke(body, now))


def _plain(route: str, body: bytes, headers: Headers) -> Case:
    return lambda _now: (route, body, headers)


# Header values are sent as bytes where the attack used non-ASCII: a server reads header
# bytes as Latin-1, so b"\xb2" arrives as "²" (which str.isdigit() accepts).
HOSTILE = [
    pytest.param(_sf_declaring("UTF-7"), 415, "xml_encoding", id="salesforce-utf7"),
    pytest.param(_sf_declaring("x-unknown"), 415, "xml_encoding", id="salesforce-unknown-charset"),
    pytest.param(
        _plain("salesforce", "<a>é</a>".encode("utf-16"), SOAP), 415, "xml_encoding", id="utf16"
    ),
    pytest.param(_plain("zoho", b"[" * 200_000, JSON), 400, "too_deep", id="zoho-200k-brackets"),
    pytest.param(
        _plain("zoho", b'{"server_time": ' + BIG_INT + b"}", JSON),
        400,
        "number_too_long",
        id="zoho-5000-digit-int",
    ),
    pytest.param(
        _plain("zoho", zoho_body(token="\ud800"), JSON), 400, "bad_unicode", id="zoho-surrogate"
    ),
    pytest.param(
        _plain("zoho", zoho_body(x=nested(21)), JSON), 400, "too_deep", id="zoho-21-levels"
    ),
    pytest.param(_plain("zoho", b"\xff\xfe{}", JSON), 400, "not_utf8", id="zoho-not-utf8"),
    pytest.param(
        _plain("zoho", zoho_body(ids=["1/../../x"]), JSON),
        400,
        "bad_record_id",
        id="zoho-non-numeric-id",
    ),
    pytest.param(
        _plain("fxiaoke", b"{}", unsigned_fx("9" * 401)), 401, "bad_timestamp", id="fx-ts-401"
    ),
    pytest.param(
        _plain("fxiaoke", b"{}", unsigned_fx("9" * 5000)), 401, "bad_timestamp", id="fx-ts-5000"
    ),
    pytest.param(
        _plain("fxiaoke", b"{}", unsigned_fx(b"\xb2")), 401, "bad_timestamp", id="fx-ts-superscript"
    ),
    pytest.param(
        _plain("fxiaoke", b"{}", unsigned_fx("١٢٣".encode())),
        401,
        "bad_timestamp",
        id="fx-ts-arabic-digits",
    ),
    pytest.param(
        _plain("generic", b"{}", unsigned_generic("9" * 401)),
        401,
        "bad_timestamp",
        id="generic-ts-401",
    ),
    pytest.param(
        _plain("generic", b"{}", unsigned_generic("9" * 5000)),
        401,
        "bad_timestamp",
        id="generic-ts-5000",
    ),
    pytest.param(
        _plain("generic", b"{}", unsigned_generic(b"1\xb2")),
        401,
        "bad_timestamp",
        id="generic-ts-superscript",
    ),
    pytest.param(
        _plain("zoho", b"{}", {**JSON, "content-length": "9" * 5000}),
        400,
        "bad_header",
        id="content-length-5000-digits",
    ),
    pytest.param(_generic_signed(b"[" * 200_000), 400, "too_deep", id="signed-200k-brackets"),
    pytest.param(
        _generic_signed(b'{"type": ' + BIG_INT + b"}"),
        400,
        "number_too_long",
        id="signed-5000-digit-int",
    ),
    pytest.param(
        _generic_signed(generic_body("\ud800")), 400, "bad_unicode", id="signed-surrogate"
    ),
    pytest.param(
        _generic_signed(generic_body("C1", extra=nested(21))),
        400,
        "too_deep",
        id="signed-21-levels",
    ),
    pytest.param(
        _generic_signed(generic_body("C" * 100_000)),
        400,
        "bad_record_id",
        id="signed-100kB-customer-id",
    ),
    pytest.param(
        _generic_signed(generic_body("C1/../x?y=1")),
        400,
        "bad_record_id",
        id="signed-id-with-url-characters",
    ),
    pytest.param(_fx_signed(b"[" * 200_000), 400, "too_deep", id="fx-signed-200k-brackets"),
    pytest.param(
        _fx_signed(fxiaoke_body(data={"last_modified_time": 10**19})),
        400,
        "malformed",
        id="fx-signed-version-out-of-range",
    ),
    pytest.param(
        _fx_signed(fxiaoke_body(dataId="x" * 65)), 400, "bad_record_id", id="fx-signed-long-id"
    ),
]


@pytest.fixture
def hostile_client(settings: WebhooksSettings, inbox: Inbox, clock: Clock) -> Iterator[TestClient]:
    # raise_server_exceptions=False: a bug must show up as the 500 a sender would see.
    app = create_app(settings, inbox, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize(("build", "status", "code"), HOSTILE)
def test_hostile_request_is_refused_with_its_reason_and_counted(
    hostile_client: TestClient, inbox: Inbox, clock: Clock, build: Case, status: int, code: str
) -> None:
    route, body, headers = build(clock.now)
    response = hostile_client.post(f"/webhooks/{route}", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.json().get("code") == code, response.text
    assert inbox.event_keys() == set()
    metrics = hostile_client.get("/metrics").text
    assert f'crmtier_webhook_refusals_total{{code="{code}",route="{route}"}} 1' in metrics


def test_sixteen_levels_of_json_are_accepted(
    hostile_client: TestClient, inbox: Inbox, clock: Clock
) -> None:
    """The documented limit is a limit, not a ban on nesting: 16 levels pass."""
    body = generic_body("C1", extra=nested(14))  # object > data > extra + 14 lists = 16
    response = hostile_client.post(
        "/webhooks/generic", content=body, headers=signed_generic(body, clock.now)
    )
    assert response.status_code == 200
    assert inbox.event_keys() == {"generic:msg_h"}


# --- fuzz ---------------------------------------------------------------------------------

_digits = st.text(alphabet="0123456789²³¹٣௫", min_size=0, max_size=30) | st.integers(
    min_value=10**300, max_value=10**420
).map(str)
_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**25, max_value=10**60)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)
_ids = (
    st.text(max_size=80)
    | st.from_regex(r"[0-9A-Za-z]{1,80}", fullmatch=True)
    | st.integers(min_value=-(10**25), max_value=10**25)
    | st.just("\ud800")
)


def _json_text(value: object) -> bytes:
    return json.dumps(value).encode()  # ASCII: a surrogate is sent as its \\u escape


@st.composite
def _bodies(draw: st.DrawFn, route: str) -> bytes:
    """A body that is nearly what ``route`` expects, or JSON, XML or bytes of any shape."""
    if route == "salesforce":
        structured = st.builds(
            lambda rid, enc: salesforce_om([("04l5g000000AAAAAAA", rid)]).replace(
                b'encoding="UTF-8"', f'encoding="{enc}"'.encode()
            ),
            st.from_regex(r"[0-9A-Za-z]{0,20}", fullmatch=True),
            st.sampled_from(["UTF-8", "utf-7", "UTF-16", "latin-1", "x-nope", ""]),
        )
    elif route == "zoho":
        structured = st.builds(
            lambda ids, token, time, deep: zoho_body(
                ids=ids, token=token, server_time=time, extra=nested(deep)
            ),
            st.lists(_ids, max_size=3) | _ids,
            st.sampled_from([ZOHO_TOKEN, "\ud800", ""]) | st.text(max_size=5),
            _json_scalars,
            st.integers(0, 25),
        )
    else:
        structured = st.builds(
            lambda rid, extra, deep: (
                fxiaoke_body(dataId=rid, data=extra, more=nested(deep))
                if route == "fxiaoke"
                else generic_body(rid, modified_at=extra, more=nested(deep))
            ),
            _ids,
            _json_values,
            st.integers(0, 25),
        )
    raw = st.one_of(
        st.binary(max_size=300),
        _json_values.map(_json_text),
        st.integers(1, 3000).map(lambda n: b"[" * n),
        st.integers(1, 3000).map(lambda n: b'{"a":' + b"9" * n + b"}"),
    )
    return draw(st.one_of(structured, raw))


@st.composite
def _requests(draw: st.DrawFn, now: float) -> tuple[str, bytes, Headers]:
    route = draw(st.sampled_from(ROUTES))
    body = draw(_bodies(route))
    content_type = draw(st.sampled_from(["application/json", "text/xml", "text/plain"]))
    headers: Headers = {"content-type": content_type}
    sign = draw(st.booleans())
    if route == "salesforce":
        headers["content-type"] = "text/xml" if sign else content_type
    elif route == "fxiaoke":
        headers = signed_fxiaoke(body, now) if sign else unsigned_fx(draw(_digits).encode())
    elif route == "generic":
        if sign:
            timestamp = draw(st.just(str(int(now))) | _digits.filter(lambda t: t.isascii()))
            headers = signed_generic(body, now, timestamp or None)
        else:
            headers = unsigned_generic(draw(_digits).encode())
    return route, body, headers


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_request_to_any_endpoint_is_a_500_or_stores_a_refusal(
    hostile_client: TestClient, inbox: Inbox, clock: Clock, data: st.DataObject
) -> None:
    route, body, headers = data.draw(_requests(clock.now))
    before = inbox.event_keys()
    response = hostile_client.post(f"/webhooks/{route}", content=body, headers=headers)
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert inbox.event_keys() == before
        assert response.json()["code"]
