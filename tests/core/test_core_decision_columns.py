"""Decisions as columns (``decisions.decided``): what a caller reads from the columns
without a customer's whole decision (its ``set_field`` values, its decision without
actions, its reason codes, its value tier) equals what that decision holds, and is read
without making a reason dict, on seeded generated books under every policy variant, with
and without household links and overrides, for every set of action kinds; and a small
batch's outputs equal what was worked out by hand from the policy. (The golden fixtures
pin the rows: tests/core/test_core_golden.py.)"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from core_support import (
    AS_OF,
    build,
    generated_bank,
    override_of,
    policies,
    task_settings_policy,
)

from tests.core.test_core_reasons_field import one_by_one
from tiering_core import decisions
from tiering_core.columns import Columns
from tiering_core.decision_columns import DecisionColumns
from tiering_core.engine import Evaluation, decide_batch, evaluate
from tiering_core.fragments import to_json
from tiering_core.models import ACTION_KINDS, ActionKind, CustomerProfile, DecidedFields
from tiering_core.policy import Policy, load_policy
from tiering_core.reasons import make_reason
from tiering_core.row_reasons import codes_of
from tiering_core.rules import override, strategy
from tiering_core.rules.household import HouseholdLinks, Link

KINDS: list[frozenset[ActionKind]] = [
    ACTION_KINDS,
    frozenset({"set_field"}),
    frozenset({"set_field", "task"}),
    frozenset(),
]


def book(seed: int) -> list[CustomerProfile]:
    """A generated book; every seventh customer with an override (some refused)."""
    out = []
    for k, p in enumerate(generated_bank(300, seed=seed, dirty=True)):
        if k % 7 == 0:
            p = CustomerProfile.model_validate({**p.model_dump(), "override": override_of(k)})
        out.append(p)
    return out


def links(profiles: list[CustomerProfile], policy: Policy) -> HouseholdLinks:
    ids = [p.id for p in profiles]
    pairs = [
        Link(cid, f"H{k // 3}", "primary" if k % 3 == 0 else "spouse") for k, cid in enumerate(ids)
    ]
    return HouseholdLinks.build(ids, pairs[: len(pairs) // 2], policy)


def evaluated_book(
    seed: int, name: str, households: bool
) -> tuple[Policy, list[CustomerProfile], Columns, Evaluation]:
    """A generated ``book`` under policy ``name`` (one of ``policies``, or ``task_settings``:
    ``TASK_SETTINGS_POLICY``) with household ``links`` or not, its
    columns and its evaluation with overrides applied."""
    policy = task_settings_policy() if name == "task_settings" else policies()[name]
    profiles = book(seed)
    cols = Columns.from_profiles(profiles, policy)
    hh = links(profiles, policy) if households else None
    return (
        policy,
        profiles,
        cols,
        override.apply(evaluate(cols, policy, AS_OF, hh), cols, policy, AS_OF),
    )


def written(value: Any) -> Any:
    """A decided output as its ``set_field`` action writes it (dates as ISO text)."""
    return value.isoformat() if isinstance(value, date) else value


@pytest.mark.parametrize("seed", [3, 11, 29])
@pytest.mark.parametrize("name", ["default", "fico", "variant"])
@pytest.mark.parametrize("households", [False, True])
def test_columns_read_as_the_whole_decision(seed: int, name: str, households: bool) -> None:
    policy, profiles, cols, ev = evaluated_book(seed, name, households)
    for kinds in KINDS:
        new = decisions.decided(cols, ev, policy, AS_OF, kinds)
        # what the sync writing tier fields reads, read first: no reason dict is made
        summaries = new.summaries()
        codes = [codes_of(s["reasons"]) for s in summaries]
        field_rows = new.field_rows(set(new.set_fields))
        assert not {"_made", "rows", "texts"} & set(vars(new.cells))
        rows = list(new)
        assert len(rows) == len(new) == len(profiles) == len(summaries) == len(field_rows)
        for i, before in enumerate(rows):
            plain = new.plain(i)
            assert new[i] is before and new.row(i) is before
            # the reasons as ``make_reason`` makes each from the catalogue (not the cells)
            remade = [
                make_reason(r["code"], r["value"], r["threshold"], r["weight"])
                for r in before["reasons"]
            ]
            assert list(before["reasons"]) == remade
            assert codes[i] == tuple(r["code"] for r in remade)
            fields = {a["field"]: a["value"] for a in before["actions"] if a["kind"] == "set_field"}
            assert new.field_values(i) == fields == field_rows[i]
            if field_rows[i]:  # the fields as one customer's decision alone defines them
                assert field_rows[i]["reasons"] == one_by_one(remade, policy)
                for name in [*DecidedFields.__annotations__, "policy_version"]:
                    assert field_rows[i][name] == written(before[name]), name
            assert list(plain) == list(before) == list(summaries[i])
            assert (
                {k: v for k, v in plain.items() if k != "actions"}
                == {k: v for k, v in summaries[i].items() if k != "actions"}
                == {k: v for k, v in before.items() if k != "actions"}
            )
            assert new.value_tier[i] == before["value_tier"]
            assert before["id"] == profiles[i].id


@pytest.mark.parametrize("seed", [3, 11])
@pytest.mark.parametrize("name", ["default", "fico", "variant"])
def test_an_output_lines_reasons_are_each_rows_reasons_as_json(seed: int, name: str) -> None:
    """An output line's reasons (``ReasonCells.items``) are each row's reason dicts as
    pydantic-core writes them (AML contributions' own weights, listed countries, refused
    overrides among them), made without a reason list a customer; what the task rules
    read of a row (``reasons_of``) is its row's reasons."""
    policy = policies()[name]
    profiles = book(seed)
    cols = Columns.from_profiles(profiles, policy)
    ev = override.apply(evaluate(cols, policy, AS_OF), cols, policy, AS_OF)
    cells = decisions.decided(cols, ev, policy, AS_OF, ACTION_KINDS, rendered=True).cells
    items = cells.items()
    made = [cells.reasons_of(i) for i in range(len(profiles))]
    assert "rows" not in vars(cells)
    assert made == cells.rows
    assert items == [b",".join(map(to_json, row)) for row in cells.rows]


