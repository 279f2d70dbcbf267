"""Household tiering (rules.household through engine.decide_batch): table-driven cases for
each rule of docs/policy.md "Households", and properties over generated households: a
household never lowers a tier, never moves a risk level, never shows another member's
amounts; a member in two households takes the best; a split household stops lifting."""

from __future__ import annotations

import tomllib
from datetime import date
from typing import Any

import pytest
from core_support import AS_OF, build
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tiering_core.engine import decide_batch
from tiering_core.models import CustomerProfile
from tiering_core.policy import Policy, default_policy_text, policy_over_default
from tiering_core.reasons import make_reason
from tiering_core.rules.household import HouseholdLinks, Link

DEFAULTS = tomllib.loads(default_policy_text())["households"]


@pytest.fixture
def policy() -> Policy:
    """The shipped policy with households switched on (they are opt-in)."""
    return policy_over_default({"households": {"enabled": True}})


def person(cid: str, deposits: float | None, **changes: Any) -> CustomerProfile:
    assets = {"deposits": deposits, "investments": 0, "insurance": 0}
    if deposits is None:
        assets = {"deposits": None, "investments": None, "insurance": None}
    return CustomerProfile.model_validate(build(id=cid, assets=assets, **changes))


def decide(
    people: list[CustomerProfile], links: list[Link], policy: Policy
) -> dict[str, dict[str, Any]]:
    hh = HouseholdLinks.build([p.id for p in people], links, policy)
    return {d["id"]: dict(d) for d in decide_batch(people, policy, AS_OF, households=hh)}


def codes(decision: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["code"]: r for r in decision["reasons"]}


def test_defaults_are_the_documented_policy() -> None:
    policy = policy_over_default({})
    assert policy.households.enabled is False  # opt-in: simulate/explain lack links
    assert policy.households.count_roles == tuple(DEFAULTS["count_roles"])
    assert "business" not in policy.households.count_roles
    assert policy.households.review_aml == ("high", "prohibited")


# (members as (id, deposits, role), expected tier by id, lifted ids)
CASES = [
    # a couple: 400万 + 250万 = 650万 >= 600万 lifts both into private
    (
        [("A", 4_000_000, "primary"), ("B", 2_500_000, "spouse")],
        {"A": "private", "B": "private"},
        {"A", "B"},
    ),
    # the household tier only lifts: a private member stays private, a mass one rises
    (
        [("A", 7_000_000, "primary"), ("B", 10_000, "child")],
        {"A": "private", "B": "private"},
        {"B"},
    ),
    # below every floor together: nothing moves
    ([("A", 20_000, "primary"), ("B", 20_000, "spouse")], {"A": "mass", "B": "mass"}, set()),
    # a business partner neither counts nor is lifted
    (
        [("A", 4_000_000, "primary"), ("B", 2_500_000, "business")],
        {"A": "wealth", "B": "wealth"},
        set(),
    ),
    # a member without AUM adds nothing and is not lifted (its data gap comes first)
    (
        [("A", 400_000, "primary"), ("B", None, "spouse"), ("C", 200_000, "child")],
        {"A": "wealth", "B": "unrated", "C": "wealth"},
        {"A", "C"},
    ),
]


@pytest.mark.parametrize(("members", "tiers", "lifted"), CASES)
def test_household_rules(
    policy: Policy, members: list[tuple[str, Any, str]], tiers: dict[str, str], lifted: set[str]
) -> None:
    people = [person(cid, dep) for cid, dep, _ in members]
    links = [Link(cid, "HH-1", role) for cid, _, role in members]
    got = decide(people, links, policy)
    assert {cid: d["value_tier"] for cid, d in got.items()} == tiers
    assert {cid for cid, d in got.items() if "HOUSEHOLD_AUM" in codes(d)} == lifted
    for cid in lifted:
        reason = codes(got[cid])["HOUSEHOLD_AUM"]
        assert reason["value"] == "HH-1"
        assert reason["threshold"] == policy.floor(tiers[cid])


def test_disabled_policy_tiers_everyone_alone(policy: Policy) -> None:
    off = policy_over_default({"households": {"enabled": False}})
    people = [person("A", 4_000_000), person("B", 2_500_000)]
    got = decide(people, [Link("A", "H", "primary"), Link("B", "H", "spouse")], off)
    assert [d["value_tier"] for d in got.values()] == ["wealth", "wealth"]


