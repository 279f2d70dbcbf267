"""Segments: marketing consent (PIPL Art. 24) and the corporate ladder.

Each case is checked on both decision paths (``decide`` for one customer and
``decide_batch``), which must agree."""

from __future__ import annotations

from typing import Any

import pytest
from core_support import AS_OF, build, codes, members, tasks

from tiering_core.engine import assess, assess_batch
from tiering_core.models import Assessment, CustomerProfile
from tiering_core.policy import Policy

PRIVATE = {"assets": {"deposits": 7_000_000}}
OPT_OUT = {"consent": {"marketing_opt_out": True}}


def both_paths(policy: Policy, **changes: Any) -> list[Assessment]:
    """The customer assessed alone and inside a batch (beside a baseline customer)."""
    profile = CustomerProfile.model_validate(build(**changes))
    other = CustomerProfile.model_validate(build(id="T9999"))
    return [assess(profile, policy, AS_OF), assess_batch([other, profile], policy, AS_OF)[1]]


# (changes, marketing tasks and campaigns that an opted-in customer gets, work that stays)
CONSENT_CASES = [
    pytest.param(
        {**PRIVATE, "previous": {"value_tier": "wealth"}},
        {"upgrade_call", "investment_advisory"},
        {"vip_events", "preapproved_credit"},
        set(),
        {"survey_private"},
        id="private-upgrade",
    ),
    pytest.param(
        {
            "kind": "corporate",
            "assets": {"deposits": 20_000_000},
            "feedback": {"open_complaints": 1},
        },
        {"corporate_banking"},
        {"cash_management_trade_finance"},
        {"complaint"},
        set(),
        id="corporate-with-complaint",
    ),
    pytest.param(
        {**PRIVATE, "owner_id": None},
        {"investment_advisory"},
        {"vip_events", "preapproved_credit"},
        {"dedicated_advisor"},
        {"survey_private"},
        id="private-without-advisor",
    ),
    pytest.param(
        {
            **PRIVATE,
            "owner_id": None,
            "aml": {"pep": True},
            "feedback": {"open_complaints": 1, "csat": 1.0},
        },
        set(),
        set(),
        {"edd_review", "complaint", "service_recovery"},
        {"survey_private"},
        id="pep-with-complaint-and-detractor",
    ),
    pytest.param(
        {"assets": {"deposits": 60_000}, "credit": {"loan_class": "loss"}},
        set(),
        {"affluent_offers", "digital_self_service"},
        {"credit_limit_review"},
        {"survey_affluent"},
        id="affluent-credit-high",
    ),
]


@pytest.mark.parametrize(
    ("changes", "sales_tasks", "marketing", "service_tasks", "surveys"), CONSENT_CASES
)
def test_opted_out_customer_gets_no_marketing_but_keeps_service_work(
    policy: Policy,
    changes: dict[str, Any],
    sales_tasks: set[str],
    marketing: set[str],
    service_tasks: set[str],
    surveys: set[str],
) -> None:
    opted_in = both_paths(policy, **changes, consent={"marketing_opt_out": False})
    for a in opted_in:
        assert sales_tasks | service_tasks <= set(tasks(a))
        assert members(a) >= marketing | surveys
        assert "CONSENT_NO_MARKETING" not in codes(a)
    for a in both_paths(policy, **changes, **OPT_OUT):
        assert not sales_tasks & set(tasks(a))
        assert service_tasks <= set(tasks(a))
        assert members(a) == surveys
        assert "CONSENT_NO_MARKETING" in codes(a)
        reason = next(r for r in a.reasons if r.code == "CONSENT_NO_MARKETING")
        assert reason.dimension == "consent" and reason.factor == "consent.marketing_opt_out"


@pytest.mark.parametrize("consent", [None, {}, {"marketing_opt_out": None}])
def test_unknown_consent_is_not_a_refusal(policy: Policy, consent: Any) -> None:
    for a in both_paths(policy, **PRIVATE, consent=consent):
        assert "vip_events" in members(a)
        assert "CONSENT_NO_MARKETING" not in codes(a)


def test_every_marketing_task_rule_is_withheld(policy: Policy) -> None:
    """Whatever rules the policy marks as marketing, none reaches an opted-out customer."""
    marketing_rules = {name for name, rule in policy.strategy.tasks if rule.marketing}
    assert marketing_rules == {"upgrade_call", "corporate_banking", "investment_advisory"}
    corporate = {"kind": "corporate", "assets": {"deposits": 20_000_000}}
    for changes in ({**PRIVATE, "previous": {"value_tier": "wealth"}}, corporate):
        for a in both_paths(policy, **changes, **OPT_OUT):
            assert not marketing_rules & set(tasks(a))


