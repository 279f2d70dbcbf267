"""Tier overrides with maker-checker and expiry (rules/override.py, docs/overrides.md).

A table of one case per rule, each a baseline customer with one override; properties over
arbitrary customers and overrides (never lowers risk, never lifts a sanctioned or
prohibited customer, never honours a self-approval or an expired override, batch equals
one by one); the fall back through the usual grace when an override expires; and the
shipped policy's [overrides] section tied to the model's defaults.
"""

from __future__ import annotations

import copy
import tomllib
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from core_support import AS_OF, BASELINE
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tiering_core.columns import Columns
from tiering_core.engine import assess, assess_batch, decide_batch
from tiering_core.lines import assessment_lines
from tiering_core.models import Assessment, CustomerProfile
from tiering_core.policy import default_policy_text, load_policy, parse_policy
from tiering_core.policy_strategy import OverridePolicy
from tiering_core.rules import override
from tiering_core.rules.base import AML_LEVELS, VALUE_TIERS

POLICY = load_policy()
APPROVED = datetime(2026, 11, 20, 9, 30)
#: An override that stands: proposed by one RM, approved by another, a quarter long.
GOOD = {
    "value_tier": "private",
    "reason": "family office consolidating its deposits here",
    "expires": "2027-02-15",
    "approved": True,
    "maker_id": "005RM1",
    "checker_id": "005HEAD",
    "proposed_at": "2026-11-19T16:00:00",
    "approved_at": APPROVED.isoformat(),
}
AFFLUENT = {"assets": {"deposits": 100_000, "investments": 0, "insurance": 0}}


def customer(override: dict[str, Any] | None, **changes: Any) -> CustomerProfile:
    data = copy.deepcopy(BASELINE)
    data.update(AFFLUENT)
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    if override is not None:
        data["override"] = override
    return CustomerProfile.model_validate(data)


def codes(a: Assessment, code: str) -> list[Any]:
    return [r.value for r in a.reasons if r.code == code]


def refusals(a: Assessment) -> list[Any]:
    return [t for t in a.actions if t.kind == "task" and t.rule == "override_refused"]


# name, override changes over GOOD (None: drop the key), customer changes, policy TOML,
# then: value tier, service level, refusal cause (None: not refused)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], str, str, str, str | None]] = [
    ("applied", {}, {}, "", "private", "private_banking", None),
    (
        "service tier only",
        {"value_tier": None, "service_tier": "wealth"},
        {},
        "",
        "affluent",
        "wealth_advisor",
        None,
    ),
    ("pending: not approved", {"approved": False}, {}, "", "affluent", "priority", None),
    ("pending: approval unset", {"approved": None}, {}, "", "affluent", "priority", None),
    ("moot: the computed tier", {"value_tier": "affluent"}, {}, "", "affluent", "priority", None),
    (
        "self-approved",
        {"checker_id": "005RM1"},
        {},
        "",
        "affluent",
        "priority",
        "self_approved",
    ),
    ("no checker", {"checker_id": None}, {}, "", "affluent", "priority", "no_checker"),
    ("no maker", {"maker_id": None}, {}, "", "affluent", "priority", "no_maker"),
    ("expired", {"expires": "2026-11-27"}, {}, "", "affluent", "priority", "expired"),
    ("expires today: holds", {"expires": "2026-11-28"}, {}, "", "private", "private_banking", None),
    ("no expiry", {"expires": None}, {}, "", "affluent", "priority", "no_expiry"),
    ("too long", {"expires": "2027-03-01"}, {}, "", "affluent", "priority", "too_long"),
    (
        "sanctioned",
        {},
        {"aml": {"sanctions_hit": True}},
        "",
        "affluent",
        "restricted",
        "compliance",
    ),
    ("lowers", {"value_tier": "mass"}, {}, "", "affluent", "priority", "not_a_lift"),
    ("other ladder", {"value_tier": "corporate_key"}, {}, "", "affluent", "priority", "not_a_lift"),
    ("unknown tier", {"value_tier": "platinum"}, {}, "", "affluent", "priority", "unknown_tier"),
    ("unrated asked", {"value_tier": "unrated"}, {}, "", "affluent", "priority", "unknown_tier"),
    (
        "dimension not allowed",
        {"value_tier": None, "service_tier": "private"},
        {},
        '[overrides]\nlift = ["value_tier"]\n',
        "affluent",
        "priority",
        "not_allowed",
    ),
    (
        "a longer maximum",
        {"expires": "2027-03-01"},
        {},
        "[overrides]\nmax_days = 120\n",
        "private",
        "private_banking",
        None,
    ),
    ("switched off", {}, {}, "[overrides]\nenabled = false\n", "affluent", "priority", None),
]


def _policy(text: str) -> Any:
    if not text:
        return POLICY
    data = tomllib.loads(default_policy_text())
    for section, values in tomllib.loads(text).items():
        data[section] = {**data[section], **values}
    return parse_policy(data)