def test_member_in_two_households_takes_the_best_and_names_it(policy: Policy) -> None:
    people = [person("P", 1_000_000), person("S", 5_500_000), person("D", 30_000)]
    links = [
        Link("P", "OWN", "primary"),
        Link("D", "OWN", "spouse"),  # 103万: wealth
        Link("P", "CHILD", "parent"),
        Link("S", "CHILD", "primary"),  # 650万: private
    ]
    got = decide(people, links, policy)
    assert got["P"]["value_tier"] == "private"
    assert codes(got["P"])["HOUSEHOLD_AUM"]["value"] == "CHILD"
    assert got["D"]["value_tier"] == "wealth"  # P counts in full in both households
    assert codes(got["D"])["HOUSEHOLD_AUM"]["value"] == "OWN"


def test_split_household_stops_lifting(policy: Policy) -> None:
    people = [person("A", 4_000_000), person("B", 2_500_000)]
    together = decide(people, [Link("A", "H", "primary"), Link("B", "H", "spouse")], policy)
    split = decide(people, [Link("A", "H", "primary"), Link("B", "H2", "primary")], policy)
    assert {d["value_tier"] for d in together.values()} == {"private"}
    assert {d["value_tier"] for d in split.values()} == {"wealth"}


def test_aml_high_member_flags_the_household_and_nobody_inherits(policy: Policy) -> None:
    people = [person("A", 4_000_000, aml={"pep": True}), person("B", 2_500_000)]
    got = decide(people, [Link("A", "H", "primary"), Link("B", "H", "spouse")], policy)
    assert got["A"]["aml_risk"] == "high"
    assert got["B"]["aml_risk"] == "low"  # risk is never inherited
    assert not got["B"]["edd_required"]
    for d in got.values():
        review = codes(d)["HOUSEHOLD_REVIEW"]
        assert (review["value"], review["dimension"]) == ("H", "aml")
    # the compliance task: the flagged member's EDD review names the household
    edd = [a for a in got["A"]["actions"] if a.get("rule") == "edd_review"]
    assert edd and "Household H" in edd[0]["description"]
    assert not any(a.get("rule") == "edd_review" for a in got["B"]["actions"])


def test_no_review_flag_without_a_flagged_member(policy: Policy) -> None:
    people = [person("A", 4_000_000), person("B", 2_500_000)]
    got = decide(people, [Link("A", "H", "primary"), Link("B", "H", "spouse")], policy)
    assert not any("HOUSEHOLD_REVIEW" in codes(d) for d in got.values())


def test_upgrade_by_household_is_an_upgrade(policy: Policy) -> None:
    people = [
        person("A", 4_000_000, previous={"value_tier": "wealth"}),
        person("B", 2_500_000, previous={"value_tier": "wealth"}),
    ]
    got = decide(people, [Link("A", "H", "primary"), Link("B", "H", "spouse")], policy)
    assert codes(got["A"])["VAL_UPGRADE"]["value"] == "wealth"


# --- properties -----------------------------------------------------------------------

RANK = ("private", "wealth", "affluent", "mass")
amounts = st.one_of(st.none(), st.integers(0, 8_000_000).map(float))
roles = st.sampled_from(["primary", "spouse", "child", "parent", "business", "other"])


@st.composite
def households(draw: st.DrawFn) -> tuple[list[CustomerProfile], list[Link]]:
    n = draw(st.integers(2, 8))
    people = [person(f"C{i}", draw(amounts), aml={"pep": draw(st.booleans())}) for i in range(n)]
    links = [
        Link(f"C{i}", f"H{draw(st.integers(0, 2))}", draw(roles))
        for i in range(n)
        for _ in range(draw(st.integers(0, 2)))
    ]
    return people, links


