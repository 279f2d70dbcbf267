"""The Zoho sandbox speaks Zoho CRM v2 as documented (Zoho CRM API v2 docs): checked here over
raw HTTPS, independently of zcrmsdk, so a sandbox bug cannot hide behind a client bug."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime, timedelta

import pytest
import requests

from connectors.sandbox.zoho_notify import ChannelError, resolve_expiry


def test_refresh_grant_returns_an_hour_token(zoho):
    body = requests.post(
        zoho.accounts_url,
        verify=str(zoho.ca_bundle),
        params={
            "grant_type": "refresh_token",
            "client_id": zoho.app.client_id,
            "client_secret": zoho.app.client_secret,
            "refresh_token": zoho.app.refresh_token,
        },
    ).json()
    assert body["expires_in"] == 3600 and body["token_type"] == "Bearer"
    assert body["api_domain"] == zoho.server.base_url  # Zoho names the API host
    bad = requests.post(
        zoho.accounts_url,
        verify=str(zoho.ca_bundle),
        data={
            "grant_type": "refresh_token",
            "client_id": "x",
            "client_secret": "y",
            "refresh_token": "z",
        },
    ).json()
    assert bad == {"error": "invalid_client"}


def test_an_eleventh_token_within_ten_minutes_is_refused(zoho):
    form = {
        "grant_type": "refresh_token",
        "client_id": zoho.app.client_id,
        "client_secret": zoho.app.client_secret,
        "refresh_token": zoho.app.refresh_token,
    }
    replies = [
        requests.post(zoho.accounts_url, data=form, verify=str(zoho.ca_bundle)) for _ in range(11)
    ]
    answers = [r.json() for r in replies]
    assert all("access_token" in a for a in answers[:10])
    assert answers[10]["error"] == "Access Denied"
    assert replies[10].status_code == 200  # as Zoho answers it: the body says no


def test_calls_need_a_live_zoho_oauthtoken(zoho, api):
    assert api("GET", "/crm/v2/Contacts").status_code == 200
    no_auth = requests.get(zoho.server.base_url + "/crm/v2/Contacts", verify=str(zoho.ca_bundle))
    assert no_auth.status_code == 401
    zoho.expire_tokens()
    expired = api("GET", "/crm/v2/Contacts")
    assert expired.status_code == 401 and expired.json()["code"] == "INVALID_TOKEN"


def test_list_paging_and_if_modified_since(zoho, api):
    page = api("GET", "/crm/v2/Contacts", params={"per_page": 200, "page": 2}).json()
    assert page["info"] == {"per_page": 200, "count": 50, "page": 2, "more_records": False}
    assert isinstance(page["data"][0]["id"], str) and len(page["data"][0]["id"]) == 19
    assert api("GET", "/crm/v2/Contacts", params={"per_page": 201}).status_code == 400
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert api("GET", "/crm/v2/Contacts", headers={"If-Modified-Since": future}).status_code == 304
    assert api("GET", "/crm/v2/Tasks").status_code == 204
    assert api("GET", "/crm/v2/Nope").json()["code"] == "INVALID_MODULE"


def test_modified_time_has_second_resolution_and_org_offset(zoho, api):
    record = api("GET", "/crm/v2/Contacts", params={"per_page": 1}).json()["data"][0]
    assert record["Modified_Time"].endswith("+08:00") and "." not in record["Modified_Time"]


def test_writes_cap_at_100_and_answer_per_record(zoho, api):
    ids = zoho.customer_ids()
    too_many = {"data": [{"id": int(i), "Value_Tier": "mass"} for i in ids[:101]]}
    assert api("PUT", "/crm/v2/Contacts", json=too_many).json()["code"] == "LIMIT_EXCEEDED"
    mixed = {
        "data": [
            {"id": int(ids[0]), "Value_Tier": "mass"},
            {"id": ids[1], "Value_Tier": "platinum"},
        ],
        "trigger": [],
    }
    answer = api("PUT", "/crm/v2/Contacts", data=json.dumps(mixed))  # no Content-Type
    assert answer.status_code == 202
    codes = [(r["code"], r["details"].get("api_name")) for r in answer.json()["data"]]
    assert codes == [("SUCCESS", None), ("INVALID_DATA", "Value_Tier")]
    assert zoho.write_triggers()[-1] == []


def test_credits_charge_one_per_ten_written_records(zoho, api):
    before = zoho.credits.used
    ids = zoho.customer_ids()[:25]
    answer = api(
        "PUT", "/crm/v2/Contacts", json={"data": [{"id": i, "Value_Tier": "mass"} for i in ids]}
    )
    assert zoho.credits.used - before == 3
    assert int(answer.headers["X-API-CREDITS-REMAINING"]) == zoho.credits.remaining
    zoho.rate_limit("read")
    throttled = api("GET", "/crm/v2/Contacts")
    assert throttled.status_code == 429 and "Retry-After" not in throttled.headers


def test_tasks_need_se_module_with_what_id(zoho, api):
    cid = zoho.customer_ids()[0]
    missing = {"data": [{"Subject": "x", "What_Id": {"id": cid}}]}
    assert (
        api("POST", "/crm/v2/Tasks", json=missing).json()["data"][0]["code"]
        == "MANDATORY_NOT_FOUND"
    )
    task = {**missing["data"][0], "$se_module": "Contacts", "Crmtier_Key": "k1"}
    made = api("POST", "/crm/v2/Tasks", json={"data": [task]})
    assert made.status_code == 201 and made.json()["data"][0]["code"] == "SUCCESS"
    assert [t.external_id for t in zoho.tasks()] == ["k1"]


def test_a_unique_field_refuses_a_value_another_record_holds(zoho, api):
    """Tasks' key field is unique, as docs/admin-setup.md asks: a second insert of a key, in
    another call, in the same call or in another letter case, and an update that would give
    one Task another's key are refused per record as DUPLICATE_DATA naming the field and
    the holder; nothing is stored twice."""
    cid = zoho.customer_ids()[0]
    task = {"Subject": "Call", "What_Id": {"id": cid}, "$se_module": "Contacts"}
    made = api("POST", "/crm/v2/Tasks", json={"data": [{**task, "Crmtier_Key": "k1"}]})
    first = made.json()["data"][0]["details"]["id"]
    rows = [{**task, "Crmtier_Key": k} for k in ("k1", "K1", "k2", "k2")]
    answer = api("POST", "/crm/v2/Tasks", json={"data": rows}).json()["data"]
    assert [(r["code"], r["details"].get("api_name")) for r in answer] == [
        ("DUPLICATE_DATA", "Crmtier_Key"),
        ("DUPLICATE_DATA", "Crmtier_Key"),
        ("SUCCESS", None),
        ("DUPLICATE_DATA", "Crmtier_Key"),
    ]
    assert answer[0]["details"]["id"] == first
    second = answer[2]["details"]["id"]
    moved = api("PUT", "/crm/v2/Tasks", json={"data": [{"id": second, "Crmtier_Key": "k1"}]})
    assert moved.json()["data"][0]["code"] == "DUPLICATE_DATA"
    kept = api("PUT", "/crm/v2/Tasks", json={"data": [{"id": first, "Crmtier_Key": "k1"}]})
    assert kept.json()["data"][0]["code"] == "SUCCESS"
    assert sorted(t.external_id for t in zoho.tasks()) == ["k1", "k2"]


@pytest.mark.parametrize(
    ("module", "status", "code"),
    [
        # "Insert or Update Records (Upsert)" lists neither Tasks nor Events nor Calls: the
        # page's error for a module the API does not support, and nothing is written
        ("Tasks", 400, "INVALID_MODULE"),
        ("Contacts", 200, "SUCCESS"),
    ],
)
def test_upsert_only_on_the_modules_zoho_lists_for_it(zoho, api, module, status, code):
    cid = zoho.customer_ids()[0]
    rows = {
        "Tasks": {"Subject": "Call", "What_Id": {"id": cid}, "$se_module": "Contacts"},
        "Contacts": {"id": cid},
    }
    body = {"data": [rows[module]], "duplicate_check_fields": ["Crmtier_Key"]}
    answer = api("POST", f"/crm/v2/{module}/upsert", json=body)
    got = answer.json()
    assert answer.status_code == status
    assert (got.get("code") or got["data"][0]["code"]) == code
    assert zoho.tasks() == []


def test_watch_expiry_follows_v2_limits():
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert resolve_expiry(None, now) == now + timedelta(hours=1)
    assert resolve_expiry(now + timedelta(days=2), now) == now + timedelta(hours=1)
    assert resolve_expiry(now + timedelta(hours=20), now) == now + timedelta(hours=20)
    with pytest.raises(ChannelError):
        resolve_expiry(now - timedelta(seconds=1), now)


def test_crmtier_config_points_at_the_sandbox_with_secret_refs(zoho):
    text, env = zoho.crmtier_config("T")
    config = tomllib.loads(text)
    crm = config["crm"]
    assert crm["kind"] == "zoho" and crm["base_url"] == zoho.server.base_url
    assert crm["accounts_url"] == zoho.server.base_url  # the host, as the admin guide has it
    assert crm["client_secret"] == "env:T_ZOHO_CLIENT_SECRET"
    assert env["T_ZOHO_CLIENT_SECRET"] == zoho.app.client_secret
    assert zoho.app.client_secret not in text and zoho.app.refresh_token not in text
    assert config["webhooks"]["zoho_token"] == "env:T_ZOHO_NOTIFY_TOKEN"
    assert config["webhooks"]["zoho_channel_id"] == zoho.channel_id
    assert "public_url" not in config["webhooks"]  # the admin says where crmtier is reachable
    assert config["mapping"]["object"] == "Contacts"
    info = zoho.info().as_json()
    assert set(info["credentials"]) == {
        "client_id",
        "client_secret",
        "refresh_token",
        "accounts_url",
    }


def test_control_api_edits_customers_with_its_own_token(zoho):
    cid = zoho.customer_ids()[0]
    url = f"{zoho.server.base_url}/__sandbox__/customers/{cid}"
    denied = requests.patch(url, json={"changes": {}}, verify=str(zoho.ca_bundle))
    assert denied.status_code == 401
    ok = requests.patch(
        url,
        json={"changes": {"assets.deposits": 123.0}},
        headers={"Authorization": f"Bearer {zoho.server.control_token}"},
        verify=str(zoho.ca_bundle),
    )
    assert ok.status_code == 200 and zoho.record(cid)["Deposits"] == 123.0


def test_a_restarted_sandbox_keeps_its_data_and_never_reuses_ids(tmp_path):
    from connectors.sandbox.zoho import ZohoSandbox
    from connectors.sandbox.zoho_writes import write_one

    first = ZohoSandbox(data_dir=tmp_path).start()
    first.seed(5)
    task = {"Subject": "Call", "Crmtier_Key": "k1"}
    created = write_one(first.api, "Tasks", task, 0, "insert", [])[0]["details"]["id"]
    first.stop()
    second = ZohoSandbox(data_dir=tmp_path).start()
    try:
        assert len(second.customer_ids()) == 5
        assert int(second.api.new_id()) > int(created)
    finally:
        second.stop()


def test_deep_paging_cap_is_a_switch(zoho, api):
    assert api("GET", "/crm/v2/Contacts", params={"page": 2}).status_code == 200
    zoho.api.discrete_page_limit = 200
    capped = api("GET", "/crm/v2/Contacts", params={"page": 2})
    assert capped.status_code == 400
    assert capped.json()["code"] == "DISCRETE_PAGINATION_LIMIT_EXCEEDED"


def test_fields_names_what_comes_back_and_is_optional(zoho, api):
    """v2 Get Records: ``fields`` is optional and names what comes back, with no cap documented
    ("Get Records API", v2), for the list, the ``ids`` read and the single-record GET; without
    it every field comes back."""
    names = sorted(zoho.schema.fields("Contacts"))
    assert len(names) > 50
    rid = zoho.customer_ids()[0]
    for path, extra in (("/crm/v2/Contacts", {}), ("/crm/v2/Contacts", {"ids": rid})):
        named = api("GET", path, params={"fields": ",".join(names), **extra})
        assert named.status_code == 200
        assert set(named.json()["data"][0]) <= {*names, "id"}
        whole = api("GET", path, params=extra).json()["data"][0]
        assert len(set(whole) & set(names)) > 50 and "Last_Name" in whole
    one = api("GET", f"/crm/v2/Contacts/{rid}", params={"fields": "Deposits"}).json()["data"][0]
    assert set(one) == {"id", "Deposits"}


def test_a_stricter_org_takes_at_most_50_names(zoho, api):
    """Later versions cap ``fields`` at "a maximum of 50 field API names" (v5/v7
    get-records.html); the sandbox's ``max_fields`` switch emulates an org that does."""
    zoho.api.max_fields = 50
    names = sorted(zoho.schema.fields("Contacts"))
    rid = zoho.customer_ids()[0]
    for path, extra in (("/crm/v2/Contacts", {}), ("/crm/v2/Contacts", {"ids": rid})):
        refused = api("GET", path, params={"fields": ",".join(names[:51]), **extra})
        assert refused.status_code == 400
        body = refused.json()
        assert body["code"] == "LIMIT_EXCEEDED" and body["status"] == "error"
        assert body["details"] == {"api_name": "fields", "limit": 50}
        fifty = api("GET", path, params={"fields": ",".join(names[:50]), **extra})
        assert fifty.status_code == 200
    too_many = api("GET", f"/crm/v2/Contacts/{rid}", params={"fields": ",".join(names)})
    assert too_many.status_code == 400 and too_many.json()["code"] == "LIMIT_EXCEEDED"


@pytest.mark.parametrize(
    ("where", "status"),
    [
        ("id is not null", 200),
        ("id is not null and Household_Role is not null", 200),
        ("(id is not null and Household_Role is not null)", 200),
        ("((id is not null and Household_Role is not null) and Last_Name is not null)", 200),
        ("(id is not null and (Household_Role is not null and Last_Name is not null))", 200),
        ("id is not null and Household_Role is not null and Last_Name is not null", 400),
        ("(id is not null and Household_Role is not null and Last_Name is not null)", 400),
        ("(id in (1, 2) and Household_Role is not null and Last_Name is not null)", 400),
    ],
)
def test_coql_takes_more_than_two_criteria_only_bracketed_in_pairs(api, where, status):
    """ "If WHERE has more than two criteria such as A, B, and C, use them as (A and (B and
    C)) or ((A and B) and C)" (Zoho CRM v2 "Query API - Limitations")."""
    query = {"select_query": f"select Last_Name from Contacts where {where} limit 1"}
    answer = api("POST", "/crm/v2/coql", json=query)
    assert answer.status_code == status
    if status == 400:
        assert answer.json()["code"] == "SYNTAX_ERROR"
