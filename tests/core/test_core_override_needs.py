"""Needs tier and preferred channel follow the tier a customer's own data earns, never an
override's (docs/overrides.md, "What an override changes").

The sync passes the tier it last wrote (the override's, once applied) as
``previous.value_tier``; the value rule's hysteresis holds the customer there, which used
to move needs and channel to the override's tier from the second run on. The decision now
carries what the customer qualifies for, and its own clock, wherever an override makes
them differ (``qualified_value_tier``, ``qualified_below_floor_since``), and the next
decision's hysteresis for needs and channel runs against those. A table of runs, and a
property: a chain of runs with an override decides needs, channel and their reasons
exactly as the same chain without it.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from core_support import AS_OF
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_core_override import GOOD, POLICY, customer

from tiering_core.columns import Columns
from tiering_core.engine import assess_batch, decide_batch
from tiering_core.lines import assessment_lines
from tiering_core.models import AssessmentData, Previous
from tiering_core.policy import policy_over_default
from tiering_core.rules.household import HouseholdLinks, Link

EXPIRES = date.fromisoformat(GOOD["expires"])
AFTER = EXPIRES + timedelta(days=1)
GRACE = POLICY.value.grace_days
#: What the sync passes once it has written the override's tier (its clock cleared) for
#: an affluent customer: the tier it qualifies for kept apart.
WRITTEN = {"value_tier": "private", "assessed_at": AS_OF.isoformat()}
KEPT = {**WRITTEN, "qualified_value_tier": "affluent"}
WEALTH = {"assets": {"deposits": 600_000}}
#: A wealth customer lifted to private whose own assets then fell to affluent.
FELL = {"assets": {"deposits": 100_000}}

# name, override, customer changes, as of, then: value tier, needs tier, channel, the
# qualified keys the decision carries (None: none, the two agree)
CASES: list[tuple[str, Any, dict[str, Any], date, str, str, str, Any]] = [
    (
        "first application",
        GOOD,
        {"previous": {"value_tier": "affluent"}},
        AS_OF,
        "private",
        "basic",
        "phone",
        ("affluent", None),
    ),
    (
        "re-tier the same day",
        GOOD,
        {"previous": KEPT},
        AS_OF,
        "private",
        "basic",
        "phone",
        ("affluent", None),
    ),
    (
        "re-tier the next day",
        GOOD,
        {"previous": KEPT},
        AS_OF + timedelta(days=1),
        "private",
        "basic",
        "phone",
        ("affluent", None),
    ),
    (
        "the day after expiry: the grace holds the value tier, not needs",
        GOOD,
        {"previous": KEPT},
        AFTER,
        "private",
        "basic",
        "phone",
        ("affluent", None),
    ),
    (
        "a grace after expiry: the value tier falls back, the two agree again",
        GOOD,
        {"previous": {**KEPT, "below_floor_since": AFTER.isoformat()}},
        AFTER + timedelta(days=GRACE),
        "affluent",
        "basic",
        "phone",
        None,
    ),
    (
        "own tier at wealth under an override",
        GOOD,
        {**WEALTH, "previous": {**WRITTEN, "qualified_value_tier": "wealth"}},
        AS_OF,
        "private",
        "advanced",
        "phone",
        ("wealth", None),
    ),
    (
        "own assets fall under the override: its own grace starts",
        GOOD,
        {**FELL, "previous": {**WRITTEN, "qualified_value_tier": "wealth"}},
        AS_OF,
        "private",
        "advanced",
        "phone",
        ("wealth", AS_OF),
    ),
    (
        "own grace runs out under the override: needs fall, the override holds",
        GOOD,
        {
            **FELL,
            "previous": {
                **WRITTEN,
                "qualified_value_tier": "wealth",
                "qualified_below_floor_since": (AS_OF - timedelta(days=GRACE)).isoformat(),
            },
        },
        AS_OF,
        "private",
        "basic",
        "phone",
        ("affluent", None),
    ),
    (
        "an override removed: needs never moved, nothing kept apart",
        None,
        {"previous": {"value_tier": "affluent"}},
        AS_OF,
        "affluent",
        "basic",
        "phone",
        None,
    ),
    (
        # a store written before the qualified tier was kept: the held tier counts as the
        # customer's own until its grace runs out (its clock starts now)
        "an override applied before the qualified tier was kept",
        GOOD,
        {"previous": WRITTEN},
        AS_OF,
        "private",
        "professional",
        "rm_visit",
        ("private", AS_OF),
    ),
]


def _qualified(d: AssessmentData) -> tuple[str, date | None] | None:
    if "qualified_value_tier" not in d:
        assert "qualified_below_floor_since" not in d
        return None
    return d["qualified_value_tier"], d["qualified_below_floor_since"]


@pytest.mark.parametrize(
    ("override", "changes", "as_of", "tier", "needs", "channel", "own"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_needs_and_channel_follow_the_qualified_tier(
    override: Any,
    changes: dict[str, Any],
    as_of: date,
    tier: str,
    needs: str,
    channel: str,
    own: Any,
) -> None:
    [d] = decide_batch([customer(override, **changes)], POLICY, as_of)
    got = (d["value_tier"], d["needs_tier"], d["preferred_channel"], _qualified(d))
    assert got == (tier, needs, channel, own)


@pytest.mark.parametrize("as_of", sorted({c[3] for c in CASES}))
def test_a_row_is_decided_alike_alone_and_in_the_batch(as_of: date) -> None:
    batch = [customer(c[1], **c[2]) for c in CASES]
    alone = [decide_batch([p], POLICY, as_of)[0] for p in batch]
    assert list(decide_batch(batch, POLICY, as_of)) == alone


def test_a_household_lift_is_the_members_own_under_an_override() -> None:
    """The qualified tier is the computed one, household lift included: a member its
    household lifts to wealth and an override to private has wealth's needs, re-tier
    after re-tier."""
    households = policy_over_default({"households": {"enabled": True}})
    member = customer(GOOD, id="A", previous={**WRITTEN, "qualified_value_tier": "wealth"})
    spouse = customer(None, id="B", assets={"deposits": 450_000})
    links = HouseholdLinks.build(
        ["A", "B"], [Link("A", "H", "primary"), Link("B", "H", "spouse")], households
    )
    d = decide_batch([member, spouse], households, AS_OF, households=links)[0]
    got = (d["value_tier"], d["needs_tier"], d["preferred_channel"], _qualified(d))
    assert got == ("private", "advanced", "phone", ("wealth", None))


@pytest.mark.parametrize("as_of", sorted({c[3] for c in CASES}))
def test_crmtier_tier_writes_the_qualified_keys_as_the_model_does(as_of: date) -> None:
    """``crmtier tier``'s lines carry the qualified keys exactly where the decision does,
    byte for byte the model's JSON (which leaves them out where they are not set), and
    read back as the next line's ``previous``."""
    batch = [customer(c[1], **c[2]) for c in CASES]
    written = assessment_lines(Columns.from_profiles(batch, POLICY), POLICY, as_of)
    models = assess_batch(batch, POLICY, as_of)
    assert written == b"".join(a.model_dump_json().encode() + b"\n" for a in models)
    lines = [json.loads(line) for line in written.splitlines()]
    decided = decide_batch(batch, POLICY, as_of)
    assert [("qualified_value_tier" in line) for line in lines] == [
        _qualified(d) is not None for d in decided
    ]
    for line in lines:
        if "qualified_value_tier" in line:
            Previous.model_validate(
                {k: line[k] for k in ("qualified_value_tier", "qualified_below_floor_since")}
            )


