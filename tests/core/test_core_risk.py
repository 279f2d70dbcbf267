"""Needs, credit, AML and ops rules: one row per rule and threshold edge (>= vs >)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from core_support import AS_OF, codes

from tiering_core.models import Assessment

Rate = Callable[..., Assessment]


@pytest.mark.parametrize(
    ("changes", "needs", "code"),
    [
        ({"kind": "corporate"}, "professional", "NEED_CORPORATE"),
        ({"qualified_investor": True}, "professional", "NEED_QUALIFIED_INVESTOR"),
        ({"assets": {"deposits": 6_000_000}}, "professional", "NEED_TIER"),
        ({"assets": {"deposits": 600_000}}, "advanced", "NEED_TIER"),
        (
            {"activity": {"products_held": ["deposit", "fund"]}},
            "advanced",
            "NEED_INVESTMENT_PRODUCTS",
        ),
        ({"activity": {"products_held": ["insurance"]}}, "advanced", "NEED_INVESTMENT_PRODUCTS"),
        ({"activity": {"products_held": ["deposit", "credit_card"]}}, "basic", "NEED_BASIC"),
        # no product list: balances are the evidence
        (
            {"activity": {"products_held": None}, "assets": {"investments": 1_000}},
            "advanced",
            "NEED_INVESTMENT_PRODUCTS",
        ),
    ],
)
def test_needs(rate: Rate, changes: dict[str, Any], needs: str, code: str) -> None:
    a = rate(**changes)
    assert a.needs_tier == needs
    assert code in codes(a)


@pytest.mark.parametrize(
    ("credit", "level", "code"),
    [
        ({"loan_class": "normal"}, "low", "CRD_GOOD"),
        ({"loan_class": "special_mention"}, "medium", "CRD_LOAN_CLASS_MEDIUM"),
        ({"loan_class": "substandard"}, "high", "CRD_LOAN_CLASS_HIGH"),
        ({"loan_class": "doubtful"}, "high", "CRD_LOAN_CLASS_HIGH"),
        ({"loan_class": "loss"}, "high", "CRD_LOAN_CLASS_HIGH"),
        ({"days_past_due_max_12m": 1}, "medium", "CRD_DPD"),
        ({"days_past_due_max_12m": 90}, "medium", "CRD_DPD"),
        ({"days_past_due_max_12m": 91}, "high", "CRD_DPD_SEVERE"),
        # no declared score scale, no DTI cut-offs: neither rates anyone by default
        ({"score": 400}, "low", "CRD_GOOD"),
        ({"debt_to_income": 0.9}, "low", "CRD_GOOD"),
        (
            {
                "score": 400,
                "debt_to_income": None,
                "days_past_due_max_12m": None,
                "loan_class": None,
            },
            "unrated",
            "CRD_NO_DATA",
        ),
        # worst of: one bad factor decides
        (
            {"score": 820, "debt_to_income": 0.1, "loan_class": "loss"},
            "high",
            "CRD_LOAN_CLASS_HIGH",
        ),
        # partial data is still rated on what is there
        (
            {
                "score": None,
                "debt_to_income": None,
                "days_past_due_max_12m": None,
                "loan_class": "normal",
            },
            "low",
            "CRD_GOOD",
        ),
    ],
)
def test_credit_worst_of(rate: Rate, credit: dict[str, Any], level: str, code: str) -> None:
    a = rate(credit=credit)
    assert a.credit_risk == level
    assert code in codes(a)


@pytest.mark.parametrize(
    ("credit", "level", "code"),
    [
        ({"score": 670}, "low", "CRD_GOOD"),
        ({"score": 669}, "medium", "CRD_SCORE_FAIR"),
        ({"score": 580}, "medium", "CRD_SCORE_FAIR"),
        ({"score": 579}, "high", "CRD_SCORE_LOW"),
        ({"debt_to_income": 0.40}, "low", "CRD_GOOD"),
        ({"debt_to_income": 0.41}, "medium", "CRD_DTI_ELEVATED"),
        ({"debt_to_income": 0.55}, "medium", "CRD_DTI_ELEVATED"),
        ({"debt_to_income": 0.56}, "high", "CRD_DTI_HIGH"),
        (
            {
                "score": 579,
                "debt_to_income": None,
                "days_past_due_max_12m": None,
                "loan_class": None,
            },
            "high",
            "CRD_SCORE_LOW",
        ),
        ({"score": 820, "loan_class": "special_mention"}, "medium", "CRD_LOAN_CLASS_MEDIUM"),
    ],
)
def test_credit_score_and_dti_rate_only_on_a_declared_scale(
    rate_fico: Rate, credit: dict[str, Any], level: str, code: str
) -> None:
    a = rate_fico(credit=credit)
    assert a.credit_risk == level
    assert code in codes(a)


@pytest.mark.parametrize(
    "credit",
    [
        None,
        {"score": None, "debt_to_income": None, "days_past_due_max_12m": None, "loan_class": None},
    ],
)
def test_no_credit_data_is_unrated_not_low(rate: Rate, credit: Any) -> None:
    a = rate(credit=credit)
    assert (a.credit_risk, a.status) == ("unrated", "partial")
    assert "CRD_NO_DATA" in codes(a)


@pytest.mark.parametrize(
    ("aml", "level", "code"),
    [
        ({}, "low", "AML_SCORE"),
        ({"sanctions_hit": True}, "prohibited", "AML_SANCTIONS"),
        ({"pep": True}, "high", "AML_PEP"),
        ({"refused_cdd": True}, "high", "AML_REFUSED_CDD"),
        ({"str_count_12m": 2}, "high", "AML_STR_REPEATED"),
        ({"str_count_12m": 1}, "low", "AML_STR"),  # 1 STR: 15 points, below medium
        # geography 25 + industry 20 = 45: medium (>= 40)
        (
            {"high_risk_countries": ["KP"], "industry_risk": "high"},
            "medium",
            "AML_CALL_FOR_ACTION_COUNTRY",
        ),
        # 20 (geography, non call-for-action) + 20 = 40: exactly the medium cut-off
        (
            {"high_risk_countries": ["SY"], "industry_risk": "high"},
            "medium",
            "AML_HIGH_RISK_COUNTRY",
        ),
        # 20 + 10 = 30: low
        ({"high_risk_countries": ["SY"], "industry_risk": "medium"}, "low", "AML_INDUSTRY_MEDIUM"),
        # business capped at 25 + geography 25 + industry 20 = 70: exactly the high cut-off
        (
            {"high_risk_countries": ["IR"], "industry_risk": "high", "cash_volume_90d": 1_000_000},
            "high",
            "AML_CASH_VERY_LARGE",
        ),
        (
            {"high_risk_countries": ["IR"], "industry_risk": "high", "cash_volume_90d": 999_999},
            "medium",
            "AML_CASH_LARGE",
        ),
        ({"cross_border_count_90d": 10}, "low", "AML_CROSS_BORDER_FREQUENT"),
        ({"cross_border_volume_90d": 200_000}, "low", "AML_CROSS_BORDER_LARGE"),
        ({"cash_volume_90d": 50_000}, "low", "AML_CASH_LARGE"),
        ({"adverse_media": True}, "low", "AML_ADVERSE_MEDIA"),
    ],
)
def test_aml_factors_and_overrides(rate: Rate, aml: dict[str, Any], level: str, code: str) -> None:
    a = rate(aml=aml)
    assert a.aml_risk == level
    assert code in codes(a)
    assert a.edd_required is (level in ("high", "prohibited"))


def test_cash_just_under_the_large_line_does_not_fire(rate: Rate) -> None:
    assert "AML_CASH_LARGE" not in codes(rate(aml={"cash_volume_90d": 49_999.99}))


def test_corporate_adds_customer_points(rate: Rate) -> None:
    assert "AML_CORPORATE" in codes(rate(kind="corporate"))


def test_no_aml_data_is_unrated_with_review_within_10_working_days(rate: Rate) -> None:
    a = rate(aml=None)
    assert (a.aml_risk, a.edd_required) == ("unrated", False)
    assert a.next_review == date(2026, 12, 11)  # Sat 28 Nov + 10 working days
    assert "AML_NO_DATA" in codes(a)


@pytest.mark.parametrize(
    ("aml", "review"),
    [
        ({}, date(2028, 11, 28)),  # low: 24 months
        ({"high_risk_countries": ["KP"], "industry_risk": "high"}, date(2027, 11, 28)),
        ({"pep": True}, date(2027, 5, 28)),  # high: 6 months
        ({"sanctions_hit": True}, date(2027, 5, 28)),
    ],
)
def test_review_cycle_follows_aml_level(rate: Rate, aml: dict[str, Any], review: date) -> None:
    assert rate(aml=aml).next_review == review
    assert AS_OF.year == 2026


@pytest.mark.parametrize(
    ("ops", "level", "code"),
    [
        ({}, "low", None),
        ({"fraud_victim_flag": True}, "high", "OPS_FRAUD_VICTIM"),
        ({"kyc_expired": True}, "medium", "OPS_KYC_EXPIRED"),
        ({"failed_operations_90d": 1}, "low", None),
        ({"failed_operations_90d": 2}, "medium", "OPS_FAILED"),
        ({"failed_operations_90d": 5}, "high", "OPS_FAILED_HIGH"),
        ({"support_tickets_90d": 3}, "low", None),
        ({"support_tickets_90d": 4}, "medium", "OPS_TICKETS"),
        ({"support_tickets_90d": 10}, "high", "OPS_TICKETS_HIGH"),
    ],
)
def test_ops(rate: Rate, ops: dict[str, Any], level: str, code: str | None) -> None:
    a = rate(ops=ops)
    assert a.ops_risk == level
    assert code is None or code in codes(a)


def test_no_ops_data_is_unrated(rate: Rate) -> None:
    a = rate(ops=None)
    assert a.ops_risk == "unrated"
    assert "OPS_NO_DATA" in codes(a)
