"""The FXiaoke sandbox's wire format, spoken to with plain requests (no connector)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from connectors.sandbox.fxiaoke import FxiaokeSandbox
from connectors.sandbox.fxiaoke_schema import FieldSpec
from connectors.sandbox.generator import customer_id
from tests.fxiaoke.fx_wire import Wire

MakeSandbox = Callable[..., FxiaokeSandbox]


def test_envelope_and_query_shape(wire: Wire) -> None:
    answer = wire.query(
        wire.login(),
        limit=5,
        filters=[
            {"field_name": "field_credit_score__c", "field_values": ["700"], "operator": "GTE"}
        ],
        orders=[{"fieldName": "field_credit_score__c", "isAsc": False}],
        fieldProjection=["field_credit_score__c"],
    )
    assert answer["errorCode"] == 0 and answer["traceId"] and answer["errorDescription"]
    data = answer["data"]
    texts = [row["field_credit_score__c"] for row in data["dataList"]]
    assert all(isinstance(t, str) for t in texts)  # number fields come back as decimal text
    scores = [float(t) for t in texts]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 700
    assert set(data["dataList"][0]) == {"_id", "field_credit_score__c"}
    assert data["total"] > 0 and (data["offset"], data["limit"]) == (0, 5)


@pytest.mark.parametrize(
    ("projection", "fields"),
    [
        (["field_credit_score__c"], {"_id", "field_credit_score__c"}),
        ([], {"_id"}),  # undocumented: the strict reading, so nothing may rely on more
    ],
)
def test_projection_returns_the_named_fields_and_id(
    wire: Wire, projection: list[str], fields: set[str]
) -> None:
    rows = wire.query(wire.login(), limit=3, fieldProjection=projection)["data"]["dataList"]
    assert rows and all(set(row) == fields for row in rows)
    whole = wire.query(wire.login(), limit=1)["data"]["dataList"][0]  # no projection at all
    assert {"_id", "name", "owner", "last_modified_time"} <= set(whole)


def test_number_fields_come_back_as_decimal_text(wire: Wire) -> None:
    """FXiaoke's query and get answers carry number and currency values as text ("1.00",
    "30": the answers of "根据条件查询回款对象的列表" and "查询单个线索对象详细信息",
    fxiaoke.apifox.cn/api-12901184, /api-12970967), dates as epoch-ms numbers."""
    headers = wire.login()
    fields = ["field_deposits__c", "field_credit_score__c", "last_modified_time"]
    rows = wire.query(headers, limit=10, fieldProjection=fields)["data"]["dataList"]
    deposits = [r["field_deposits__c"] for r in rows if "field_deposits__c" in r]
    assert deposits and all(isinstance(v, str) and float(v) >= 0 for v in deposits)
    assert all(isinstance(r["last_modified_time"], int) for r in rows)
    scored = next(r["_id"] for r in rows if "field_credit_score__c" in r)
    got = {"dataObjectApiName": "AccountObj", "objectDataId": scored}
    one = wire.post("/cgi/crm/v2/data/get", {"data": got}, headers=headers)["data"]["data"]
    assert isinstance(one["field_credit_score__c"], str)


@pytest.mark.parametrize(
    ("info", "code"),
    [
        ({"offset": 10_100}, 10013),
        ({"limit": 101}, 15002),
        ({"offset": -1}, 15002),
        ({"offset": 15}, 15002),  # not a multiple of the limit (10)
    ],
)
def test_paging_limits(wire: Wire, info: dict[str, int], code: int) -> None:
    """The query page's documented bounds ("Query Customer Object List by Criteria",
    fxiaoke.com/mob/guide/openapi/dist/en/pages/open-api/collection/object/AccountObj/
    query-acc/: limit at most 100, offset a multiple of limit; the deep-paging FAQ: offset
    at most 10,000)."""
    answer = wire.query(wire.login(), **info)
    assert answer["errorCode"] == code
    if code == 10013:
        assert answer["errorMessage"] == "offset out of range 10000"


def test_offset_up_to_the_wall_is_served(wire: Wire) -> None:
    assert wire.query(wire.login(), offset=10_000)["errorCode"] == 0


def test_missing_trace_id_unknown_path_and_bad_body(wire: Wire) -> None:
    headers = wire.login()
    body = {"data": {"dataObjectApiName": "AccountObj", "search_query_info": {"limit": 1}}}
    assert (
        wire.post("/cgi/crm/v2/data/query", body, trace=False, headers=headers)["errorCode"]
        == 10001
    )
    unknown = wire.post("/cgi/crm/v2/data/nothing", body, headers=headers)
    assert unknown["errorCode"] == 10006 and "is not exists" in unknown["errorMessage"]
    # a custom object through the preset path, and the reverse, are refused
    custom = {"data": {"dataObjectApiName": "object_followup__c", "search_query_info": {}}}
    assert wire.post("/cgi/crm/v2/data/query", custom, headers=headers)["errorCode"] == 15002
    assert wire.post("/cgi/crm/custom/v2/data/query", custom, headers=headers)["errorCode"] == 0
    # the documented failure of sending data.data instead of data.object_data
    wrong = {"data": {"data": {"_id": customer_id(1)}}}
    assert wire.post("/cgi/crm/v2/data/update", wrong, headers=headers)["errorCode"] == -2


def test_auth_failures(wire: Wire) -> None:
    body = {"data": {"dataObjectApiName": "AccountObj", "search_query_info": {"limit": 1}}}
    assert wire.post("/cgi/crm/v2/data/query", body)["errorCode"] == 20017
    forged = {"authorization": "Bearer forged", "x-fs-ea": "700001", "x-fs-userid": "1000"}
    assert wire.post("/cgi/crm/v2/data/query", body, headers=forged)["errorCode"] == 20016
    legacy = {**body, "corpAccessToken": "forged", "corpId": wire.sandbox.corp_id}
    assert wire.post("/cgi/crm/v2/data/query", legacy)["errorCode"] == 20016
    assert (
        wire.post("/oauth2.0/token", wire.app(grantType="app_secret", appSecret="x"))["errorCode"]
        == 20006
    )
    assert (
        wire.post("/cgi/corpAccessToken/get/V2", wire.app(permanentCode="x"))["errorCode"] == 20015
    )


def test_legacy_token_and_body_credentials(wire: Wire) -> None:
    token = wire.post("/cgi/corpAccessToken/get/V2", wire.app())
    assert token["errorCode"] == 0 and token["expiresIn"] == 7200
    assert token["corpId"] == wire.sandbox.corp_id
    body = {
        "corpAccessToken": token["corpAccessToken"],
        "corpId": token["corpId"],
        "currentOpenUserId": wire.sandbox.acting_open_user_id,
        "data": {"dataObjectApiName": "AccountObj", "search_query_info": {"limit": 1}},
    }
    assert wire.post("/cgi/crm/v2/data/query", body)["errorCode"] == 0
    unknown = {**body, "currentOpenUserId": "FSUID_0"}
    assert wire.post("/cgi/crm/v2/data/query", unknown)["errorCode"] == 20012


@pytest.mark.parametrize(("user", "code"), [("1000", 0), ("1001", 0), ("4242", 30027)])
def test_the_acting_user_header_must_be_an_employee(wire: Wire, user: str, code: int) -> None:
    """x-fs-userid is a CRM employee id; with convertUserId false an FSUID_ id is none."""
    assert wire.query({**wire.login(), "x-fs-userid": user}, limit=1)["errorCode"] == code


def test_token_lifetime_rules(wire: Wire) -> None:
    sandbox = wire.sandbox
    first = wire.post("/oauth2.0/token", wire.app(grantType="app_secret"))
    sandbox.tokens.advance(6_000)
    same = wire.post("/oauth2.0/token", wire.app(grantType="app_secret"))
    assert same["accessToken"] == first["accessToken"]
    assert same["expiresIn"] == 1_200
    sandbox.tokens.advance(700)  # 6,700 s: a new token, the old one still valid to 7,200 s
    new = wire.post("/oauth2.0/token", wire.app(grantType="app_secret"))
    assert new["accessToken"] != first["accessToken"]
    old_headers = {"authorization": f"Bearer {first['accessToken']}", "x-fs-ea": "700001"}
    old_headers["x-fs-userid"] = "1000"
    assert wire.query(old_headers)["errorCode"] == 0
    sandbox.tokens.advance(600)  # 7,300 s
    assert wire.query(old_headers)["errorCode"] == 20016


def test_token_endpoint_allows_ten_calls_a_minute(wire: Wire) -> None:
    codes = [wire.post("/cgi/corpAccessToken/get/V2", wire.app())["errorCode"] for _ in range(11)]
    assert codes == [0] * 10 + [14001]


def test_per_endpoint_limit(make_sandbox: MakeSandbox) -> None:
    wire = Wire(make_sandbox(customers=5, rate_calls=5, rate_window=60.0))
    headers = wire.login()
    codes = [wire.query(headers)["errorCode"] for _ in range(6)]
    assert codes == [0] * 5 + [14001]
    # another endpoint has its own window
    describe = {"data": {"apiName": "AccountObj", "includeDetail": False}}
    assert wire.post("/cgi/crm/v2/object/describe", describe, headers=headers)["errorCode"] == 0


def test_daily_quota(make_sandbox: MakeSandbox) -> None:
    wire = Wire(make_sandbox(customers=5, daily_quota=2))
    headers = wire.login()
    assert [wire.query(headers)["errorCode"] for _ in range(3)] == [0, 0, 30002]


def test_describe_lists_fields_with_types_and_options(wire: Wire) -> None:
    body = {"data": {"apiName": "AccountObj", "includeDetail": False}}
    answer = wire.post("/cgi/crm/v2/object/describe", body, headers=wire.login())
    fields = answer["data"]["describe"]["fields"]
    tier = fields["field_value_tier__c"]
    assert tier["type"] == "select_one"
    assert {o["value"] for o in tier["options"]} >= {"private", "wealth", "affluent", "mass"}
    assert fields["field_next_review__c"]["type"] == "date"
    assert fields["last_modified_time"]["type"] == "date_time"


def test_describe_requires_include_detail(wire: Wire) -> None:
    """``includeDetail`` is a required Boolean of 查询对象描述 ("Object Description Query",
    fxiaoke.com/mob/guide/openapi/dist/en/pages/open-api/collection/common/object-describe/
    describe/): a describe without it is refused, as a tenant may refuse it."""
    headers = wire.login()
    for data in ({"apiName": "AccountObj"}, {"apiName": "AccountObj", "includeDetail": "no"}):
        answer = wire.post("/cgi/crm/v2/object/describe", {"data": data}, headers=headers)
        assert answer["errorCode"] == 10001, data


def test_create_without_a_required_field_is_refused(wire: Wire) -> None:
    """A field the describe marks ``is_required`` ("Object Description Query") must be
    filled on create; the refusal's code is undocumented (32000, as for field errors)."""
    spec = wire.sandbox.objects["object_followup__c"]
    spec.fields["field_branch__c"] = FieldSpec("text", "网点", required=True)
    headers = wire.login()
    task = {"dataObjectApiName": "object_followup__c", "name": "call", "field_crmtier_key__c": "k"}

    def create(**extra: str) -> dict[str, Any]:
        data = {"object_data": {**task, **extra}}
        return wire.post("/cgi/crm/custom/v2/data/create", {"data": data}, headers=headers)

    refused = create()
    assert refused["errorCode"] == 32000 and "field_branch__c" in refused["errorMessage"]
    assert create(field_branch__c="north")["errorCode"] == 0
    body = {"data": {"apiName": "object_followup__c", "includeDetail": False}}
    described = wire.post("/cgi/crm/v2/object/describe", body, headers=headers)
    assert described["data"]["describe"]["fields"]["field_branch__c"]["is_required"] is True


