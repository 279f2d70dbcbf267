"""Decisions as columns (``decisions.decided``): what a caller reads from the columns
without a customer's whole decision (its ``set_field`` values, its decision without
actions, its value tier) equals what that decision holds, on seeded generated books under
every policy variant, with and without household links and overrides, for every set of
action kinds. (Until the per-customer path was deleted, this test held every row equal to
it; the golden fixtures pin the rows: tests/core/test_core_golden.py.)"""

from __future__ import annotations

import pytest
from core_support import AS_OF, generated_bank, policies

from tiering_core import decisions
from tiering_core.columns import Columns
from tiering_core.engine import evaluate
from tiering_core.models import ACTION_KINDS, ActionKind, CustomerProfile
from tiering_core.policy import Policy
from tiering_core.rules import override
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
            override = {
                "value_tier": "private",
                "service_tier": "priority" if k % 3 else None,
                "reason": "reviewed",
                "expires": "2027-02-15",
                "approved": True,
                "maker_id": "005RM1",
                "checker_id": "005RM1" if k % 2 else "005HEAD",
                "proposed_at": "2026-11-19T16:00:00",
                "approved_at": "2026-11-20T09:30:00",
            }
            p = CustomerProfile.model_validate({**p.model_dump(), "override": override})
        out.append(p)
    return out


def links(profiles: list[CustomerProfile], policy: Policy) -> HouseholdLinks:
    ids = [p.id for p in profiles]
    pairs = [
        Link(cid, f"H{k // 3}", "primary" if k % 3 == 0 else "spouse") for k, cid in enumerate(ids)
    ]
    return HouseholdLinks.build(ids, pairs[: len(pairs) // 2], policy)


@pytest.mark.parametrize("seed", [3, 11, 29])
@pytest.mark.parametrize("name", ["default", "fico", "variant"])
@pytest.mark.parametrize("households", [False, True])
def test_columns_read_as_the_whole_decision(seed: int, name: str, households: bool) -> None:
    policy = policies()[name]
    profiles = book(seed)
    cols = Columns.from_profiles(profiles, policy)
    hh = links(profiles, policy) if households else None
    ev = override.apply(evaluate(cols, policy, AS_OF, hh), cols, policy, AS_OF)
    for kinds in KINDS:
        new = decisions.decided(cols, ev, policy, AS_OF, kinds)
        rows = list(new)
        assert len(rows) == len(new) == len(profiles)
        for i, before in enumerate(rows):
            plain = new.plain(i)
            assert new[i] is before and new.row(i) is before
            fields = {a["field"]: a["value"] for a in before["actions"] if a["kind"] == "set_field"}
            assert new.field_values(i) == fields
            assert list(plain) == list(before)
            assert {k: v for k, v in plain.items() if k != "actions"} == {
                k: v for k, v in before.items() if k != "actions"
            }
            assert new.value_tier[i] == before["value_tier"]
            assert before["id"] == profiles[i].id