@pytest.mark.parametrize(
    ("name", "changes", "profile", "policy", "tier", "service", "cause"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_each_rule(
    name: str,
    changes: dict[str, Any],
    profile: dict[str, Any],
    policy: str,
    tier: str,
    service: str,
    cause: str | None,
) -> None:
    o = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    a = assess(customer(o, **profile), _policy(policy), AS_OF)
    assert (a.value_tier, a.service_level) == (tier, service)
    assert codes(a, "OVERRIDE_REFUSED") == ([cause] if cause else [])
    applied = tier != "affluent" or service not in ("priority", "restricted")
    assert bool(codes(a, "MANUAL_OVERRIDE") + codes(a, "MANUAL_OVERRIDE_SERVICE")) == applied
    tasks = refusals(a)
    assert len(tasks) == (1 if cause else 0)
    if cause:
        task = tasks[0]
        assert task.owner_id == o.get("maker_id", BASELINE["owner_id"])
        assert override.CAUSES[cause][0] in task.subject
        assert "\n" not in task.subject


def test_crmtier_tier_writes_each_case_as_its_assessment() -> None:
    """``crmtier tier``'s lines (``assessment_lines``) apply overrides as ``assess`` does:
    every case above, in one batch, is the model's JSON byte for byte (they once went
    out without the override's reasons, tier, service level or refusal task)."""
    batch = [
        customer({k: v for k, v in {**GOOD, **changes}.items() if v is not None}, **profile)
        for _, changes, profile, policy, *_ in CASES
        if not policy
    ]
    written = assessment_lines(Columns.from_profiles(batch, POLICY), POLICY, AS_OF)
    expected = b"".join(
        a.model_dump_json().encode() + b"\n" for a in assess_batch(batch, POLICY, AS_OF)
    )
    assert written == expected


def test_applied_override_is_the_lead_reason_and_shows_its_expiry() -> None:
    a = assess(customer(GOOD), POLICY, AS_OF)
    lead = max(a.reasons, key=lambda r: r.weight)
    assert (lead.code, lead.value, lead.threshold) == ("MANUAL_OVERRIDE", "private", "2027-02-15")
    assert lead.text.en == "Approved override: value tier private until 2027-02-15"
    assert "有效至 2027-02-15" in lead.text.zh
    assert a.below_floor_since is None  # the grace clock stands still while it holds
    written = {x.field: x.value for x in a.actions if x.kind == "set_field"}
    assert written["value_tier"] == "private"
    assert written["reasons"].startswith("MANUAL_OVERRIDE ")


def test_refusal_task_is_stable_within_the_period_and_new_for_a_new_proposal() -> None:
    selfish = {**GOOD, "checker_id": GOOD["maker_id"]}
    first = refusals(assess(customer(selfish), POLICY, AS_OF))[0]
    again = refusals(assess(customer(selfish), POLICY, AS_OF + timedelta(days=1)))[0]
    later = {**selfish, "proposed_at": "2026-11-25T10:00:00"}
    renewed = refusals(assess(customer(later), POLICY, AS_OF))[0]
    assert first.dedupe_key == again.dedupe_key != renewed.dedupe_key
    no_maker = {k: v for k, v in GOOD.items() if k != "maker_id"}
    task = refusals(assess(customer(no_maker, owner_id=None), POLICY, AS_OF))[0]
    assert (task.owner_id, task.queue) == (None, "relationship_managers")


def test_no_override_no_task_and_no_reason() -> None:
    a = assess(customer(None), POLICY, AS_OF)
    assert not refusals(a)
    assert not [r for r in a.reasons if "OVERRIDE" in r.code]


def test_expired_override_falls_back_through_the_usual_grace() -> None:
    """The tier the override wrote is the previous tier; once expired, the computed
    (affluent) tier comes back only after the grace period, counted from the expiry."""
    grace = POLICY.value.grace_days
    expired = {**GOOD, "expires": "2026-11-27"}
    previous = {"value_tier": "private", "assessed_at": "2026-11-27"}
    first = assess(customer(expired, previous=previous), POLICY, AS_OF)
    assert first.value_tier == "private"
    assert codes(first, "VAL_HELD_GRACE") == [0]
    assert first.below_floor_since == AS_OF
    clock = {**previous, "below_floor_since": AS_OF.isoformat()}
    held = assess(customer(expired, previous=clock), POLICY, AS_OF + timedelta(days=grace - 1))
    assert held.value_tier == "private"
    down = assess(customer(expired, previous=clock), POLICY, AS_OF + timedelta(days=grace))
    assert down.value_tier == "affluent"
    assert codes(down, "VAL_DOWNGRADE") == [grace]


def test_while_it_holds_the_value_rule_does_not_count_down() -> None:
    clock = {"value_tier": "private", "below_floor_since": "2026-06-01"}
    a = assess(customer(GOOD, previous=clock), POLICY, AS_OF)
    assert a.value_tier == "private"
    assert a.below_floor_since is None
    assert not codes(a, "VAL_DOWNGRADE") and not codes(a, "VAL_HELD_GRACE")


def test_the_pure_step_never_lifts_an_aml_prohibited_customer() -> None:
    """Prohibited without a sanctions flag (a policy may rate other facts prohibited)."""
    profiles = [customer(GOOD), customer(GOOD)]
    oc = override.OverrideColumns.of(Columns.from_profiles(profiles, POLICY))
    assert oc is not None
    tiers = np.full(2, VALUE_TIERS.index("affluent"), dtype=np.int8)
    aml = np.array([AML_LEVELS.index("prohibited"), AML_LEVELS.index("high")], dtype=np.int8)
    v = override.decide(oc, tiers, aml, POLICY, AS_OF)
    assert v.value_applied.tolist() == [False, True]
    assert [override.CAUSE_NAMES[c] if c >= 0 else None for c in v.cause.tolist()] == [
        "compliance",
        None,
    ]


def test_shipped_policy_section_is_the_models_default() -> None:
    shipped = tomllib.loads(default_policy_text())["overrides"]
    assert load_policy().overrides == OverridePolicy() == OverridePolicy.model_validate(shipped)
    assert set(OverridePolicy().lift) == {"value_tier", "service_tier"}


# --- properties -----------------------------------------------------------------------

TIERS = [*VALUE_TIERS, "platinum"]
users = st.sampled_from(["005A", "005B", None])
overrides = st.fixed_dictionaries(
    {
        "value_tier": st.one_of(st.none(), st.sampled_from(TIERS)),
        "service_tier": st.one_of(st.none(), st.sampled_from(TIERS)),
        "expires": st.one_of(st.none(), st.dates(date(2026, 10, 1), date(2027, 6, 1))),
        "approved": st.one_of(st.none(), st.booleans()),
        "maker_id": users,
        "checker_id": users,
        "approved_at": st.one_of(
            st.none(), st.datetimes(datetime(2026, 9, 1), datetime(2026, 11, 28))
        ),
    }
)
customers = st.builds(
    lambda o, deposits, sanctioned, pep, kind, prev: customer(
        o,
        assets={"deposits": deposits},
        aml={"sanctions_hit": sanctioned, "pep": pep},
        kind=kind,
        previous={"value_tier": prev},
    ),
    overrides,
    st.floats(0, 2e7),
    st.sampled_from([False, True, None]),
    st.booleans(),
    st.sampled_from(["individual", "corporate"]),
    st.one_of(st.none(), st.sampled_from(VALUE_TIERS)),
)
RANK = {t: i for i, t in enumerate(VALUE_TIERS)}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _without(p: CustomerProfile) -> CustomerProfile:
    return p.model_copy(update={"override": None})


@SETTINGS
@given(customers)
@example(customer(GOOD, previous={"value_tier": "private"}))  # held at the override's tier
def test_an_override_never_lowers_risk_nor_any_tier(p: CustomerProfile) -> None:
    with_it, without = assess(p, POLICY, AS_OF), assess(_without(p), POLICY, AS_OF)
    assert (with_it.aml_risk, with_it.credit_risk, with_it.ops_risk, with_it.needs_tier) == (
        without.aml_risk,
        without.credit_risk,
        without.ops_risk,
        without.needs_tier,
    )
    assert RANK[with_it.value_tier] <= RANK[without.value_tier]
    o = p.override
    assert o is not None
    lifted = with_it.value_tier != without.value_tier or with_it.service_level != (
        without.service_level
    )
    # the hysteresis may hold the customer at the override's tier without it (the sync
    # wrote that tier last time): the override still decides, so it is applied, not moot
    held = codes(without, "VAL_HELD_BUFFER") or codes(without, "VAL_HELD_GRACE")
    if codes(with_it, "MANUAL_OVERRIDE") and not lifted:
        assert held and without.value_tier == o.value_tier == with_it.value_tier
    if lifted or codes(with_it, "MANUAL_OVERRIDE"):
        assert o.approved is True
        assert o.maker_id and o.checker_id and o.maker_id != o.checker_id
        assert o.expires is not None and o.expires >= AS_OF
        assert without.aml_risk != "prohibited" and not (p.aml and p.aml.sanctions_hit)
        assert codes(with_it, "MANUAL_OVERRIDE") or codes(with_it, "MANUAL_OVERRIDE_SERVICE")
    if codes(with_it, "OVERRIDE_REFUSED"):
        assert not lifted and len(refusals(with_it)) == 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(customers, min_size=2, max_size=8))
@example([customer(GOOD, previous={"value_tier": "private"}), customer(None)])
def test_batch_equals_one_by_one_with_overrides(batch: list[CustomerProfile]) -> None:
    assert assess_batch(batch, POLICY, AS_OF) == [assess(p, POLICY, AS_OF) for p in batch]


def test_a_batch_without_overrides_is_left_as_it_was() -> None:
    batch = [customer(None), customer(None, assets={"deposits": 9e6})]
    assert override.OverrideColumns.of(Columns.from_profiles(batch, POLICY)) is None
    decided = decide_batch(batch, POLICY, AS_OF)
    assert [d["value_tier"] for d in decided] == ["affluent", "private"]
