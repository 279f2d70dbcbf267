"""The ``household_tier`` output (issue 21 §1 item 4): the tier of a member's best
household, decided and written back only when the batch came with household links."""

from __future__ import annotations

from typing import Any

import pytest
from core_support import AS_OF
from test_core_household import decide, person

from tiering_core.engine import decide_batch
from tiering_core.models import Assessment
from tiering_core.outputs import BY_NAME
from tiering_core.policy import Policy, policy_over_default
from tiering_core.rules.household import Link


@pytest.fixture
def policy() -> Policy:
    """The shipped policy with households switched on (they are opt-in)."""
    return policy_over_default({"households": {"enabled": True}})


def written(decision: dict[str, Any]) -> dict[str, Any]:
    return {a["field"]: a["value"] for a in decision["actions"] if a["kind"] == "set_field"}


# (members as (id, deposits, role), expected household tier by id)
CASES = [
    # a couple at 650万: the household is private, both members carry it
    ([("A", 4_000_000, "primary"), ("B", 2_500_000, "spouse")], {"A": "private", "B": "private"}),
    # the household's tier, whoever brings the assets
    ([("A", 7_000_000, "primary"), ("B", 10_000, "child")], {"A": "private", "B": "private"}),
    ([("A", 20_000, "primary"), ("B", 20_000, "spouse")], {"A": "mass", "B": "mass"}),
    # a business partner neither counts nor takes the household's tier (as in the lift)
    ([("A", 400_000, "primary"), ("B", 9_000_000, "business")], {"A": "affluent", "B": None}),
    # nobody with AUM: the household is unrated, no household tier
    ([("A", None, "primary"), ("B", None, "spouse")], {"A": None, "B": None}),
]


@pytest.mark.parametrize(("members", "expected"), CASES)
def test_household_tier_is_the_households(
    policy: Policy, members: list[tuple[str, Any, str]], expected: dict[str, str | None]
) -> None:
    people = [person(cid, dep) for cid, dep, _ in members]
    got = decide(people, [Link(cid, "HH-1", role) for cid, _, role in members], policy)
    assert {cid: d["household_tier"] for cid, d in got.items()} == expected
    for d in got.values():
        assert written(d)["household_tier"] == d["household_tier"]
        assert BY_NAME["household_tier"].type.problem(d["household_tier"]) is None
        assert Assessment.model_validate(d).model_dump()["household_tier"] == d["household_tier"]


def test_best_of_two_households_and_none_outside_any(policy: Policy) -> None:
    people = [person("P", 1_000_000), person("S", 5_500_000), person("D", 30_000)]
    people.append(person("X", 8_000_000))
    links = [
        Link("P", "OWN", "primary"),
        Link("D", "OWN", "spouse"),
        Link("P", "CHILD", "parent"),
        Link("S", "CHILD", "primary"),
    ]
    got = decide(people, links, policy)
    assert got["P"]["household_tier"] == "private"
    assert got["D"]["household_tier"] == "wealth"
    assert got["X"]["household_tier"] is None  # in no household


def test_switched_off_policy_writes_no_household_tier(policy: Policy) -> None:
    off = policy_over_default({"households": {"enabled": False}})
    people = [person("A", 4_000_000), person("B", 2_500_000)]
    got = decide(people, [Link("A", "H", "primary"), Link("B", "H", "spouse")], off)
    assert [d["household_tier"] for d in got.values()] == [None, None]


def test_without_links_nothing_changes(policy: Policy) -> None:
    """No household links (the tier command, a CRM without households): no key, no
    action, so such output stays byte-identical to before households."""
    d = dict(decide_batch([person("A", 4_000_000)], policy, AS_OF)[0])
    assert "household_tier" not in d
    assert "household_tier" not in written(d)
