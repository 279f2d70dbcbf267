"""No CRM's own message text reaches crmtier's errors, logs or dead letters.

A CRM's error message can quote the record it refused (here a customer's name and phone
number). Every connector classifies by code through its ``ErrorRule`` table and words its
errors from the code, the table's meaning and API names only: checked for a refused record
(the write result, which becomes the dead letter's reason), a refused call (the exception)
and, end to end, for the dead letters and logs of ``crmtier sync``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.contract import FieldUpdate, WritePlan
from connectors.errors import ConnectorError
from connectors.sandbox import generator
from connectors.sandbox.fxiaoke_routes import error_response
from connectors.sandbox.server import Response
from sync import schema
from tests.sync.conftest import Harness, start_sandbox

CRMS = ["salesforce", "zoho", "fxiaoke"]
NAME, PHONE = "张三", "13800138000"
VENDOR_TEXT = f"value of customer {NAME} (phone {PHONE}) is not allowed here"


def first_customer(crm: str, sandbox: Any) -> str:
    if crm == "zoho":
        return str(sandbox.customer_ids()[0])
    if crm == "salesforce":
        return str(sandbox.customer_id(0))
    return generator.customer_id(0)


def refuse_record(crm: str, sandbox: Any, customer_id: str) -> None:
    """Make every write of this customer fail with ``VENDOR_TEXT`` as the CRM's message."""
    if crm == "fxiaoke":
        sandbox.reject_record(customer_id, code=32000, message=VENDOR_TEXT)
    elif crm == "zoho":
        sandbox.reject_records([customer_id], message=VENDOR_TEXT)
    else:  # one record per call in these tests: a per-record failure inside a 200 answer
        error = {"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": VENDOR_TEXT}
        answer = [{"success": False, "errors": [{**error, "fields": []}]}]
        sandbox.server.inject("collections_update", response=Response.json(answer), times=None)


def refuse_reads(crm: str, sandbox: Any) -> None:
    """Make every read call fail with ``VENDOR_TEXT`` as the CRM's message."""
    if crm == "fxiaoke":
        response = error_response(15002, VENDOR_TEXT)
        kind = "query"
    elif crm == "zoho":
        body = {"code": "INVALID_DATA", "details": {}, "message": VENDOR_TEXT, "status": "error"}
        response, kind = Response.json(body, 400), "read"
    else:
        response = Response.json([{"errorCode": "MALFORMED_QUERY", "message": VENDOR_TEXT}], 400)
        kind = "query"
    sandbox.server.inject(kind, response=response, times=None)


def assert_clean(text: str) -> None:
    assert NAME not in text and PHONE not in text


@pytest.mark.parametrize("crm", CRMS)
def test_a_refused_record_is_reported_without_the_crms_message(
    crm: str, sandbox_factory: Any, connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox = sandbox_factory(crm, customers=3)
    connector = connect(sandbox)
    customer = first_customer(crm, sandbox)
    refuse_record(crm, sandbox, customer)
    plan = WritePlan(field_updates=(FieldUpdate(customer, {"value_tier": "private"}),))
    [result] = connector.apply(plan)
    assert not result.ok and result.error_code
    assert_clean(result.message)  # what the sync engine keeps as the dead letter's reason
    assert_clean(caplog.text)


@pytest.mark.parametrize("crm", CRMS)
def test_a_refused_call_raises_without_the_crms_message(
    crm: str, sandbox_factory: Any, connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox = sandbox_factory(crm, customers=3)
    connector = connect(sandbox, max_attempts=2, backoff_base=0.001, backoff_cap=0.01)
    refuse_reads(crm, sandbox)
    with pytest.raises(ConnectorError) as raised:
        list(connector.read_changed(None))
    assert_clean(str(raised.value))
    assert_clean(caplog.text)


@pytest.mark.parametrize("crm", ["zoho", "fxiaoke"])
def test_sync_dead_letters_and_logs_hold_no_crm_message(
    crm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = start_sandbox(crm, tmp_path / crm, 12)
    try:
        harness = Harness(sandbox, tmp_path / crm)
        for key, value in harness.env.items():
            if key.startswith("CRMTIER_"):
                monkeypatch.setenv(key, value)
        refused = first_customer(crm, sandbox)
        refuse_record(crm, sandbox, refused)
        run = harness.run("--log-level", "debug")
        assert run.report is not None, run.stderr[-2000:]
        assert run.report["counts"]["dead_lettered"] >= 1
        assert_clean(run.stderr)
        engine = sa.create_engine(harness.state_url())
        try:
            with engine.connect() as conn:
                letters = conn.execute(sa.select(schema.dead_letters)).all()
        finally:
            engine.dispose()
        assert refused in {letter.customer_id for letter in letters}
        for letter in letters:
            assert_clean(letter.reason)
    finally:
        sandbox.stop()