# --- task descriptions ---------------------------------------------------------------------

# (changes that make the rule fire, a reason code its "why" must quote)
TASK_CASES = {
    "edd_review": ({"aml": {"pep": True}}, "AML_PEP"),
    "sanctions_review": ({"aml": {"sanctions_hit": True}}, "AML_SANCTIONS"),
    "credit_limit_review": ({"credit": {"loan_class": "loss"}}, "CRD_LOAN_CLASS_HIGH"),
    "complaint": ({"feedback": {"open_complaints": 2}}, "FB_OPEN_COMPLAINT"),
    "upgrade_call": ({**PRIVATE, "previous": {"value_tier": "wealth"}}, "VAL_UPGRADE"),
    "dedicated_advisor": ({**PRIVATE, "owner_id": None}, "VAL_AUM_PRIVATE"),
    "corporate_banking": (
        {"kind": "corporate", "assets": {"deposits": 20_000_000}},
        "VAL_CORP_BALANCE",
    ),
    "investment_advisory": (PRIVATE, "NEED_TIER"),
    "service_recovery": ({"feedback": {"csat": 1.0}}, "FB_LOW_CSAT"),
    "data_remediation": ({"ops": None}, None),
}


def _policy_in(policy: Policy, language: str) -> Policy:
    strategy = policy.strategy.model_copy(update={"reasons_language": language})
    return policy.model_copy(update={"strategy": strategy})


@pytest.mark.parametrize("rule", sorted(TASK_CASES))
def test_every_task_says_what_why_and_the_deadline_source(policy: Policy, rule: str) -> None:
    changes, code = TASK_CASES[rule]
    for a in both_paths(policy, **changes):
        task = tasks(a)[rule]
        text = task.description
        lines = text.split("\n")
        assert lines[0].startswith("To do: ") and len(lines[0]) > 20
        source = getattr(policy.strategy.tasks, rule).deadline_source
        assert source
        days = (task.due - AS_OF).days
        assert f"Due: {task.due.isoformat()} ({days} days) — {source}" in lines
        if code is not None:
            reason = next(r for r in a.reasons if r.code == code)
            assert f"Why: {reason.text.en}" in text or f"; {reason.text.en}" in text
        else:
            assert any(line.startswith("Fields: ops") for line in lines)


def test_task_descriptions_follow_the_reasons_language(policy: Policy) -> None:
    changes, _ = TASK_CASES["complaint"]
    zh = both_paths(_policy_in(policy, "zh"), **changes)[0]
    text = tasks(zh)["complaint"].description
    assert text.startswith("待办: ")
    assert "原因: 未结投诉 2 件" in text and "To do" not in text
    both = tasks(both_paths(_policy_in(policy, "both"), **changes)[0])["complaint"].description
    english, chinese = both.split("\n\n")
    assert english.startswith("To do: ") and chinese.startswith("待办: ")


def test_only_the_compliance_tasks_quote_aml_facts(policy: Policy) -> None:
    a = both_paths(
        policy,
        **PRIVATE,
        owner_id=None,
        aml={"pep": True},
        feedback={"open_complaints": 1, "csat": 1.0},
    )[0]
    aml_texts = [r.text.en for r in a.reasons if r.dimension == "aml"]
    assert aml_texts
    for rule, task in tasks(a).items():
        quoted = any(t in task.description for t in aml_texts)
        assert quoted is (rule in ("edd_review", "sanctions_review")), rule


# --- the corporate ladder ------------------------------------------------------------------

CORP = {
    "kind": "corporate",
    "assets": {"deposits": 0, "investments": 0, "insurance": 0},
    "revenue_12m": {"loan_interest": 0, "product_fees": 0, "service_fees": 0},
}


def corp(
    deposits: float = 0, credit_line: float | None = None, revenue: float = 0, **more: Any
) -> dict[str, Any]:
    return {
        **CORP,
        "assets": {**CORP["assets"], "deposits": deposits},
        "credit": {"credit_line": credit_line, "loan_class": "normal"},
        "revenue_12m": {**CORP["revenue_12m"], "loan_interest": revenue},
        **more,
    }


