"""Dirty data as a real Zoho org holds it: text only in text fields (a number field holds a
number or nothing), numbers out of range, blanks, picklist values no longer listed. So the
unmodified zcrmsdk types every page of the sandbox, and the connector reads each page once."""

from __future__ import annotations

from typing import Any

import pytest
from zcrmsdk.src.com.zoho.crm.api import ParameterMap
from zcrmsdk.src.com.zoho.crm.api.record import GetRecordsParam, RecordOperations, ResponseWrapper

TRANSACTIONS = "Transactions_90D"  # an import made it a single-line text field


def test_a_plain_zcrmsdk_script_reads_every_page_of_the_seeded_sandbox(zoho, zconnect):
    client = zconnect(zoho).client
    assert len(zoho.schema.fields("Contacts")) > 50  # more than `fields` may name: leave it out
    records: list[Any] = []
    page, more = 1, True
    while more:
        params = ParameterMap()
        params.add(GetRecordsParam.page, page)
        params.add(GetRecordsParam.per_page, 200)
        with client._bound():  # the client's session and CA; zcrmsdk itself unmodified
            wrapper = RecordOperations().get_records("Contacts", params).get_object()
        assert isinstance(wrapper, ResponseWrapper), f"zcrmsdk could not type page {page}"
        records += wrapper.get_data()
        more, page = bool(wrapper.get_info().get_more_records()), page + 1
    assert len(records) == len(zoho.customer_ids())
    held = [r.get_key_value(TRANSACTIONS) for r in records]
    assert "N/A" in held  # the generator's dirty customers, kept as the text they are
    assert all(v is None or v == "N/A" or v.isdigit() for v in held)


def test_each_page_is_read_once_and_text_becomes_a_dq_issue(zoho, zconnect):
    connector = zconnect(zoho)
    records = [r for page in connector.read_changed(None) for r in page.records]
    assert zoho.server.calls.count("read") == 2  # 250 customers, 200 a page: no re-reads
    flagged = {i.field for r in records for i in r.dq_issues}
    assert "activity.transactions_90d" in flagged
    numbers = [r.profile.activity.transactions_90d for r in records if r.profile.activity]
    assert any(isinstance(n, int) for n in numbers)  # "57" in the text field reads as 57


@pytest.mark.parametrize(
    ("path", "value", "stored"),
    [
        ("activity.transactions_90d", "N/A", "N/A"),  # text field: any text
        ("activity.transactions_90d", 57, "57"),  # a number kept as its text
        ("assets.deposits", -5.0, -5.0),  # out of range, still a number
        ("credit.loan_class", "unknown_grade", "unknown_grade"),  # an option since removed
        ("aml.cash_volume_90d", None, None),  # blank
    ],
)
def test_the_sandbox_holds_values_as_their_fields_do(zoho, path, value, stored):
    rid = zoho.customer_ids()[0]
    zoho.edit_customer(rid, {path: value})
    assert zoho.record(rid)[zoho.default.mapping.fields[path]] == stored


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("activity.digital_logins_90d", "N/A"),  # Integer
        ("assets.deposits", "1,000"),  # Currency/Decimal
        ("aml.pep", "yes"),  # Boolean
    ],
)
def test_the_sandbox_refuses_what_no_zoho_field_of_that_type_holds(zoho, path, value):
    with pytest.raises(ValueError, match="cannot hold"):
        zoho.edit_customer(zoho.customer_ids()[0], {path: value})


def test_doctor_flags_the_text_field_as_a_warning_not_an_error(zoho, zconnect):
    (line,) = [c for c in zconnect(zoho).check() if c.name == "mapping activity.transactions_90d"]
    assert (line.ok, line.severity) == (False, "warning") and "text" in line.detail
    assert "data-quality issues" in line.fix
