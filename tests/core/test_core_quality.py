"""Dirty data is reported and kept out of the decisions: never a crash, never a silent zero."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from core_support import AS_OF, build, dq, tasks

from tiering_core.engine import assess
from tiering_core.models import Assessment, CustomerProfile
from tiering_core.policy import load_policy

Rate = Callable[..., Assessment]


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"assets": {"deposits": -1}}, "DQ_NEGATIVE", "assets.deposits"),
        ({"aum_avg_3m": -5.0}, "DQ_NEGATIVE", "aum_avg_3m"),
        ({"revenue_12m": {"service_fees": -3}}, "DQ_NEGATIVE", "revenue_12m.service_fees"),
        ({"activity": {"transactions_90d": -2}}, "DQ_NEGATIVE", "activity.transactions_90d"),
        ({"aml": {"cash_volume_90d": -10}}, "DQ_NEGATIVE", "aml.cash_volume_90d"),
        ({"credit": {"days_past_due_max_12m": -1}}, "DQ_NEGATIVE", "credit.days_past_due_max_12m"),
        ({"credit": {"debt_to_income": -0.1}}, "DQ_IMPOSSIBLE", "credit.debt_to_income"),
        ({"credit": {"debt_to_income": 11}}, "DQ_IMPOSSIBLE", "credit.debt_to_income"),
        ({"feedback": {"csat": 0.5}}, "DQ_IMPOSSIBLE", "feedback.csat"),
        ({"feedback": {"csat": 5.5}}, "DQ_IMPOSSIBLE", "feedback.csat"),
        ({"feedback": {"nps": 11}}, "DQ_IMPOSSIBLE", "feedback.nps"),
        ({"feedback": {"nps": -1}}, "DQ_IMPOSSIBLE", "feedback.nps"),
        ({"feedback": {"nps": -100}}, "DQ_IMPOSSIBLE", "feedback.nps"),
        ({"kind": "trust"}, "DQ_UNKNOWN_ENUM", "kind"),
        ({"credit": {"loan_class": "grade_b"}}, "DQ_UNKNOWN_ENUM", "credit.loan_class"),
        ({"aml": {"industry_risk": "extreme"}}, "DQ_UNKNOWN_ENUM", "aml.industry_risk"),
        ({"aml": {"high_risk_countries": ["ZZ"]}}, "DQ_UNKNOWN_ENUM", "aml.high_risk_countries"),
        ({"previous": {"value_tier": "diamond"}}, "DQ_UNKNOWN_ENUM", "previous.value_tier"),
        ({"currency": "USD"}, "DQ_NO_FX", "currency"),
        ({"kind": None}, "DQ_MISSING", "kind"),
        ({"aml": None}, "DQ_MISSING", "aml"),
        ({"ops": None}, "DQ_MISSING", "ops"),
        ({"aml": {"sanctions_hit": None}}, "DQ_MISSING", "aml.sanctions_hit"),
        ({"aml": {"pep": None}}, "DQ_MISSING", "aml.pep"),
    ],
)
def test_dirty_value_is_a_dq_issue_with_a_remediation_task(
    rate: Rate, changes: dict[str, Any], code: str, field: str
) -> None:
    a = rate(**changes)
    assert (code, field) in dq(a)
    assert a.status in ("partial", "unrated")
    task = tasks(a)["data_remediation"]
    assert field in task.description
    assert task.queue == "data_quality"


def test_each_problem_is_reported_once(rate: Rate) -> None:
    assert dq(rate(kind="trust")) == {("DQ_UNKNOWN_ENUM", "kind")}


def test_negative_component_is_ignored_not_subtracted(rate: Rate) -> None:
    a = rate(assets={"deposits": -1_000_000, "investments": 60_000, "insurance": 0})
    assert a.value_tier == "affluent"


@pytest.mark.parametrize(
    ("score", "impossible"), [(299, True), (300, False), (850, False), (851, True)]
)
def test_a_score_outside_the_declared_scale_is_impossible(
    rate_fico: Rate, rate: Rate, score: int, impossible: bool
) -> None:
    assert (("DQ_IMPOSSIBLE", "credit.score") in dq(rate_fico(credit={"score": score}))) is (
        impossible
    )
    assert ("DQ_IMPOSSIBLE", "credit.score") not in dq(rate(credit={"score": score}))


def test_impossible_credit_score_does_not_drive_credit_risk(rate_fico: Rate) -> None:
    assert rate_fico(credit={"score": 2_000}).credit_risk == "low"
    alone = {
        "score": 2_000,
        "debt_to_income": None,
        "days_past_due_max_12m": None,
        "loan_class": None,
    }
    assert rate_fico(credit=alone).credit_risk == "unrated"


def test_unknown_country_is_ignored_but_a_valid_one_counts(rate: Rate) -> None:
    a = rate(aml={"high_risk_countries": ["ZZ", "KP"], "industry_risk": "high"})
    assert a.aml_risk == "medium"


def test_foreign_currency_with_a_policy_rate_is_converted(tmp_path: Any) -> None:
    path = tmp_path / "fx.toml"
    path.write_text("[fx]\nUSD = 7.0\n", encoding="utf-8")
    policy = load_policy(path)

    profile = CustomerProfile.model_validate(
        build(currency="USD", assets={"deposits": 1_000_000, "investments": 0, "insurance": 0})
    )
    a = assess(profile, policy, AS_OF)
    assert a.value_tier == "private"
    assert not a.dq_issues


def test_clean_customer_has_no_issues_and_is_rated(rate: Rate) -> None:
    a = rate()
    assert (a.status, a.dq_issues) == ("rated", ())
    assert "data_remediation" not in tasks(a)


def test_optional_blocks_may_be_absent_without_dq(rate: Rate) -> None:
    a = rate(credit=None, feedback=None, activity=None, revenue_12m=None)
    assert a.dq_issues == ()
    assert a.status == "partial"  # credit unrated
