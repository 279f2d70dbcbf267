"""Text longer than its field is refused, as Salesforce refuses it (STRING_TOO_LONG, "The
String specified is longer than allowed": StatusCode, SOAP API Developer Guide), and
crmtier never sends such text: a Task's Subject is cut at 255 and its Description at
32,000 characters (Object Reference, "Task"); a write-back text is never cut (a longer
one is refused, a failed write)."""

from __future__ import annotations

import logging

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


#: (subject length, description length, warnings the write logs)
TASK_LENGTHS = [
    pytest.param(255, 32_000, [], id="task-filling-its-fields-quiet"),
    pytest.param(
        300,
        10,
        ["1 Task(s) of rule(s) rm_call: Subject cut to the field's 255 characters"],
        id="task-subject-cut-reported",
    ),
    pytest.param(
        300,
        40_000,
        [
            "1 Task(s) of rule(s) rm_call: Subject cut to the field's 255 characters",
            "1 Task(s) of rule(s) rm_call: Description cut to the field's 32000 characters",
        ],
        id="task-both-cut-reported",
    ),
]


@pytest.mark.parametrize(("subject", "description", "warnings"), TASK_LENGTHS)
def test_the_connector_cuts_a_long_task_to_the_fields_lengths_and_says_so(
    sandbox, connect, caplog, subject, description, warnings
):
    """A cut task still reaches its owner (a refused one would not), and the cut is never
    silent: one warning a field, naming the rule and the length, not the text."""
    connector = connect(sandbox)
    customer = sandbox.customer_id(1)
    long_task = task(customer, "k-long", subject="s" * subject, description="d" * description)
    caplog.set_level(logging.WARNING, logger="connectors.salesforce.task_writes")
    assert all(r.ok for r in connector.apply(WritePlan(tasks=(long_task,))))
    (written,) = [t for t in sandbox.tasks() if t.external_id == "k-long"]
    assert written.subject == "s" * min(subject, 255)
    said = [r.getMessage() for r in caplog.records if r.name.endswith("task_writes")]
    assert said == warnings


#: reasons texts by length against the long text field's: (extra characters, written whole)
REASONS_LENGTHS = [
    pytest.param(-1, True, id="reasons-under-the-field"),
    pytest.param(0, True, id="reasons-filling-the-field"),
    pytest.param(1, False, id="reasons-one-over-refused"),
    pytest.param(50, False, id="reasons-far-over-refused"),
]


@pytest.mark.parametrize(("extra", "whole"), REASONS_LENGTHS)
def test_long_reasons_are_written_whole_or_refused_never_cut(sandbox, connect, extra, whole):
    """The writer never cuts the reasons to the field: a cut would leave the CRM holding
    less than the audit trail records as decided. The config check keeps the policy's
    ``strategy.reasons_max_chars`` within the field crmtier creates, so a longer text
    means a shorter field made by hand: Salesforce refuses it (STRING_TOO_LONG), a failed
    write, not retried, counted with the others."""
    connector = connect(sandbox)
    customer = sandbox.customer_id(2)
    limit = output_type("reasons").max_length
    assert limit is not None
    text = "r" * (limit + extra)
    plan = WritePlan(field_updates=(FieldUpdate(customer, {"reasons": text}),))
    (result,) = connector.apply(plan)
    assert result.ok is whole
    if whole:
        assert sandbox.written(customer)["reasons"] == text
    else:
        assert (result.error_code, result.retryable) == ("STRING_TOO_LONG", False)
        assert sandbox.written(customer).get("reasons") != text[:limit]
