"""Properties over arbitrary customers: determinism, totality, monotonicity, and rows that
do not depend on each other (a customer decided alone, as a webhook's batch of one, equals
the same customer decided among others, through the one vectorised implementation).

Profiles are generated with every block possibly missing, negative and huge numbers, odd
strings where enumerations belong and odd country codes: anything that parses must be
assessed without an exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import Any, get_type_hints

import pytest
from core_support import AS_OF, generated_bank
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tiering_core.columns import Columns
from tiering_core.engine import assess, assess_batch, decide_batch
from tiering_core.lines import assessment_lines
from tiering_core.models import (
    ACTION_KINDS,
    ActionKind,
    Assessment,
    AssessmentData,
    CustomerProfile,
)
from tiering_core.policy import Policy, load_policy, policy_over_default

POLICY = load_policy()
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALUE_RANK = {
    "private": 0,
    "wealth": 1,
    "affluent": 2,
    "mass": 3,  # each ladder top down
    "corporate_strategic": 0,
    "corporate_key": 1,
    "corporate_standard": 2,
    "corporate_small": 3,
}
AML_RANK = {"unrated": -1, "low": 0, "medium": 1, "high": 2, "prohibited": 3}
RISK_RANK = {"unrated": -1, "low": 0, "medium": 1, "high": 2}

amount = st.one_of(
    st.none(),
    st.floats(-1e6, 1e11, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 50_000.0, 500_000.0, 6_000_000.0]),
)
count = st.one_of(st.none(), st.integers(-5, 2_000))
flag = st.one_of(st.none(), st.booleans())
odd = st.text(max_size=6)
level = st.one_of(st.none(), st.sampled_from(["low", "medium", "high"]), odd)
countries = st.one_of(
    st.none(), st.lists(st.one_of(st.sampled_from(["IR", "KP", "SG", "ZZ"]), odd), max_size=3)
)


def maybe(block: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any] | None]:
    return st.one_of(st.none(), block)


profiles = st.builds(
    dict,
    id=st.text(min_size=1, max_size=8),
    kind=st.one_of(st.none(), st.sampled_from(["individual", "corporate"]), odd),
    currency=st.sampled_from(["CNY", "CNY", "USD", "???"]),
    owner_id=st.one_of(st.none(), st.just("RM1"), st.just("")),
    assets=maybe(
        st.fixed_dictionaries({"deposits": amount, "investments": amount, "insurance": amount})
    ),
    aum_avg_3m=amount,
    activity=maybe(
        st.fixed_dictionaries(
            {
                "transactions_90d": count,
                "digital_logins_90d": count,
                "products_held": st.one_of(
                    st.none(),
                    st.lists(
                        st.sampled_from(
                            ["deposit", "fund", "insurance", "bond", "credit_card", ""]
                        ),
                        max_size=4,
                    ),
                ),
            }
        )
    ),
    revenue_12m=maybe(
        st.fixed_dictionaries(
            {"loan_interest": amount, "product_fees": amount, "service_fees": amount}
        )
    ),
    credit=maybe(
        st.fixed_dictionaries(
            {
                "score": st.one_of(st.none(), st.integers(-10, 2_000)),
                "debt_to_income": st.one_of(st.none(), st.floats(-1, 20, allow_nan=False)),
                "days_past_due_max_12m": count,
                "loan_class": st.one_of(
                    st.none(),
                    st.sampled_from(
                        ["normal", "special_mention", "substandard", "doubtful", "loss"]
                    ),
                    odd,
                ),
            }
        )
    ),
    aml=maybe(
        st.fixed_dictionaries(
            {
                "pep": flag,
                "sanctions_hit": flag,
                "high_risk_countries": countries,
                "cash_volume_90d": amount,
                "cross_border_count_90d": count,
                "cross_border_volume_90d": amount,
                "industry_risk": level,
                "str_count_12m": count,
                "refused_cdd": flag,
                "adverse_media": flag,
            }
        )
    ),
    ops=maybe(
        st.fixed_dictionaries(
            {
                "failed_operations_90d": count,
                "support_tickets_90d": count,
                "fraud_victim_flag": flag,
                "kyc_expired": flag,
            }
        )
    ),
    feedback=maybe(
        st.fixed_dictionaries(
            {
                "csat": st.one_of(st.none(), st.floats(-1, 10, allow_nan=False)),
                "nps": st.one_of(st.none(), st.integers(-200, 200)),
                "open_complaints": count,
                "complaints_12m": count,
            }
        )
    ),
    qualified_investor=flag,
    previous=maybe(
        st.fixed_dictionaries(
            {
                "value_tier": st.one_of(st.none(), st.sampled_from(list(VALUE_RANK)), odd),
                "below_floor_since": st.one_of(
                    st.none(), st.dates(date(2020, 1, 1), date(2030, 1, 1))
                ),
            }
        )
    ),
).map(CustomerProfile.model_validate)


def changed(profile: CustomerProfile, block: str, **values: Any) -> CustomerProfile:
    data = profile.model_dump()
    data[block] = {**(data[block] or {}), **values}
    return CustomerProfile.model_validate(data)


@SETTINGS
@given(profiles)
def test_total_and_deterministic(profile: CustomerProfile) -> None:
    first = assess(profile, POLICY, AS_OF)
    again = assess(profile, POLICY, AS_OF)
    assert first == again
    assert first.model_dump_json() == again.model_dump_json()
    # what the engine builds is a valid Assessment by the public schema
    assert Assessment.model_validate_json(first.model_dump_json()) == first
    assert first.value_score is None or 0 <= first.value_score <= 100
    if first.value_tier == "unrated":
        assert first.status == "unrated" and first.dq_issues


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(profiles, min_size=2, max_size=12))
def test_batch_equals_one_by_one(batch: list[CustomerProfile]) -> None:
    assert assess_batch(batch, POLICY, AS_OF) == [assess(p, POLICY, AS_OF) for p in batch]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(profiles, min_size=2, max_size=12))
def test_batch_equals_one_by_one_with_a_declared_score_scale(
    fico_policy: Policy, batch: list[CustomerProfile]
) -> None:
    """Under the optional score and DTI cut-offs too, rows do not depend on each other."""
    assert assess_batch(batch, fico_policy, AS_OF) == [assess(p, fico_policy, AS_OF) for p in batch]


def test_batch_equals_one_by_one_on_generated_bank() -> None:
    """A whole generated book decided at once equals each customer decided alone (a batch
    of one: every numpy reduction must stay within its row), field by field."""
    batch = generated_bank(2_000, seed=11)
    results = assess_batch(batch, POLICY, AS_OF)
    assert results == [assess(p, POLICY, AS_OF) for p in batch]
    assert {a.value_tier for a in results} >= {"private", "wealth", "affluent", "mass"}
    held = {r.code for a in results for r in a.reasons}
    assert {
        "VAL_HELD_BUFFER",
        "VAL_HELD_GRACE",
        "VAL_DOWNGRADE",
        "VAL_UPGRADE",
        "AML_SANCTIONS",
        "AML_PEP",
        "CRD_LOAN_CLASS_HIGH",
        "OPS_FRAUD_VICTIM",
    } <= held


def test_plain_decisions_are_exactly_what_the_model_holds() -> None:
    """The sync layer plans from ``decide_batch``'s unvalidated data: it must have the
    model's keys, and validation must change no value (no coercion, no default filled in),
    so what is written to a CRM equals what ``crmtier tier`` reports."""
    assert set(get_type_hints(AssessmentData)) == set(Assessment.model_fields)
    for data in decide_batch(generated_bank(1_000, seed=5), POLICY, AS_OF):
        validated = Assessment.model_validate(data).model_dump()
        assert json.dumps(data, default=_plain, sort_keys=True) == json.dumps(
            validated, default=_plain, sort_keys=True
        )


@SETTINGS
@given(st.lists(profiles, min_size=1, max_size=12))
def test_assessment_lines_are_byte_for_byte_what_the_model_writes(
    batch: list[CustomerProfile],
) -> None:
    """``crmtier tier`` writes each line from columns of fragments, never building the
    model nor a decision a customer: the bytes must be the model's own JSON of each
    assessment, whatever the records hold (odd unicode ids and texts, missing blocks,
    DQ issues, values that repeat or not across the batch). One record an id, as the
    command reads them."""
    _assert_lines_are_the_models(list({p.id: p for p in batch}.values()))


def test_assessment_lines_on_a_generated_bank() -> None:
    """The same on a generated book, dirty records included, campaigns written."""
    batch = generated_bank(500, seed=37, dirty=True)
    assert b'"kind":"campaign"' in _assert_lines_are_the_models(batch)


def test_assessment_lines_write_a_whole_weight_as_the_model_does() -> None:
    """An AML factor group weighted a whole number per cell (here 0 and 45) is written
    as the model's float (``"weight":0.0``), not as an int."""
    policy = policy_over_default(
        {"aml": {"weights": {"customer": 30, "geography": 25, "business": 45, "industry": 0}}}
    )
    written = _assert_lines_are_the_models(generated_bank(300, seed=43, dirty=True), policy)
    assert b'"weight":0.0,' in written


