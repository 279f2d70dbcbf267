"""Text longer than its field is refused, as Salesforce refuses it (STRING_TOO_LONG, "The
String specified is longer than allowed": StatusCode, SOAP API Developer Guide), and
crmtier never sends such text: a Task's Subject is cut at 255 and its Description at
32,000 characters (Object Reference, "Task"), a write-back text at its output's length."""

from __future__ import annotations

import pytest
from sf_helpers import save_account, task

from connectors.contract import FieldUpdate, WritePlan
from tiering_core.outputs import output_type

KEY = "Crmtier_Key__c"


@pytest.fixture
def sandbox(sandbox_factory):
    return sandbox_factory("salesforce", customers=3)


def _upsert_task(connector, customer: str, **fields):
    record = {"attributes": {"type": "Task"}, KEY: "k-raw", "WhatId": customer, **fields}
    body = {"allOrNone": False, "records": [record]}
    return connector.client.collection("PATCH", f"composite/sobjects/Task/{KEY}", body)[0]


@pytest.mark.parametrize(
    ("field", "limit"), [("Subject", 255), ("Description", 32_000), (KEY, 255)]
)
def test_the_sandbox_refuses_text_longer_than_a_task_field(sandbox, connect, field, limit):
    connector = connect(sandbox)
    customer = sandbox.customer_id(0)
    fill = "x" if field != KEY else "k"
    too_long = _upsert_task(connector, customer, **{field: fill * (limit + 1)})
    assert not too_long["success"]
    assert too_long["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    assert too_long["errors"][0]["fields"] == [field]
    assert _upsert_task(connector, customer, **{field: fill * limit})["success"]


def test_the_sandbox_refuses_a_write_back_text_longer_than_its_output(sandbox, connect):
    connector = connect(sandbox)
    field = connector.writeback.fields["policy_version"]
    limit = output_type("policy_version").max_length
    assert limit is not None
    saved = save_account(connector, sandbox.customer_id(0), **{field: "v" * (limit + 1)})
    assert saved["errors"][0]["statusCode"] == "STRING_TOO_LONG"


def test_the_connector_cuts_a_long_task_to_the_fields_lengths(sandbox, connect):
    connector = connect(sandbox)
    customer = sandbox.customer_id(1)
    long_task = task(customer, "k-long", subject="s" * 300, description="d" * 40_000)
    assert all(r.ok for r in connector.apply(WritePlan(tasks=(long_task,))))
    (written,) = [t for t in sandbox.tasks() if t.external_id == "k-long"]
    assert written.subject == "s" * 255


def test_long_reasons_are_cut_to_the_long_text_field(sandbox, connect):
    connector = connect(sandbox)
    customer = sandbox.customer_id(2)
    limit = output_type("reasons").max_length
    assert limit is not None
    plan = WritePlan(field_updates=(FieldUpdate(customer, {"reasons": "r" * (limit + 50)}),))
    assert all(r.ok for r in connector.apply(plan))
    assert sandbox.written(customer)["reasons"] == "r" * limit
