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
        set(), {"survey_private"}, id="private-upgrade",
    ),
    pytest.param(
        {**PRIVATE, "owner_id": None},
        {"investment_advisory"}, {"vip_events", "preapproved_credit"},
        {"dedicated_advisor"}, {"survey_private"}, id="private-without-advisor",
    ),
    pytest.param(
        {**PRIVATE, "owner_id": None, "aml": {"pep": True},
         "feedback": {"open_complaints": 1, "csat": 1.0}},
        set(), set(),
        {"edd_review", "complaint", "service_recovery"}, {"survey_private"},
        id="pep-with-complaint-and-detractor",
    ),
    pytest.param(
        {"assets": {"deposits": 60_000}, "credit": {"loan_class": "loss"}},
        set(), {"affluent_offers", "digital_self_service"},
        {"credit_limit_review"}, {"survey_affluent"}, id="affluent-credit-high",
    ),
]


@pytest.mark.parametrize(("changes", "sales_tasks", "marketing", "service_tasks", "surveys"),
                         CONSENT_CASES)
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
    marketing_rules = {
        name for name, rule in policy.strategy.tasks if rule.marketing
    }
    assert marketing_rules == {"upgrade_call", "corporate_banking", "investment_advisory"}
    for changes in ({**PRIVATE, "previous": {"value_tier": "wealth"}}, {"kind": "corporate"}):
        for a in both_paths(policy, **changes, **OPT_OUT):
            assert not marketing_rules & set(tasks(a))