#: Overrides a generated book's customers get in turn: applied (value, service tier),
#: refused (self-approved, unknown tier and expired) and pending.
OVERRIDES = [
    {
        "value_tier": "private",
        "reason": "vip ✓",
        "expires": "2027-01-01",
        "approved": True,
        "maker_id": "M1",
        "checker_id": "C1",
        "approved_at": "2026-11-01T00:00:00",
    },
    {
        "service_tier": "wealth",
        "expires": "2027-01-01",
        "approved": True,
        "maker_id": "M1",
        "checker_id": "C1",
    },
    {"value_tier": "wealth", "approved": True, "maker_id": "M1", "checker_id": "M1"},
    {
        "value_tier": "bogus",
        "approved": True,
        "maker_id": "M1",
        "checker_id": "C2",
        "expires": "2026-01-01",
    },
    {"value_tier": "affluent", "approved": False},
]


def test_assessment_lines_with_overrides_and_odd_ids() -> None:
    """Overrides applied, refused and pending among customers without one (the refusal
    task follows the campaigns), and ids a JSON string must escape, in one batch."""
    batch = []
    for i, profile in enumerate(generated_bank(600, seed=41, dirty=True)):
        data = profile.model_dump(exclude_none=True)
        if i % 4 == 0:
            data["override"] = OVERRIDES[i % len(OVERRIDES)]
        if i % 11 == 0:
            data["id"] += 'é中"\\\n'
        batch.append(CustomerProfile.model_validate(data))
    _assert_lines_are_the_models(batch)