def test_a_hand_checked_batch() -> None:
    """Independent of the whole decision: three customers whose outputs are worked out by
    hand from the default policy (docs/policy.md: affluent floor 50,000, a low AML
    rating reviewed in 24 months; mass customers self-served), the first and third alike
    but for their id, so they share each reason."""
    policy = load_policy()
    profiles = [
        CustomerProfile.model_validate(build()),  # deposits 20,000: mass
        CustomerProfile.model_validate(build(id="T0002", assets={"deposits": 448_107.42})),
        CustomerProfile.model_validate(build(id="T0003")),
    ]
    dc = decide_batch(profiles, policy, AS_OF, kinds=frozenset({"set_field"}))
    assert isinstance(dc, DecisionColumns)
    mass, affluent, twin = dc.summaries()
    assert [mass["value_tier"], affluent["value_tier"], twin["value_tier"]] == [
        "mass",
        "affluent",
        "mass",
    ]
    assert [mass["service_level"], affluent["service_level"]] == ["self_service", "priority"]
    assert mass["next_review"] == affluent["next_review"] == date(2028, 11, 28)
    assert mass["status"] == "rated" and mass["dq_issues"] == [] and not mass["actions"]
    assert codes_of(mass["reasons"]) == (
        "VAL_AUM_MASS",
        "NEED_BASIC",
        "CRD_GOOD",
        "AML_SCORE",
        "CH_SELF_SERVICE",
    )
    assert codes_of(affluent["reasons"])[0] == "VAL_AUM_AFFLUENT"
    # the CRM's field: the four heaviest reasons but AML's (0.4), heaviest first
    fields = dc.field_rows({"reasons", "value_tier", "next_review", "not_a_field"})
    assert fields[0] == {
        "value_tier": "mass",
        "next_review": "2028-11-28",
        "reasons": "VAL_AUM_MASS AUM 20,000 below affluent floor 50,000; "
        "CRD_GOOD No adverse credit factor; "
        "NEED_BASIC No investment products: basic needs; "
        "CH_SELF_SERVICE Preferred channel digital self-service: little activity, mass customer",
    }
    assert fields[1]["reasons"].startswith(
        "VAL_AUM_AFFLUENT AUM 448,107.42 >= affluent floor 50,000; CRD_GOOD "
    )
    assert fields[2] == fields[0]
    assert not {"_made", "rows", "texts"} & set(vars(dc.cells))
    # read whole: the reasons as plain data, the twins sharing each reason
    first = mass["reasons"][0]
    assert {k: v for k, v in first.items() if k != "text"} == {
        "code": "VAL_AUM_MASS",
        "dimension": "value",
        "factor": "aum",
        "value": 20_000,
        "threshold": 50_000,
        "weight": 0.3,
    }
    assert dict(first["text"]) == {
        "en": "AUM 20,000 below affluent floor 50,000",
        "zh": "资产 20,000 低于富裕门槛 50,000",
    }
    # every reason as made alone from the catalogue (AML score 0 against the 40 cut-off)
    assert list(mass["reasons"]) == [
        make_reason("VAL_AUM_MASS", 20_000, 50_000),
        make_reason("NEED_BASIC"),
        make_reason("CRD_GOOD"),
        make_reason("AML_SCORE", 0, 40),
        make_reason("CH_SELF_SERVICE", "mass"),
    ]
    assert affluent["reasons"][0] == make_reason("VAL_AUM_AFFLUENT", 448_107.42, 50_000)
    assert all(a is b for a, b in zip(mass["reasons"], twin["reasons"], strict=True))


@pytest.mark.parametrize("seed", [3, 11])
@pytest.mark.parametrize("name", ["default", "fico", "variant", "task_settings"])
@pytest.mark.parametrize("households", [False, True])
def test_a_whole_decisions_actions_are_the_rules_asked_about_every_customer(
    seed: int, name: str, households: bool
) -> None:
    """A whole decision asks the task rules only about the batch's task candidates
    (``DecisionColumns.candidates``); its actions are exactly what they were when the
    rules were asked about every customer (``strategy.actions`` with each customer's
    outcome, then a refused override's task), for every set of action kinds, on dirty
    generated books with overrides and household links, under the policy variants and one
    that sets the task rules otherwise (``TASK_SETTINGS_POLICY``)."""
    policy, _, cols, ev = evaluated_book(seed, name, households)
    for kinds in KINDS:
        dc = decisions.decided(cols, ev, policy, AS_OF, kinds)
        assert (dc.candidates is None) == ("task" not in kinds)
        keys, members = dc.memberships
        for i, decision in enumerate(dc):
            customer, why = dc.customers[i], dc.cells.reasons_of(i)
            fields = tuple(
                {"kind": "set_field", "field": f, "value": v} for f, v in dc.field_values(i).items()
            )
            outcome = dc.named.outcome(i, dc.service_level[i], dc.issues[i])
            memberships = (keys, [member[i] for member in members])
            expected = list(
                strategy.actions(customer, fields, outcome, why, policy, AS_OF, kinds, memberships)
            )
            if dc.overrides and dc.overrides[i] is not None:
                o = dc.overrides[i]
                expected += override.refusal_tasks(
                    customer.id, customer.owner_id, o, why, policy, AS_OF, kinds
                )
            assert list(decision["actions"]) == expected, (i, kinds)