@pytest.mark.parametrize(
    ("path", "given"),
    [
        ("/cgi/crm/object/approvalInstances/query", {}),
        ("/cgi/crm/object/approvalInstances/query", {"dataId": ""}),
        ("/cgi/crm/approvalInstance/get", {}),
    ],
)
def test_approval_reads_require_their_id(wire: Wire, path: str, given: dict[str, str]) -> None:
    """``dataId`` ("查询对象审批流实例") and ``instanceId`` ("Query Approval Flow Instance
    Details") are documented as required: a read without one is refused."""
    answer = wire.post(path, {"data": {}, **given}, headers=wire.login())
    assert answer["errorCode"] == 10001


def test_update_validates_and_bumps_version_and_modstamp(wire: Wire) -> None:
    headers = wire.login()
    cid = customer_id(2)
    before = wire.sandbox.store.get("AccountObj", cid)
    assert before is not None

    def update(**fields: Any) -> dict[str, Any]:
        data = {"object_data": {"dataObjectApiName": "AccountObj", "_id": cid, **fields}}
        return wire.post("/cgi/crm/v2/data/update", {"data": data}, headers=headers)

    assert update(field_value_tier__c="gold")["errorCode"] == 32000
    assert update(field_nope__c=1)["errorCode"] == 32000
    assert update(last_modified_time=1)["errorCode"] == 32000
    answer = update(field_value_tier__c="wealth")
    assert (answer["errorCode"], answer["dataId"]) == (0, cid)
    after = wire.sandbox.store.get("AccountObj", cid)
    assert after is not None and after[0] > before[0]
    assert after[1]["version"] == before[1]["version"] + 1


