"""Data quality: find what cannot be trusted, report it, and keep it out of the decisions.

CRM data is dirty. A negative balance, a credit score of 2,000, a CSAT of 9 on a 1-5 scale,
an unknown country code or loan class: each becomes a ``DQIssue`` naming the field, and the
value is treated as *missing* by every rule after this one, never as zero and never as a
crash. Missing required inputs are issues too, so a customer is reported ``partial`` or
``unrated`` with a data-remediation task instead of silently landing in the lowest tier.

The checks run on whole input matrices (inputs x customers), so their cost does not grow
with the number of inputs checked; that keeps a batch of one (the webhook path) fast.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tiering_core.columns import (
    ENUMS,
    MISSING,
    NUMBER_INDEX,
    NUMBERS,
    PATHS,
    UNKNOWN,
    BoolArray,
    Columns,
)
from tiering_core.policy import Policy
from tiering_core.rules.base import IssueColumn, known

AMOUNTS = (
    "deposits", "investments", "insurance", "aum_avg_3m", "loan_interest", "product_fees",
    "service_fees", "cash_volume_90d", "cross_border_volume_90d", "credit_line",
)  # fmt: skip
COUNTS = (
    "transactions_90d", "digital_logins_90d", "branch_transactions_90d", "days_past_due",
    "cross_border_count_90d", "str_count_12m", "failed_operations_90d", "support_tickets_90d",
    "open_complaints", "complaints_12m",
)  # fmt: skip
ASSET_PARTS = ("deposits", "investments", "insurance")
#: AML facts the overrides depend on: a missing screening result is not "no hit".
AML_REQUIRED_FACTS = ("sanctions_hit", "pep")

_NONNEGATIVE = frozenset((*AMOUNTS, *COUNTS))
_AMOUNT_ROWS = [NUMBER_INDEX[n] for n in AMOUNTS]


def check(cols: Columns, policy: Policy) -> tuple[Columns, list[IssueColumn], BoolArray]:
    """Return the columns with untrustworthy values set to missing, the issues found, and
    per customer whether any issue was found."""
    low, high, codes, problems = _bounds(policy)
    m = cols.numbers
    too_high = m > high  # NaN never fires
    bad = (m < low) | too_high
    bad_rows = np.flatnonzero(bad.any(axis=1)).tolist()
    numbers = m.copy()
    if bad_rows:
        np.putmask(numbers, bad, np.nan)
    if not (cols.fx_rate == 1.0).all():  # convert only when some customer needs it
        for row in _AMOUNT_ROWS:  # a row view each: in place, no temporary matrix
            numbers[row] *= cols.fx_rate  # no rate (NaN): the amount becomes missing

    issues = [
        IssueColumn(codes[row][side], PATHS[NUMBERS[row][0]], mask, problems[row][side])
        for row in bad_rows
        for side, mask in enumerate((bad[row] & ~too_high[row], too_high[row]))
        if mask.any()
    ]
    unknown = cols.enums == UNKNOWN
    for row in np.flatnonzero(unknown.any(axis=1)).tolist():
        path = PATHS[ENUMS[row][0]]
        issues.append(IssueColumn("DQ_UNKNOWN_ENUM", path, unknown[row], "unknown value; ignored"))
    enums = np.where(unknown, np.int8(MISSING), cols.enums).astype(np.int8)
    candidates = [
        IssueColumn(
            "DQ_UNKNOWN_ENUM",
            "aml.high_risk_countries",
            cols.unknown_countries > 0,
            "not an ISO 3166 alpha-2 code; ignored",
        ),
        IssueColumn(
            "DQ_NO_FX",
            "currency",
            np.isnan(cols.fx_rate),
            "no exchange rate in the policy; amounts unused",
        ),
        *_missing_required(cols, policy),
    ]
    issues.extend(i for i in candidates if np.any(i.mask))

    any_issue = bad.any(axis=0) | unknown.any(axis=0)
    for issue in issues:
        any_issue |= issue.mask
    return replace(cols, numbers=numbers, enums=enums), issues, any_issue


#: Beyond this magnitude no input of one customer is plausible (a balance of a thousand
#: trillion, a count of a quadrillion): it is an entry or unit error, and ignoring it also
#: keeps sums of such values from overflowing to infinity.
PLAUSIBLE_MAX = 1e15
_IMPLAUSIBLE = ("DQ_IMPOSSIBLE", f"beyond ±{PLAUSIBLE_MAX:g}: not plausible; ignored")

#: low, high, and the (below low, above high) issue code and text of each numeric input
_Bounds = tuple[np.ndarray, np.ndarray, list[tuple[str, str]], list[tuple[str, str]]]
_BOUNDS: dict[str, _Bounds] = {}


def _bounds(policy: Policy) -> _Bounds:
    """Per numeric input: the lowest and highest plausible value (as column vectors), and
    the issue code and text for a value below or above them. Built once per policy version
    (a batch of one must not pay for it on every call)."""
    cached = _BOUNDS.get(policy.version)
    if cached is None:
        cached = _BOUNDS[policy.version] = _build_bounds(policy)
    return cached


def _build_bounds(policy: Policy) -> _Bounds:
    c, f = policy.credit, policy.feedback
    ranged = {
        "debt_to_income": (0.0, c.dti_max),
        "csat": (f.csat_min, f.csat_max),
        "nps": (f.nps_min, f.nps_max),
    }
    if c.score_min is not None and c.score_max is not None:  # only on a declared scale
        ranged["credit_score"] = (c.score_min, c.score_max)
    low, high, codes, problems = [], [], [], []
    for name, _, _ in NUMBERS:
        below = above = _IMPLAUSIBLE
        lo, hi = -PLAUSIBLE_MAX, PLAUSIBLE_MAX
        if name in ranged:
            lo, hi = ranged[name]
            below = above = ("DQ_IMPOSSIBLE", f"outside {lo:g}..{hi:g}; ignored")
        elif name in _NONNEGATIVE:
            lo, below = 0.0, ("DQ_NEGATIVE", "negative value; ignored")
        low.append(lo)
        high.append(hi)
        codes.append((below[0], above[0]))
        problems.append((below[1], above[1]))
    return np.array(low)[:, None], np.array(high)[:, None], codes, problems


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
        parts = cols.numbers[[NUMBER_INDEX[p] for p in ASSET_PARTS]]
        gaps = cols.block["assets"] & ~avg_known & np.isnan(parts)
        for k, part in enumerate(ASSET_PARTS):
            out.append(
                IssueColumn("DQ_MISSING", PATHS[part], gaps[k], "missing; AUM is a lower bound")
            )
    for block in ("aml", "ops", "credit", "activity", "revenue_12m", "feedback"):
        if block in required:
            out.append(IssueColumn("DQ_MISSING", block, ~cols.block[block], "required; missing"))
    if "aml" in required:
        for fact in AML_REQUIRED_FACTS:
            gap = cols.block["aml"] & (cols.flag[fact] == MISSING)
            out.append(IssueColumn("DQ_MISSING", PATHS[fact], gap, "screening result missing"))
    return out
