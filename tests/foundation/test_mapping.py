"""CRM record -> canonical profile: per-field coercion, per-field DQ, never a failed record."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.mapping import CANONICAL_TYPES, FieldMapping, profile_from_crm

MAPPING = FieldMapping(
    object="Account",
    fields={
        "assets.deposits": "Deposits__c",
        "credit.score": "Score__c",
        "aml.pep": "PEP__c",
        "activity.products_held": "Products__c",
        "credit.loan_class": "Loan_Class__c",
        "qualified_investor": "QI__c",
    },
)


@pytest.mark.parametrize(
    ("raw", "path", "expected"),
    [
        ({"Deposits__c": 12.5}, ("assets", "deposits"), 12.5),
        ({"Deposits__c": "12.5"}, ("assets", "deposits"), 12.5),
        ({"Deposits__c": 12}, ("assets", "deposits"), 12.0),  # an int is made a float
        ({"Score__c": 700}, ("credit", "score"), 700),
        ({"Score__c": "700"}, ("credit", "score"), 700),
        ({"Score__c": 700.0}, ("credit", "score"), 700),
        ({"PEP__c": "true"}, ("aml", "pep"), True),
        ({"PEP__c": 0}, ("aml", "pep"), False),
        ({"Products__c": "fund;bond"}, ("activity", "products_held"), ("fund", "bond")),
        ({"Products__c": ["fund", "bond"]}, ("activity", "products_held"), ("fund", "bond")),
        ({"Loan_Class__c": "made_up"}, ("credit", "loan_class"), "made_up"),  # rules flag it
        ({"QI__c": True}, ("qualified_investor",), True),
        ({"Loan_Class__c": 7}, ("credit", "loan_class"), "7"),
    ],
)
def test_values_are_coerced_to_canonical_types(
    raw: dict[str, Any], path: tuple[str, ...], expected: Any
) -> None:
    profile, issues = profile_from_crm("001", raw, MAPPING)
    node: Any = profile
    for part in path:
        node = getattr(node, part)
    assert node == expected
    assert type(node) is type(expected)  # a value of another type went through its coercer
    assert issues == ()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"Deposits__c": "N/A"}, "assets.deposits"),
        ({"Score__c": "7x"}, "credit.score"),
        ({"Score__c": 700.5}, "credit.score"),
        ({"Score__c": True}, "credit.score"),  # a bool is not an int here
        ({"Deposits__c": False}, "assets.deposits"),
        ({"PEP__c": "maybe"}, "aml.pep"),
        ({"PEP__c": 2}, "aml.pep"),
        ({"Products__c": 5}, "activity.products_held"),
    ],
)
def test_a_badly_typed_field_is_dropped_with_a_dq_issue(raw: dict[str, Any], field: str) -> None:
    profile, issues = profile_from_crm("001", {**raw, "QI__c": True}, MAPPING)
    assert [(i.code, i.field) for i in issues] == [("DQ_BAD_TYPE", field)]
    assert profile.qualified_investor is True  # the rest of the record is kept


def test_missing_and_empty_values_mean_missing_not_zero() -> None:
    profile, issues = profile_from_crm("001", {"Deposits__c": "", "Score__c": None}, MAPPING)
    assert profile.assets is None and profile.credit is None
    assert issues == ()


def test_extra_top_level_values_and_bad_dates() -> None:
    stamp = datetime(2026, 3, 1, tzinfo=UTC)
    profile, _ = profile_from_crm("001", {}, MAPPING, modified_at=stamp, owner_id="005x")
    assert (profile.modified_at, profile.owner_id) == (stamp, "005x")
    profile, issues = profile_from_crm("001", {}, MAPPING, modified_at="not a date")
    assert profile.modified_at is None
    assert [i.field for i in issues] == ["modified_at"]


def test_unknown_canonical_path_is_reported_not_raised() -> None:
    mapping = FieldMapping(object="Account", fields={"assets.gold": "Gold__c"})
    _, issues = profile_from_crm("001", {"Gold__c": 1}, mapping)
    assert [(i.code, i.field) for i in issues] == [("DQ_UNKNOWN_FIELD", "assets.gold")]


def test_canonical_types_cover_every_input_leaf_and_no_output_state() -> None:
    assert CANONICAL_TYPES["assets.deposits"] is float
    assert "previous.value_tier" not in CANONICAL_TYPES
    assert "aml.high_risk_countries" in CANONICAL_TYPES