def test_control_api(sandbox: FxiaokeSandbox) -> None:
    session = requests.Session()
    session.trust_env = False
    session.verify = sandbox.info().ca_bundle
    base = sandbox.server.base_url + "/__sandbox__"
    auth = {"Authorization": f"Bearer {sandbox.server.control_token}"}

    def call(method: str, path: str, body: Any = None, token: bool = True) -> requests.Response:
        return session.request(
            method, base + path, json=body, headers=auth if token else {}, timeout=10
        )

    assert call("POST", "/tokens/expire", token=False).status_code == 401
    before = sandbox.store.get("AccountObj", customer_id(3))
    assert before is not None
    edit = call("POST", f"/customers/{customer_id(3)}", {"changes": {"feedback.nps": -50}})
    assert edit.status_code == 200
    after = sandbox.store.get("AccountObj", customer_id(3))
    assert after is not None and after[0] > before[0] and after[1]["field_nps__c"] == -50
    assert call("POST", "/customers/nobody", {"changes": {}}).status_code == 404
    bad = call("POST", f"/customers/{customer_id(3)}", {"changes": {"no.such": 1}})
    assert bad.status_code == 400 and "no.such" in bad.json()["error"]
    added = call("POST", "/customers", {"changes": {"assets.deposits": 5.0}})
    assert added.status_code == 201 and sandbox.store.get("AccountObj", added.json()["id"])
    assert call("GET", f"/customers/{customer_id(3)}/written").json() == {}
    assert call("GET", "/tasks").json() == [] and call("GET", "/memberships").json() == []
    assert call("POST", "/notifications/target", {}).status_code == 400
    assert call("POST", f"/records/{customer_id(1)}/reject", {"times": 1}).status_code == 200
    wire = Wire(sandbox)
    update = {
        "data": {
            "object_data": {
                "dataObjectApiName": "AccountObj",
                "_id": customer_id(1),
                "field_value_tier__c": "mass",
            }
        }
    }
    headers = wire.login()
    assert wire.post("/cgi/crm/v2/data/update", update, headers=headers)["errorCode"] == 32000
    assert wire.post("/cgi/crm/v2/data/update", update, headers=headers)["errorCode"] == 0
    assert call("POST", "/tokens/expire").json() == {"expired": True}
    assert call("POST", f"/customers/{customer_id(4)}/invalidate").status_code == 200
    invalid = sandbox.store.get("AccountObj", customer_id(4))
    assert invalid is not None and invalid[1]["life_status"] == "invalid"


@pytest.mark.parametrize(
    ("path", "value", "stored"),
    [
        ("activity.transactions_90d", "N/A", "N/A"),  # a text field an import created
        ("activity.transactions_90d", 57, "57"),  # numbers there are text too
        ("assets.deposits", -5.0, -5.0),  # out of range, still a number
        ("credit.loan_class", "unknown_grade", "unknown_grade"),  # an option since removed
        ("aml.cash_volume_90d", None, None),  # blank
    ],
)
def test_customers_hold_values_as_their_fields_do(
    sandbox: FxiaokeSandbox, path: str, value: Any, stored: Any
) -> None:
    sandbox.edit_customer("C000000001", {path: value})
    field = sandbox.mapping.mapping.fields[path]
    assert sandbox.store.get("AccountObj", "C000000001")[1][field] == stored


@pytest.mark.parametrize(
    ("path", "value"),
    [("credit.score", "seven hundred"), ("aml.pep", "yes"), ("activity.products_held", "fund")],
)
def test_text_in_a_number_field_is_refused(sandbox: FxiaokeSandbox, path: str, value: Any) -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        sandbox.edit_customer("C000000001", {path: value})