def _assert_lines_are_the_models(batch: list[CustomerProfile], policy: Policy = POLICY) -> bytes:
    """The batch's lines, once checked equal to the model's JSON of each assessment."""
    written = assessment_lines(Columns.from_profiles(batch, policy), policy, AS_OF)
    expected = [a.model_dump_json().encode() + b"\n" for a in assess_batch(batch, policy, AS_OF)]
    assert written == b"".join(expected)
    return written


def _plain(value: object) -> object:
    """A reason's lazily rendered text as the dict it reads as; anything else as text."""
    return dict(value) if isinstance(value, Mapping) else str(value)


@pytest.mark.parametrize(
    "kinds",
    [
        frozenset(),
        frozenset({"set_field"}),
        frozenset({"set_field", "task"}),
        frozenset({"task", "campaign"}),
        ACTION_KINDS,
    ],
    ids=lambda kinds: "+".join(sorted(kinds)) or "none",
)
def test_asking_for_fewer_action_kinds_drops_only_those_actions(
    kinds: frozenset[ActionKind],
) -> None:
    """A sync that writes back fewer kinds asks ``decide_batch`` for fewer; every other
    output, and the asked-for actions in their order, stay exactly as in the full answer
    (in a batch and for a customer alone alike)."""
    batch = generated_bank(300, seed=17)
    full = decide_batch(batch, POLICY, AS_OF)
    assert {a["kind"] for d in full for a in d["actions"]} == ACTION_KINDS
    expected = [
        {**d, "actions": tuple(a for a in d["actions"] if a["kind"] in kinds)} for d in full
    ]
    assert list(decide_batch(batch, POLICY, AS_OF, kinds=kinds)) == expected
    assert [decide_batch([p], POLICY, AS_OF, kinds=kinds)[0] for p in batch[:40]] == expected[:40]


@pytest.mark.slow
def test_batch_equals_one_by_one_on_a_large_generated_bank() -> None:
    batch = generated_bank(50_000, seed=3)
    assert assess_batch(batch, POLICY, AS_OF) == [assess(p, POLICY, AS_OF) for p in batch]


@SETTINGS
@given(profiles, st.floats(0, 1e8, allow_nan=False))
def test_more_aum_never_lowers_the_value_tier(profile: CustomerProfile, extra: float) -> None:
    if profile.aum_avg_3m is not None and profile.aum_avg_3m >= 0:
        richer = CustomerProfile.model_validate(
            {**profile.model_dump(), "aum_avg_3m": profile.aum_avg_3m + extra}
        )
    elif profile.assets is not None and (profile.assets.deposits or 0) >= 0:
        richer = changed(profile, "assets", deposits=(profile.assets.deposits or 0) + extra)
    else:
        return
    before = assess(profile, POLICY, AS_OF).value_tier
    after = assess(richer, POLICY, AS_OF).value_tier
    if before != "unrated":
        assert VALUE_RANK[after] <= VALUE_RANK[before]


@SETTINGS
@given(profiles, st.sampled_from(["pep", "sanctions_hit", "str"]))
def test_adding_pep_sanctions_or_str_never_lowers_aml(profile: CustomerProfile, fact: str) -> None:
    if fact == "str":
        current = profile.aml.str_count_12m if profile.aml else None
        worse = changed(profile, "aml", str_count_12m=max(current or 0, 0) + 1)
    else:
        worse = changed(profile, "aml", **{fact: True})
    before = assess(profile, POLICY, AS_OF).aml_risk
    after = assess(worse, POLICY, AS_OF).aml_risk
    assert AML_RANK[after] >= AML_RANK[before]
    if fact == "sanctions_hit":
        assert after == "prohibited"
    if fact == "pep":
        assert AML_RANK[after] >= AML_RANK["high"]


@SETTINGS
@given(profiles, st.integers(0, 1_000))
def test_more_days_past_due_never_lowers_credit(profile: CustomerProfile, extra: int) -> None:
    current = profile.credit.days_past_due_max_12m if profile.credit else None
    worse = changed(profile, "credit", days_past_due_max_12m=max(current or 0, 0) + extra)
    before = assess(profile, POLICY, AS_OF).credit_risk
    after = assess(worse, POLICY, AS_OF).credit_risk
    assert RISK_RANK[after] >= RISK_RANK[before]
