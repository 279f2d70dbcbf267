"""Zoho's cap of 50 names in a read's ``fields`` (Get Records, v7 get-records.html): how many
names each mapping asks for, what goes on the wire, and that the shipped mapping, which
needs more than 50, still reads one call a page and one call per 100 fetched ids."""

from __future__ import annotations

import pytest

from connectors.mapping import FieldMapping, WritebackConfig, load_default_mapping
from connectors.zoho.mapping import (
    FIELDS_PARAM_LIMIT,
    fields_param,
    only_fields,
    read_fields,
)

DEFAULT = load_default_mapping("zoho")
OWNER_AND_STAMP = 2


def _mapping(inputs: int) -> FieldMapping:
    return FieldMapping(object="Contacts", fields={f"in.f{i}": f"In_{i}" for i in range(inputs)})


def _writeback(outputs: dict[str, str]) -> WritebackConfig:
    return WritebackConfig(fields=outputs)


@pytest.mark.parametrize(
    ("mapping", "writeback", "count", "sent"),
    [
        (_mapping(0), _writeback({}), 2, True),  # owner and modstamp only
        (_mapping(48), _writeback({}), 50, True),  # exactly the cap: named
        (_mapping(49), _writeback({}), 51, False),  # one past: left out
        (_mapping(47), _writeback({"value_tier": "Value_Tier"}), 50, True),
        (_mapping(1), _writeback({"value_tier": "In_0"}), 3, True),  # one field, named once
        (
            DEFAULT.mapping,
            DEFAULT.writeback,
            len(DEFAULT.mapping.fields) + len(DEFAULT.writeback.fields) + OWNER_AND_STAMP,
            False,
        ),
    ],
    ids=["none", "at_cap", "past_cap", "inputs_and_outputs", "shared", "shipped_default"],
)
def test_read_field_counts(mapping, writeback, count, sent):
    names = read_fields(mapping, writeback)
    assert len(names) == count
    param = fields_param(names)
    assert (param is not None) is sent
    assert param is None or param.split(",") == names
    assert sent is (count <= FIELDS_PARAM_LIMIT)


def test_only_fields_keeps_the_asked_for_and_the_id():
    row = {"id": "1", "Deposits": 5, "Last_Name": "Canary", "Email": "c@example.com"}
    assert only_fields(row, ["Deposits", "Owner"]) == {"id": "1", "Deposits": 5}


def test_shipped_mapping_reads_one_call_a_page_and_one_per_100_ids(zoho, zconnect):
    connector = zconnect(zoho)
    assert len(read_fields(connector.mapping, connector.writeback)) > FIELDS_PARAM_LIMIT
    records = [r for page in connector.read_changed(None) for r in page.records]
    assert len(records) == len(zoho.customer_ids()) == 250
    assert zoho.server.calls.count("read") == 2  # 250 customers, 200 a page
    fetched = connector.fetch(zoho.customer_ids()[:150])
    assert len(fetched) == 150
    assert zoho.server.calls.count("read") == 4  # ids: 100 a call
    assert {r.profile.id for r in fetched} == set(zoho.customer_ids()[:150])
    assert all(r.current.keys() == connector.writeback.fields.keys() for r in fetched)
