"""The Salesforce sandbox speaks the wire format real clients expect (Salesforce REST API Developer
Guide), checked with unmodified simple-salesforce and plain requests over HTTPS."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import requests
from defusedxml import ElementTree
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceRefusedRequest

from connectors.mapping import load_default_mapping
from connectors.salesforce.webhook import verify_and_parse
from connectors.sandbox.generator import TEXT_IMPORTED_INPUTS, generate, to_crm_fields
from connectors.sandbox.salesforce_seed import flattener
from connectors.sandbox.salesforce_wire import to_sf_value

OM = "{http://soap.sforce.com/2005/09/outbound}"
ACK = (
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
    b'<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack>'
    b"</notificationsResponse></soapenv:Body></soapenv:Envelope>"
)


@pytest.fixture
def sandbox(sandbox_factory):
    return sandbox_factory("salesforce", customers=450)


def _session(sandbox) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = sandbox.info().ca_bundle
    return session


@pytest.fixture
def sf(sandbox) -> Salesforce:
    info = sandbox.info()
    session = _session(sandbox)
    token = session.post(
        f"{info.base_url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(info.credentials["client_id"], info.credentials["client_secret"]),
    ).json()["access_token"]
    return Salesforce(instance_url=info.base_url, session_id=token, session=session)


def _acc(sandbox, i: int, **fields):
    return {"attributes": {"type": "Account"}, "id": sandbox.customer_id(i), **fields}


def test_query_pages_with_next_records_url_and_rereads_are_idempotent(sf):
    first = sf.query(
        "SELECT Id FROM Account ORDER BY SystemModstamp, Id",
        headers={"Sforce-Query-Options": "batchSize=200"},
    )
    assert (first["totalSize"], first["done"], len(first["records"])) == (450, False, 200)
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    again = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert second["records"] == again["records"]
    assert second["totalSize"] == 450
    third = sf.query_more(second["nextRecordsUrl"], identifier_is_url=True)
    assert third["done"] and "nextRecordsUrl" not in third and len(third["records"]) == 50
    assert len(list(sf.query_all_iter("SELECT Id FROM Account", include_deleted=True))) == 450


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id, Nope__c FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Nope__c", "INVALID_TYPE"),
        ("SELECT Id FROM Account WHERE Name LIKE 'x%'", "MALFORMED_QUERY"),
    ],
)
def test_bad_queries_are_400_with_salesforce_codes(sf, soql, code):
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query(soql)
    assert info.value.content[0]["errorCode"] == code


def test_collections_return_per_record_results_in_order(sandbox, sf):
    results = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "allOrNone": False,
            "records": [
                _acc(sandbox, 0, Value_Tier__c="private"),
                _acc(sandbox, 1, Value_Tier__c="Platinum"),
                _acc(sandbox, 2, Nope__c=1),
                _acc(sandbox, 3, IsPersonAccount=False),
                {"attributes": {"type": "Account"}, "id": "001xx", "Value_Tier__c": "mass"},
            ],
        },
    )
    assert results[0] == {"id": sandbox.customer_id(0), "success": True, "errors": []}
    codes = [r["errors"][0]["statusCode"] if r["errors"] else None for r in results]
    assert codes == [
        None,
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "INVALID_FIELD",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "MALFORMED_ID",
    ]
    assert all("id" not in r for r in results[1:])  # failed entries carry no id


def test_all_or_none_rolls_everything_back(sandbox, sf):
    results = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "allOrNone": True,
            "records": [
                _acc(sandbox, 0, Value_Tier__c="private"),
                _acc(sandbox, 1, Value_Tier__c="Platinum"),
            ],
        },
    )
    assert results[0]["id"] == sandbox.customer_id(0) and not results[0]["success"]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert sandbox.written(sandbox.customer_id(0)) == {}


def test_more_than_200_records_is_a_request_error(sandbox, sf):
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.restful(
            "composite/sobjects",
            method="PATCH",
            json={"records": [_acc(sandbox, i, Value_Tier__c="mass") for i in range(201)]},
        )
    assert info.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_upsert_rejects_the_same_external_id_twice_in_one_request(sandbox, sf):
    task = {"attributes": {"type": "Task"}, "Crmtier_Key__c": "k", "Subject": "x"}
    results = sf.restful(
        "composite/sobjects/Task/Crmtier_Key__c", method="PATCH", json={"records": [task, task]}
    )
    assert [r["errors"][0]["statusCode"] for r in results] == ["DUPLICATE_EXTERNAL_ID"] * 2


def test_duplicate_campaign_member_is_a_per_record_error(sandbox, sf):
    member = {
        "attributes": {"type": "CampaignMember"},
        "CampaignId": "701000000000001AAA",
        "AccountId": sandbox.customer_id(0),
    }
    first = sf.restful("composite/sobjects", method="POST", json={"records": [member]})
    second = sf.restful("composite/sobjects", method="POST", json={"records": [member]})
    assert first[0]["success"]
    assert second[0]["errors"][0] == {
        "statusCode": "DUPLICATE_VALUE",
        "message": "Already a campaign member.",
        "fields": [],
    }


def test_limit_info_on_every_response_and_the_daily_limit_is_a_403(sandbox, sf):
    sf.query("SELECT Id FROM Account LIMIT 1")
    assert sf.api_usage["api-usage"].used == 1
    sandbox.exhaust_daily_limit()
    with pytest.raises(SalesforceRefusedRequest) as info:
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert info.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    raw = sf.session.get(
        f"{sandbox.info().base_url}/services/data/v59.0/limits", headers=sf.headers
    )
    assert raw.status_code == 403 and raw.headers["Sforce-Limit-Info"] == "api-usage=100000/100000"


def test_bulk2_query_pages_with_locators(sf):
    chunks = list(
        sf.bulk2.Account.query("SELECT Id, Value_Tier__c FROM Account", max_records=200, wait=0)
    )
    rows = [line for chunk in chunks for line in chunk.splitlines()[1:]]
    assert len(chunks) == 3 and len(rows) == 450
    assert chunks[0].splitlines()[0] == '"Id","Value_Tier__c"'


def test_describe_reports_restricted_picklists(sf):
    fields = {f["name"]: f for f in sf.Account.describe()["fields"]}
    tier = fields["Value_Tier__c"]
    assert tier["type"] == "picklist" and tier["restrictedPicklist"] and tier["updateable"]
    assert {v["value"] for v in tier["picklistValues"]} >= {"private", "wealth", "affluent", "mass"}
    assert fields["IsPersonAccount"]["updateable"] is False


def test_seed_is_person_and_business_accounts_with_some_dirty_records(sandbox, sf):
    rows = sf.query_all(
        "SELECT Id, IsPersonAccount, PersonContactId, Transactions_90d__c FROM Account"
    )["records"]
    person = [r for r in rows if r["IsPersonAccount"]]
    assert 0 < len(rows) - len(person) < len(person)
    assert all(r["PersonContactId"].startswith("003") for r in person)
    text_in_number = {
        sandbox.customer_id(c.index)
        for c in generate(450, 7)
        if c.dirty and c.profile["activity"]["transactions_90d"] == "N/A"
    }
    assert text_in_number
    assert {r["Id"] for r in rows if r["Transactions_90d__c"] == "N/A"} == text_in_number


class _Listener(BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []
    fail_first: ClassVar[int] = 1

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).bodies.append(body)
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_response(500)
            self.end_headers()
            return
        ack = ACK
        self.send_response(200)
        self.send_header("Content-Length", str(len(ack)))
        self.end_headers()
        self.wfile.write(ack)

    def log_message(self, *args):
        pass


def test_edit_sends_an_outbound_message_retried_until_acked(sandbox):
    _Listener.bodies = []
    _Listener.fail_first = 1
    listener = ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    try:
        sandbox.set_notification_target(
            f"http://127.0.0.1:{listener.server_port}/webhooks/salesforce", backoff_base=0.01
        )
        cid = sandbox.customer_id(7)
        sandbox.edit_customer(cid, {"assets.deposits": 7_000_000})
        assert sandbox.outbound.wait_idle(timeout=10)
    finally:
        listener.shutdown()
    assert len(_Listener.bodies) == 2 and _Listener.bodies[0] == _Listener.bodies[1]
    root = ElementTree.fromstring(_Listener.bodies[-1])
    notes = root.find(f".//{OM}notifications")
    assert notes.find(f"{OM}OrganizationId").text == "00D000000000001AAA"
    sobject_id = notes.find(
        f"{OM}Notification/{OM}sObject/{{urn:sobject.enterprise.soap.sforce.com}}Id"
    ).text
    assert sobject_id == cid
    assert sandbox.outbound.stats.acked_notifications == 1
    # the webhook receiver's own parser accepts what the sandbox sends
    (event,) = verify_and_parse(_Listener.bodies[-1], org_id="00D000000000001AAA")
    assert event.customer_id == cid
    assert event.version == sandbox.org.get("Account", cid)["SystemModstamp"]


def test_control_api_needs_its_token_and_edits_customers(sandbox):
    info = sandbox.info()
    session = _session(sandbox)
    url = f"{info.base_url}/__sandbox__"
    assert session.get(f"{url}/calls").status_code == 401
    auth = {"Authorization": f"Bearer {info.control_token}"}
    cid = sandbox.customer_id(3)
    before = sandbox.org.get("Account", cid)["SystemModstamp"]
    r = session.post(
        f"{url}/customers/{cid}", headers=auth, json={"changes": {"credit.score": 512}}
    )
    assert r.status_code == 200
    after = sandbox.org.get("Account", cid)
    assert after["Credit_Score__c"] == 512 and after["SystemModstamp"] > before
    assert session.post(f"{url}/limits", headers=auth, json={"daily": 10}).json()["daily"] == 10
    assert json.loads(session.get(f"{url}/writes", headers=auth).text)["write_calls"] == 0


def test_fast_seed_flattening_matches_the_generator_mapping():
    """The sandbox's seeding shortcut gives exactly ``to_crm_fields`` (in Salesforce form:
    a number in a Text field is its text)."""
    fields = load_default_mapping("salesforce").mapping.fields
    texts = {fields[path] for path in TEXT_IMPORTED_INPUTS}
    flatten = flattener(fields)
    for customer in generate(300, 11):
        expected = {
            k: to_sf_value(str(v) if k in texts and isinstance(v, int) else v)
            for k, v in to_crm_fields(customer, fields).items()
        }
        assert flatten(customer.profile) == expected


def test_an_input_imported_as_text_is_a_text_field_holding_numbers_as_text(sf):
    """A Number field holds only numbers or null, so text among numbers lives in a Text
    field, as describe reports it; its numbers are text too."""
    field = load_default_mapping("salesforce").mapping.fields["activity.transactions_90d"]
    described = {f["name"]: f for f in sf.Account.describe()["fields"]}
    assert described[field]["type"] == "string"
    values = [r[field] for r in sf.query_all(f"SELECT {field} FROM Account")["records"]]
    assert all(v is None or isinstance(v, str) for v in values)
    assert any(v is not None and v.isdigit() for v in values)


def test_a_task_on_a_missing_customer_is_a_per_record_error(sandbox, sf):
    task = {"attributes": {"type": "Task"}, "Crmtier_Key__c": "t", "WhatId": "001999999999999AAA"}
    (result,) = sf.restful(
        "composite/sobjects/Task/Crmtier_Key__c", method="PATCH", json={"records": [task]}
    )
    assert result["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    assert result["errors"][0]["fields"] == ["WhatId"]


def test_a_save_that_fails_midway_is_rolled_back_whole(sandbox, monkeypatch):
    """One save is one transaction: when a record of it cannot be stored, none of its
    records stay, and their external keys are not left indexed to ids that do not exist."""
    org, store = sandbox.org, sandbox.org.store
    tasks = [
        {"attributes": {"type": "Task"}, "Crmtier_Key__c": key, "Subject": "x"}
        for key in ("k1", "k2")
    ]
    real_insert = store.insert_many
    calls = []

    def insert_then_fail(obj, rows):
        calls.append(obj)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_insert(obj, rows)

    monkeypatch.setattr(store, "insert_many", insert_then_fail)
    with pytest.raises(OSError):
        org.upsert("Task", "Crmtier_Key__c", tasks, False)
    monkeypatch.setattr(store, "insert_many", real_insert)
    assert [rid for rid, _, _ in store.scan("Task")] == []
    results = org.upsert("Task", "Crmtier_Key__c", tasks, False)
    assert [(r.created, r.errors) for r in results] == [(True, []), (True, [])]
    assert len(list(store.scan("Task"))) == 2