@pytest.mark.parametrize(
    ("changes", "tier", "reason", "service"),
    [
        (
            corp(deposits=200_000_000),
            "corporate_strategic",
            "VAL_CORP_BALANCE",
            "corporate_relationship_team",
        ),
        (
            corp(credit_line=500_000_000),
            "corporate_strategic",
            "VAL_CORP_CREDIT_LINE",
            "corporate_relationship_team",
        ),
        (corp(revenue=600_000), "corporate_key", "VAL_CORP_REVENUE", "corporate_rm"),
        (corp(deposits=10_000_000), "corporate_key", "VAL_CORP_BALANCE", "corporate_rm"),
        (
            corp(deposits=9_999_999),
            "corporate_standard",
            "VAL_CORP_BALANCE",
            "corporate_rm_portfolio",
        ),
        # the retail private line (6,000,000) means nothing for a company
        (
            corp(deposits=7_000_000),
            "corporate_standard",
            "VAL_CORP_BALANCE",
            "corporate_rm_portfolio",
        ),
        (corp(deposits=20_000), "corporate_small", "VAL_CORP_SMALL", "business_banking_desk"),
        (
            {"kind": "corporate", "assets": None, "revenue_12m": None, "credit": None},
            "unrated",
            "VAL_NO_AUM",
            "standard",
        ),
    ],
)
def test_corporate_ladder(
    policy: Policy, changes: dict[str, Any], tier: str, reason: str, service: str
) -> None:
    for a in both_paths(policy, **changes):
        assert (a.value_tier, a.service_level) == (tier, service)
        assert reason in codes(a)
        assert not {c for c in codes(a) if c.startswith("VAL_AUM_")}


@pytest.mark.parametrize(
    "changes",
    [
        corp(deposits=200_000_000),
        corp(deposits=7_000_000),
        corp(deposits=60_000),
        corp(
            deposits=20_000,
            activity={"transactions_90d": 0, "digital_logins_90d": 0, "products_held": ["deposit"]},
        ),
        corp(deposits=7_000_000, consent={"marketing_opt_out": True}),
    ],
)
def test_corporates_never_join_retail_campaigns(policy: Policy, changes: dict[str, Any]) -> None:
    corporate_campaigns = {
        k for k, c in policy.strategy.campaigns.items() if "corporate" in c.kinds
    }
    assert corporate_campaigns == {"cash_management_trade_finance"}
    opted_out = bool(changes.get("consent"))
    for a in both_paths(policy, **changes):
        assert members(a) == (set() if opted_out else corporate_campaigns)


def test_corporate_downgrade_waits_for_the_grace_period(policy: Policy) -> None:
    held = corp(deposits=9_500_000, previous={"value_tier": "corporate_key"})
    for a in both_paths(policy, **held):
        assert a.value_tier == "corporate_key" and "VAL_HELD_GRACE" in codes(a)
    late = corp(
        deposits=9_500_000,
        previous={"value_tier": "corporate_key", "below_floor_since": "2026-01-01"},
    )
    for a in both_paths(policy, **late):
        assert a.value_tier == "corporate_standard" and "VAL_DOWNGRADE" in codes(a)


def test_a_retail_tier_from_before_does_not_hold_or_upgrade_a_corporate(policy: Policy) -> None:
    """A corporate once rated 'private' on the retail ladder moves to its own ladder at once:
    no buffer, no grace, no "upgraded" call."""
    for a in both_paths(policy, **corp(deposits=7_000_000, previous={"value_tier": "private"})):
        assert a.value_tier == "corporate_standard"
        assert not {"VAL_HELD_BUFFER", "VAL_HELD_GRACE", "VAL_UPGRADE"} & codes(a)
        assert "upgrade_call" not in tasks(a)


def test_demo_book_corporates_get_no_retail_service(policy: Policy) -> None:
    """Issue 16: on the demo's 2,000 customers, 11 corporates were rated private and invited
    to VIP events. Now no corporate holds a retail tier, service level or campaign."""
    from connectors.sandbox.generator import generate

    profiles = []
    for c in generate(2000):
        if c.profile["kind"] == "corporate" and not c.dirty:
            profiles.append(CustomerProfile.model_validate({"id": c.id, **c.profile}))
    assert len(profiles) > 100
    retail_levels = {
        policy.service_levels.private,
        policy.service_levels.wealth,
        policy.service_levels.affluent,
        policy.service_levels.mass,
    }
    tiers = set()
    for a in assess_batch(profiles, policy, AS_OF):
        tiers.add(a.value_tier)
        assert a.value_tier.startswith("corporate_") or a.value_tier == "unrated"
        assert a.service_level not in retail_levels
        assert members(a) <= {"cash_management_trade_finance"}
    assert {
        "corporate_strategic",
        "corporate_key",
        "corporate_standard",
        "corporate_small",
    } <= tiers


def test_every_task_rule_has_its_action_text_and_deadline_source(policy: Policy) -> None:
    from tiering_core.rules.task_text import WHAT

    rules = dict(policy.strategy.tasks)
    assert set(WHAT) == set(rules) == set(TASK_CASES)
    assert all(rule.deadline_source for rule in rules.values())
