"""A hand-built ``ReportData`` whose every number is known, for renderer tests."""

from __future__ import annotations

from crmtier.report.households import household_report
from crmtier.report.model import (
    ApiUse,
    Distribution,
    FeedbackRow,
    Matrix,
    ReportData,
    RunRow,
)

VALUE = {"private": 12, "wealth": 80, "affluent": 400, "mass": 1500, "unrated": 8}
RISK_COLS = ["high", "medium", "low", "unrated"]
#: stored tiers with household keys: 3 value tiers × 3 household columns in the cross-table
STORED_HOUSEHOLDS = [
    *[{"value_tier": "private", "household_tier": "private", "household_lift": "yes"}] * 3,
    *[{"value_tier": "private", "household_tier": "private", "household_lift": "no"}] * 2,
    *[{"value_tier": "wealth", "household_tier": "wealth", "household_lift": "no"}] * 4,
    *[{"value_tier": "mass", "household_tier": "none", "household_lift": "no"}] * 9,
]
HOUSEHOLD_CELLS = 3 * 3


def sample_report(*, households: bool = True) -> ReportData:
    value_rows = list(VALUE)
    return ReportData(
        title="crmtier tiering report — salesforce <test>",
        generated_at="2026-11-28 12:00:00",
        crm="salesforce",
        stream="salesforce:Account",
        policy_version="default@1a2b3c4d5e6f",
        customers=sum(VALUE.values()),
        distributions=[
            Distribution("value_tier", VALUE),
            Distribution("needs_tier", {"professional": 60, "advanced": 500, "basic": 1440}),
            Distribution("aml_risk", {"prohibited": 1, "high": 20, "medium": 300, "low": 1679}),
        ],
        migration=Matrix(
            title="Value tier: from → to",
            row_label="from",
            col_label="to",
            rows=["new", "wealth", "mass"],
            cols=["private", "wealth", "affluent", "mass"],
            cells={("new", "mass"): 3, ("wealth", "private"): 2, ("mass", "affluent"): 5},
        ),
        value_risk=[
            Matrix(
                title="Value tier × credit risk",
                row_label="value",
                col_label="credit risk",
                rows=value_rows,
                cols=RISK_COLS,
                cells={("mass", "low"): 1000, ("private", "high"): 1},
            )
        ],
        dq_issues={"DQ_MISSING": 30, "DQ_NEGATIVE": 4, "DQ_UNKNOWN_ENUM": 6},
        api=ApiUse(calls={"query": 1, "composite": 10}, minimum=11),
        feedback=[
            FeedbackRow("private", 12, 10, 4.5, 9, 40.0, 1, 0, 1),
            FeedbackRow("mass", 1500, 1200, 3.1, 1100, -10.0, 400, 60, 200),
        ],
        runs=[
            RunRow(
                "a" * 32,
                "sync",
                "succeeded",
                "2026-11-28 11:59:00",
                "2026-11-28 11:59:05",
                2000,
                2000,
                0,
                0,
            ),
        ],
        side_effects={"tasks": 120, "campaign vip_events": 12},
        notes=["Demo data: synthetic customers."],
        households=household_report(STORED_HOUSEHOLDS) if households else None,
    )
