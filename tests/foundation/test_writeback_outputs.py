"""Write-back fields are declared once (tiering_core/outputs.py): the shipped default
mappings and the three sandboxes' schemas agree with the declaration, every CRM encodes
every declared type, Salesforce's ``doctor --fix`` metadata is typed from it, and a new
output of a known type needs no connector code (only its mapping line)."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from importlib import resources
from typing import Any

import pytest
from outputs_check import (
    CREATED_TYPE,
    Described,
    fxiaoke_described,
    mapping_disagreements,
    salesforce_described,
    schema_disagreements,
    zoho_described,
)

from connectors.fxiaoke.mapping import FIELD_TYPES as FX_TYPES
from connectors.fxiaoke.mapping import value_to_crm
from connectors.mapping import DefaultMapping, load_default_mapping
from connectors.registry import kinds
from connectors.salesforce.mapping import FIELD_TYPES as SF_TYPES
from connectors.salesforce.mapping import encoder
from connectors.salesforce.metadata import writeback_component
from connectors.sandbox import fxiaoke_schema, salesforce_schema, zoho_schema
from connectors.zoho.mapping import FIELD_TYPES as ZOHO_TYPES
from tiering_core import outputs
from tiering_core.outputs import OUTPUT_KINDS, OUTPUTS, RESTRICTED, TEXT, Output

#: the CRMs of this repository, in the order of the type tables this test imports
KINDS = ("salesforce", "zoho", "fxiaoke")


def _raw(kind: str) -> dict[str, Any]:
    text = resources.files(f"connectors.{kind}").joinpath("default_mapping.toml").read_text()
    return tomllib.loads(text)


def _sandbox_fields(kind: str, default: DefaultMapping) -> dict[str, Described]:
    """The customer object's fields as the kind's sandbox describes them."""
    if kind == "salesforce":
        schema = salesforce_schema.build_schema(default, accounts_as_members=True)
        return salesforce_described(schema[default.mapping.object].describe())
    if kind == "zoho":
        org = zoho_schema.build_schema(default)
        return zoho_described(org.as_json(zoho_schema.CUSTOMER_MODULE))
    objects = fxiaoke_schema.build_objects(default)
    return fxiaoke_described(objects[default.mapping.object].describe())


# --- default mappings -------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_each_default_mapping_maps_and_flags_what_is_declared(kind):
    assert mapping_disagreements(_raw(kind)) == []


def _without_flag(raw: dict[str, Any]) -> None:
    raw["writeback"]["restricted"] = ["aml_risk"]


def _without_field(raw: dict[str, Any]) -> None:
    del raw["writeback"]["fields"]["status"]


def _with_undeclared(raw: dict[str, Any]) -> None:
    raw["writeback"]["fields"]["tier_note"] = "Tier_Note__c"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_without_flag, "edd_required: restricted, not flagged"),
        (_without_field, "status: declared, not mapped"),
        (_with_undeclared, "tier_note: mapped, not declared"),
    ],
)
def test_a_default_mapping_that_disagrees_is_caught(change, problem):
    raw = _raw("salesforce")
    change(raw)
    assert mapping_disagreements(raw) == [problem]


def test_a_config_cannot_unrestrict_a_declared_restricted_output():
    raw = _raw("zoho")
    _without_flag(raw)
    restricted = DefaultMapping.model_validate(raw).writeback.restricted
    assert set(restricted) >= RESTRICTED and restricted[0] == "aml_risk"


# --- sandbox schemas --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_each_sandbox_schema_types_the_outputs_as_declared(kind):
    default = load_default_mapping(kind)
    described = _sandbox_fields(kind, default)
    assert schema_disagreements(kind, default.writeback.fields, described) == []


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("output", "change", "problem"),
    [
        ("aml_risk", {"values": ("low", "medium", "high", "unrated")}, "lacks ['prohibited']"),
        ("value_score", {"type": "text"}, "is text, declared number"),
        ("next_review", {"type": "boolean"}, "is boolean, declared date"),
    ],
)
def test_a_sandbox_schema_that_disagrees_is_caught(kind, output, change, problem):
    default = load_default_mapping(kind)
    described = _sandbox_fields(kind, default)
    name = default.writeback.fields[output]
    described[name] = replace(described[name], **change)
    [found] = schema_disagreements(kind, default.writeback.fields, described)
    assert found.startswith(f"{output}: {name}") and problem in found


def test_a_zoho_picklist_missing_a_value_is_caught():
    """The way the Zoho tests model an org whose admin did not add a value."""
    default = load_default_mapping("zoho")
    org = zoho_schema.build_schema(default)
    name = default.writeback.fields["value_tier"]
    org.set_picklist(zoho_schema.CUSTOMER_MODULE, name, ("private", "wealth", "mass"))
    described = zoho_described(org.as_json(zoho_schema.CUSTOMER_MODULE))
    [found] = schema_disagreements("zoho", default.writeback.fields, described)
    assert "lacks ['affluent', 'unrated', 'corporate_strategic'" in found


def test_an_unrestricted_salesforce_picklist_is_caught():
    default = load_default_mapping("salesforce")
    described = _sandbox_fields("salesforce", default)
    name = default.writeback.fields["status"]
    described[name] = replace(described[name], restricted=False)
    assert schema_disagreements("salesforce", default.writeback.fields, described) == [
        f"status: {name} is not a restricted picklist"
    ]


# --- per-CRM encoding of types ----------------------------------------------------------


@pytest.mark.parametrize("table", [SF_TYPES, ZOHO_TYPES, FX_TYPES], ids=KINDS)
def test_every_crm_encodes_every_declared_type(table):
    """A new kind of output type fails here until each CRM says how it holds it."""
    assert set(table) == set(OUTPUT_KINDS)
    assert set(CREATED_TYPE) == set(KINDS)


@pytest.mark.parametrize("output", OUTPUTS, ids=lambda o: o.name)
def test_salesforce_fix_metadata_is_typed_from_the_declaration(output):
    component = writeback_component(output.name, "Account.X__c")
    typ = output.type
    assert component["type"] == SF_TYPES[typ.kind][1]
    assert output.label in component["description"]
    if typ.kind == "picklist":
        value_set = component["valueSet"]
        listed = [v["fullName"] for v in value_set["valueSetDefinition"]["value"]]
        assert listed == list(typ.values) and value_set["restricted"] is True
    if typ.kind in ("text", "long_text"):
        assert component["length"] == typ.max_length
    if typ.kind == "number":
        assert component["scale"] == typ.scale


# --- adding an output -------------------------------------------------------------------


def test_a_new_output_of_a_known_type_needs_only_its_declaration_and_mapping_lines(
    monkeypatch: pytest.MonkeyPatch,
):
    """What issue 19 asks: one declaration entry; the fix metadata, the sandboxes' fields
    and the value encoders follow, with no connector code touched."""
    monkeypatch.setitem(outputs.BY_NAME, "tier_note", Output("tier_note", TEXT, "Note"))
    names = {"salesforce": "Tier_Note__c", "zoho": "Tier_Note"}
    for kind in KINDS:
        raw = _raw(kind)
        name = names.get(kind, "field_tier_note__c")
        raw["writeback"]["fields"]["tier_note"] = name  # the one mapping line
        field = _sandbox_fields(kind, DefaultMapping.model_validate(raw))[name]
        assert field == Described(CREATED_TYPE[kind]["text"]), kind
    component = writeback_component("tier_note", "Account.Tier_Note__c")
    assert (component["type"], component["length"]) == ("Text", 255)
    note = "AUM above the private floor"
    assert encoder("tier_note")(note) == note
    assert value_to_crm("tier_note", note) == note


def test_the_registered_crms_are_the_ones_checked_here() -> None:
    assert set(kinds()) == set(KINDS)