def _alone(people: list[CustomerProfile], policy: Policy) -> dict[str, dict[str, Any]]:
    return {d["id"]: dict(d) for d in decide_batch(people, policy, AS_OF)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(households())
def test_household_never_lowers_a_tier_nor_moves_risk(
    case: tuple[list[CustomerProfile], list[Link]],
) -> None:
    policy = policy_over_default({"households": {"enabled": True}})
    people, links = case
    alone = _alone(people, policy)
    together = decide(people, links, policy)
    for cid, d in together.items():
        before, after = alone[cid], d
        if before["value_tier"] in RANK:
            assert RANK.index(after["value_tier"]) <= RANK.index(before["value_tier"])
        else:
            assert after["value_tier"] == before["value_tier"]
        for risk in ("credit_risk", "aml_risk", "ops_risk", "edd_required"):
            assert after[risk] == before[risk]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(households())
def test_reasons_never_show_another_members_amounts(
    case: tuple[list[CustomerProfile], list[Link]],
) -> None:
    policy = policy_over_default({"households": {"enabled": True}})
    people, links = case
    floors = set(policy.tier_floors().values())
    for cid, d in decide(people, links, policy).items():
        for code in ("HOUSEHOLD_AUM", "HOUSEHOLD_REVIEW"):
            reason = codes(d).get(code)
            if reason is None:
                continue
            assert reason["value"] in {
                link.household_id for link in links if link.customer_id == cid
            }
            assert reason["threshold"] is None or reason["threshold"] in floors
            # the text is rendered from those two values alone: no amount of anyone's
            rendered = make_reason(code, reason["value"], reason["threshold"])["text"]
            assert dict(reason["text"]) == dict(rendered)


def _rank(tier: str) -> int:
    return RANK.index(tier) if tier in RANK else len(RANK)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(households())
def test_member_of_several_households_takes_the_best_of_each_alone(
    case: tuple[list[CustomerProfile], list[Link]],
) -> None:
    policy = policy_over_default({"households": {"enabled": True}})
    people, links = case
    together = decide(people, links, policy)
    alone = _alone(people, policy)
    for hid in {lk.household_id for lk in links}:
        only = decide(people, [lk for lk in links if lk.household_id == hid], policy)
        for cid, d in only.items():
            # each household alone lifts no higher than all of them together
            assert _rank(together[cid]["value_tier"]) <= _rank(d["value_tier"])
    for cid, d in together.items():
        if "HOUSEHOLD_AUM" in codes(d):
            named = codes(d)["HOUSEHOLD_AUM"]["value"]
            only = decide(people, [lk for lk in links if lk.household_id == named], policy)
            assert only[cid]["value_tier"] == d["value_tier"]  # the named one gives it
        else:
            assert d["value_tier"] == alone[cid]["value_tier"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(households(), st.integers(0, 2))
def test_splitting_a_household_never_raises_a_tier(
    case: tuple[list[CustomerProfile], list[Link]], which: int
) -> None:
    policy = policy_over_default({"households": {"enabled": True}})
    people, links = case
    target = f"H{which}"
    split = [
        Link(lk.customer_id, f"{target}-{i % 2}", lk.role) if lk.household_id == target else lk
        for i, lk in enumerate(links)
    ]
    before = decide(people, links, policy)
    after = decide(people, split, policy)
    for cid in before:
        assert _rank(after[cid]["value_tier"]) >= _rank(before[cid]["value_tier"])


def test_a_member_listed_twice_counts_once(policy: Policy) -> None:
    people = [person("A", 3_000_000), person("B", 10_000)]
    twice = [Link("A", "H", "primary"), Link("A", "H", "spouse"), Link("B", "H", "child")]
    assert decide(people, twice, policy)["B"]["value_tier"] == "wealth"  # 301万, not 601万


@pytest.mark.parametrize("since", [None, date(2026, 5, 1)])
def test_a_member_held_at_its_households_tier_is_lifted_not_held(
    policy: Policy, since: date | None
) -> None:
    """Found by a second full sync rewriting every lifted member: hysteresis held the member
    (last written tier wealth, own AUM below its floor) before the lift ran, so the reason
    flipped to VAL_HELD_GRACE and a downgrade clock started though the household still
    reaches wealth. The household explains the tier; no clock runs."""
    previous = {"value_tier": "wealth", "assessed_at": "2026-06-01", "below_floor_since": since}
    people = [person("A", 600_000), person("B", 10_000, previous=previous)]
    links = [Link("A", "H", "primary"), Link("B", "H", "spouse")]
    b = decide(people, links, policy)["B"]
    assert b["value_tier"] == "wealth"
    assert "HOUSEHOLD_AUM" in codes(b)
    assert not {"VAL_HELD_GRACE", "VAL_HELD_BUFFER"} & set(codes(b))
    assert b["below_floor_since"] is None


def test_a_member_listed_twice_counts_if_any_of_its_roles_counts(policy: Policy) -> None:
    """The order of a CRM's relationship rows must not decide a tier (found by the split
    property: a business link listed before a primary one dropped the member's AUM)."""
    people = [person("A", 3_000_000), person("B", 10_000)]
    for first, second in (("business", "primary"), ("primary", "business")):
        links = [Link("A", "H", first), Link("A", "H", second), Link("B", "H", "child")]
        assert decide(people, links, policy)["B"]["value_tier"] == "wealth"
