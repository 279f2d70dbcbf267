"""Every Zoho read names its fields (data minimisation), whatever their number: the v2 API
crmtier speaks documents ``fields`` as optional with no cap ("Get Records API", v2), while
later versions cap it at 50 ("Get Records", v5/v7). An org that applies the later cap is
found by ``crmtier doctor`` and fails the sync with a configuration error; crmtier never
falls back to a read of every field."""

from __future__ import annotations

import pytest

from connectors.errors import ConfigError
from connectors.mapping import FieldMapping, WritebackConfig, load_default_mapping
from connectors.sandbox.server import Request
from connectors.zoho.mapping import (
    LATER_VERSIONS_FIELDS_CAP,
    fields_param,
    only_fields,
    read_fields,
)

DEFAULT = load_default_mapping("zoho")
OWNER_AND_STAMP = 2
READ_CHECK = "zoho: read the mapped fields by name"


def _mapping(inputs: int) -> FieldMapping:
    return FieldMapping(object="Contacts", fields={f"in.f{i}": f"In_{i}" for i in range(inputs)})


def _writeback(outputs: dict[str, str]) -> WritebackConfig:
    return WritebackConfig(fields=outputs)


@pytest.mark.parametrize(
    ("mapping", "writeback", "count"),
    [
        (_mapping(0), _writeback({}), 2),  # owner and modstamp only
        (_mapping(48), _writeback({}), 50),  # the later versions' cap
        (_mapping(49), _writeback({}), 51),  # one past it: still named
        (_mapping(47), _writeback({"value_tier": "Value_Tier"}), 50),
        (_mapping(1), _writeback({"value_tier": "In_0"}), 3),  # one field, named once
        (
            DEFAULT.mapping,
            DEFAULT.writeback,
            len(DEFAULT.mapping.fields) + len(DEFAULT.writeback.fields) + OWNER_AND_STAMP,
        ),
    ],
    ids=["none", "at_cap", "past_cap", "inputs_and_outputs", "shared", "shipped_default"],
)
def test_every_read_names_exactly_its_fields(mapping, writeback, count):
    names = read_fields(mapping, writeback)
    assert len(names) == count
    assert fields_param(names).split(",") == names


def test_only_fields_keeps_the_asked_for_and_the_id():
    row = {"id": "1", "Deposits": 5, "Last_Name": "Canary", "Email": "c@example.com"}
    assert only_fields(row, ["Deposits", "Owner"]) == {"id": "1", "Deposits": 5}


def _asked(zoho) -> list[str]:
    seen: list[str] = []

    def note(request: Request) -> bool:  # records what each read asks for, injects nothing
        seen.append(request.arg("fields") or "*")
        return False

    zoho.server.inject("read", match=note, times=None)
    return seen


def test_shipped_mapping_reads_by_name_one_call_a_page_and_one_per_100_ids(zoho, zconnect):
    connector = zconnect(zoho)
    wanted = read_fields(connector.mapping, connector.writeback)
    assert len(wanted) > LATER_VERSIONS_FIELDS_CAP  # the case this file is about
    asked = _asked(zoho)
    records = [r for page in connector.read_changed(None) for r in page.records]
    assert len(records) == len(zoho.customer_ids()) == 250
    assert zoho.server.calls.count("read") == 2  # 250 customers, 200 a page
    fetched = connector.fetch(zoho.customer_ids()[:150])
    assert len(fetched) == 150
    assert zoho.server.calls.count("read") == 4  # ids: 100 a call
    assert {r.profile.id for r in fetched} == set(zoho.customer_ids()[:150])
    assert all(r.current.keys() == connector.writeback.fields.keys() for r in fetched)
    assert asked and all(a.split(",") == wanted for a in asked)


def test_doctor_passes_the_named_read_where_the_org_takes_it(zoho, zconnect):
    checks = {c.name: c for c in zconnect(zoho).check()}
    assert checks[READ_CHECK].ok
    assert (
        checks[READ_CHECK].detail
        == f"{len(read_fields(DEFAULT.mapping, DEFAULT.writeback))} fields"
    )


def test_an_org_capping_fields_at_50_is_a_config_error_never_a_read_of_everything(
    sandbox_factory, zconnect
):
    strict = sandbox_factory("zoho", customers=20, max_fields=LATER_VERSIONS_FIELDS_CAP)
    connector = zconnect(strict)
    asked = _asked(strict)
    check = {c.name: c for c in connector.check()}[READ_CHECK]
    assert not check.ok
    assert f"a read naming {len(read_fields(DEFAULT.mapping, DEFAULT.writeback))} fields" in (
        check.detail
    )
    assert "cap a read at 50 field names" in check.fix
    with pytest.raises(ConfigError, match="size limit"):
        list(connector.read_changed(None))
    assert asked and "*" not in asked  # it never asked for every field