# --- property: a chain of runs with an override, and the same chain without ------------

#: The reasons the needs and channel rules give (their values name the tier they read).
RULE_REASONS = ("NEED_", "CH_")


def _previous(d: AssessmentData, day: date) -> dict[str, Any]:
    """What the sync keeps of a decision for the next one (``sync.planner.tiers_of``,
    ``sync.state.CustomerState.previous``)."""
    since, own = d["below_floor_since"], _qualified(d)
    return {
        "value_tier": d["value_tier"],
        "assessed_at": day.isoformat(),
        "below_floor_since": since.isoformat() if since else None,
        "qualified_value_tier": own[0] if own else None,
        "qualified_below_floor_since": own[1].isoformat() if own and own[1] else None,
    }


def _needs_and_channel(d: AssessmentData) -> tuple[Any, ...]:
    reasons = sorted(
        (r["code"], str(r["value"]), str(r["threshold"]))
        for r in d["reasons"]
        if r["code"].startswith(RULE_REASONS)
    )
    return d["needs_tier"], d["preferred_channel"], reasons


def _run(
    override: dict[str, Any] | None, steps: list[tuple[int, float, int]], first: str | None
) -> list[tuple[Any, ...]]:
    day, previous, seen = AS_OF, {"value_tier": first}, []
    for gap, deposits, logins in steps:
        day += timedelta(days=gap)
        p = customer(
            override,
            assets={"deposits": deposits},
            activity={"digital_logins_90d": logins},
            previous=previous,
        )
        [d] = decide_batch([p], POLICY, day)
        seen.append(_needs_and_channel(d))
        previous = _previous(d, day)
    return seen


overrides = st.fixed_dictionaries(
    {
        "value_tier": st.one_of(st.none(), st.sampled_from(["private", "wealth", "affluent"])),
        "service_tier": st.one_of(st.none(), st.sampled_from(["private", "wealth"])),
        "expires": st.dates(AS_OF, AS_OF + timedelta(days=92)),
    }
)
steps = st.lists(
    st.tuples(
        st.integers(0, 60),
        st.sampled_from([0.0, 30_000, 60_000, 460_000, 600_000, 5_500_000, 7e6]),
        st.sampled_from([0, 40]),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overrides, steps, st.one_of(st.none(), st.sampled_from(["private", "wealth", "mass"])))
@example(
    {"value_tier": "private", "service_tier": None, "expires": EXPIRES},
    [(0, 100_000, 0), (1, 100_000, 0), (60, 100_000, 0), (60, 100_000, 0)],
    "affluent",
)
def test_an_override_never_changes_needs_or_channel_over_runs(
    o: dict[str, Any], runs: list[tuple[int, float, int]], first: str | None
) -> None:
    override = {**GOOD, **o}
    if override["value_tier"] is None and override["service_tier"] is None:
        override["value_tier"] = "private"
    assert _run(override, runs, first) == _run(None, runs, first)


def test_a_chain_without_overrides_keeps_nothing_apart() -> None:
    p = customer(None, previous={"value_tier": "wealth"}, assets={"deposits": 100_000})
    [d] = decide_batch([p], POLICY, AS_OF)
    assert _qualified(d) is None and d["below_floor_since"] == AS_OF
