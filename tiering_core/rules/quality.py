"""Data quality: find what cannot be trusted, report it, and keep it out of the decisions.

CRM data is dirty. A negative balance, a credit score of 2,000, a CSAT of 9 on a 1-5 scale,
an unknown country code or loan class: each becomes a ``DQIssue`` naming the field, and the
value is treated as *missing* by every rule after this one, never as zero and never as a
crash. Missing required inputs are issues too, so a customer is reported ``partial`` or
``unrated`` with a data-remediation task instead of silently landing in the lowest tier.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tiering_core.columns import MISSING, PATHS, UNKNOWN, BoolArray, Columns
from tiering_core.policy import Policy
from tiering_core.rules.base import IssueColumn, known

AMOUNTS = (
    "deposits", "investments", "insurance", "aum_avg_3m", "loan_interest", "product_fees",
    "service_fees", "cash_volume_90d", "cross_border_volume_90d",
)  # fmt: skip
COUNTS = (
    "transactions_90d", "digital_logins_90d", "days_past_due", "cross_border_count_90d",
    "str_count_12m", "failed_operations_90d", "support_tickets_90d", "open_complaints",
    "complaints_12m",
)  # fmt: skip
ASSET_PARTS = ("deposits", "investments", "insurance")
#: AML facts the overrides depend on: a missing screening result is not "no hit".
AML_REQUIRED_FACTS = ("sanctions_hit", "pep")


def check(cols: Columns, policy: Policy) -> tuple[Columns, list[IssueColumn]]:
    """Return the columns with untrustworthy values set to missing, and the issues found."""
    issues: list[IssueColumn] = []
    number = dict(cols.number)
    enum = dict(cols.enum)

    def reject(name: str, bad: BoolArray, code: str, problem: str) -> None:
        issues.append(IssueColumn(code, PATHS[name], bad, problem))
        number[name] = np.where(bad, np.nan, number[name])

    for name in (*AMOUNTS, *COUNTS):
        x = number[name]
        reject(name, np.less(x, 0), "DQ_NEGATIVE", "negative value; ignored")
    c, f = policy.credit, policy.feedback
    ranges = (
        ("credit_score", c.score_min, c.score_max),
        ("debt_to_income", 0.0, c.dti_max),
        ("csat", f.csat_min, f.csat_max),
        ("nps", -100.0, 100.0),
    )
    for name, low, high in ranges:
        x = number[name]
        bad = np.less(x, low) | np.greater(x, high)
        reject(name, bad, "DQ_IMPOSSIBLE", f"outside {low:g}..{high:g}; ignored")

    for name in enum:
        bad = enum[name] == UNKNOWN
        issues.append(IssueColumn("DQ_UNKNOWN_ENUM", PATHS[name], bad, "unknown value; ignored"))
        enum[name] = np.where(bad, np.int8(MISSING), enum[name])
    issues.append(
        IssueColumn(
            "DQ_UNKNOWN_ENUM",
            "aml.high_risk_countries",
            np.greater(cols.unknown_countries, 0),
            "not an ISO 3166 alpha-2 code; ignored",
        )
    )

    no_fx = np.isnan(cols.fx_rate)
    issues.append(
        IssueColumn("DQ_NO_FX", "currency", no_fx, "no exchange rate in the policy; amounts unused")
    )
    for name in AMOUNTS:
        number[name] = np.where(no_fx, np.nan, number[name] * cols.fx_rate)

    issues.extend(_missing_required(cols, policy))
    clean = replace(cols, number=number, enum=enum)
    return clean, [i for i in issues if i.mask.any()]


def _missing_required(cols: Columns, policy: Policy) -> list[IssueColumn]:
    """Absent inputs (an unknown value was reported above and is not also "missing")."""
    required = set(policy.quality.required)
    out: list[IssueColumn] = []
    raw = cols.number
    if "kind" in required:
        kind_missing = cols.enum["kind"] == MISSING
        out.append(IssueColumn("DQ_MISSING", "kind", kind_missing, "required; missing"))
    if "assets" in required:
        avg_known = known(raw["aum_avg_3m"]) & policy.value.prefer_avg_3m
        no_assets = ~cols.block["assets"] & ~known(raw["aum_avg_3m"])
        out.append(IssueColumn("DQ_MISSING", "assets", no_assets, "required; missing"))
        for part in ASSET_PARTS:
            gap = cols.block["assets"] & ~avg_known & np.isnan(raw[part])
            out.append(
                IssueColumn("DQ_MISSING", PATHS[part], gap, "missing; AUM is a lower bound")
            )
    for block in ("aml", "ops", "credit", "activity", "revenue_12m", "feedback"):
        if block in required:
            out.append(
                IssueColumn("DQ_MISSING", block, ~cols.block[block], "required; missing")
            )
    if "aml" in required:
        for fact in AML_REQUIRED_FACTS:
            gap = cols.block["aml"] & (cols.flag[fact] == MISSING)
            out.append(
                IssueColumn("DQ_MISSING", PATHS[fact], gap, "screening result missing")
            )
    return out
