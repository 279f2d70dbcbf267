"""The tiering engine: profiles in, assessments out.

Two steps with a clear cost model. ``evaluate`` decides every tier, score and risk level
for a whole batch with numpy (columns in, columns out: millions of customers per second).
``materialise`` then builds one ``Assessment`` per customer with its reasons, DQ issues
and CRM actions (a per-record Python step, the expensive part). ``assess`` is the same
pipeline on a batch of one, so the webhook path and a million-customer backfill can never
disagree; a test checks that a batch gives exactly what its records give one by one.

``as_of`` is always an input: the core never reads the clock, so an assessment can be
replayed for an examiner with the date it was made.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np

from tiering_core.columns import BoolArray, Columns, FloatArray
from tiering_core.dates import add_months, add_working_days
from tiering_core.models import Assessment, CustomerProfile
from tiering_core.policy import Policy
from tiering_core.reasons import make_reason
from tiering_core.rules import aml, credit, feedback, needs, ops, quality, strategy, value
from tiering_core.rules.base import (
    AML_LEVELS,
    NEEDS_TIERS,
    RISK_LEVELS,
    STATUSES,
    UNRATED_AML,
    UNRATED_RISK,
    UNRATED_TIER,
    VALUE_TIERS,
    IntArray,
    IssueColumn,
    ReasonColumn,
    gt,
)


@dataclass(frozen=True)
class Evaluation:
    """Every decision for a batch, column-wise (codes index the vocabularies in rules.base)."""

    n: int
    value_tier: IntArray
    value_score: FloatArray
    aum: FloatArray
    upgraded_from: IntArray
    below_floor_since: FloatArray
    needs_tier: IntArray
    credit_risk: IntArray
    aml_risk: IntArray
    aml_score: FloatArray
    ops_risk: IntArray
    edd_required: BoolArray
    status: IntArray
    open_complaints: FloatArray
    detractor: BoolArray
    reasons: list[ReasonColumn]
    issues: list[IssueColumn]


def evaluate(cols: Columns, policy: Policy, as_of: date) -> Evaluation:
    """All tiers for a batch, vectorised. No per-record Python work happens here."""
    clean, issues, has_issue = quality.check(cols, policy)
    v = value.rate(clean, policy, as_of)
    needs_tier, needs_reasons = needs.rate(clean, policy, v.tier)
    credit_risk, credit_reasons = credit.rate(clean, policy)
    a = aml.rate(clean, policy)
    ops_risk, ops_reasons = ops.rate(clean, policy)
    fb = feedback.rate(clean, policy)

    some_unrated = (
        (credit_risk == UNRATED_RISK) | (a.level == UNRATED_AML) | (ops_risk == UNRATED_RISK)
    )
    status = np.where(
        v.tier == UNRATED_TIER,
        STATUSES.index("unrated"),
        np.where(has_issue | some_unrated, STATUSES.index("partial"), STATUSES.index("rated")),
    ).astype(np.int8)
    high = AML_LEVELS.index("high")
    complaints = clean.number["open_complaints"]
    return Evaluation(
        n=cols.n,
        value_tier=v.tier,
        value_score=v.score,
        aum=v.aum,
        upgraded_from=v.upgraded_from,
        below_floor_since=v.below_floor_since,
        needs_tier=needs_tier,
        credit_risk=credit_risk,
        aml_risk=a.level,
        aml_score=a.score,
        ops_risk=ops_risk,
        edd_required=(a.level >= high) & (a.level != UNRATED_AML),
        status=status,
        open_complaints=np.where(gt(complaints, 0), complaints, 0.0),
        detractor=fb.detractor,
        reasons=[*v.reasons, *needs_reasons, *credit_reasons, *a.reasons, *ops_reasons,
                 *fb.reasons],
        issues=issues,
    )


def assess_batch(
    profiles: Sequence[CustomerProfile], policy: Policy, as_of: date
) -> list[Assessment]:
    """Assess many customers at once; the result is in input order."""
    if not profiles:
        return []
    evaluation = evaluate(Columns.from_profiles(profiles, policy), policy, as_of)
    return materialise(profiles, evaluation, policy, as_of)


def assess(profile: CustomerProfile, policy: Policy, as_of: date) -> Assessment:
    """Assess one customer (the webhook path): exactly ``assess_batch([profile])[0]``."""
    return assess_batch([profile], policy, as_of)[0]


# --- materialisation: columns -> one Assessment per customer -------------------------------


def materialise(
    profiles: Sequence[CustomerProfile], ev: Evaluation, policy: Policy, as_of: date
) -> list[Assessment]:
    """One Assessment per customer, in input order.

    Python's cyclic garbage collector is paused while the batch is built: every object made
    here is acyclic and kept, so the collector's repeated scans of the growing result would
    cost as much as building it (measured: about half the time). The previous state is
    restored afterwards, whatever happens."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return _materialise(profiles, ev, policy, as_of)
    finally:
        if paused:
            gc.enable()


def _materialise(
    profiles: Sequence[CustomerProfile], ev: Evaluation, policy: Policy, as_of: date
) -> list[Assessment]:
    reasons = _reasons_by_row(profiles, ev.reasons)
    issues = _issues_by_row(profiles, ev.issues)
    months = policy.aml.review_months
    review = _next_review_by_level(
        (months.low, months.medium, months.high), policy.aml.new_customer.working_days, as_of
    )
    sl = policy.service_levels
    value_tier = [VALUE_TIERS[c] for c in ev.value_tier.tolist()]
    needs_tier = [NEEDS_TIERS[c] for c in ev.needs_tier.tolist()]
    credit_risk = [RISK_LEVELS[c] for c in ev.credit_risk.tolist()]
    aml_risk = [AML_LEVELS[c] for c in ev.aml_risk.tolist()]
    ops_risk = [RISK_LEVELS[c] for c in ev.ops_risk.tolist()]
    status = [STATUSES[c] for c in ev.status.tolist()]
    score = [None if np.isnan(s) else s for s in ev.value_score.tolist()]
    upgraded = [None if c < 0 else VALUE_TIERS[c] for c in ev.upgraded_from.tolist()]
    since = [None if np.isnan(d) else date.fromordinal(int(d))
             for d in ev.below_floor_since.tolist()]
    edd = ev.edd_required.tolist()
    complaints = ev.open_complaints.tolist()
    detractor = ev.detractor.tolist()

    validate = Assessment.model_validate
    out: list[Assessment] = []
    for i, profile in enumerate(profiles):
        row_reasons = reasons[i]
        row_issues = issues[i]
        outcome = strategy.Outcome(
            value_tier=value_tier[i],
            value_score=score[i],
            needs_tier=needs_tier[i],
            credit_risk=credit_risk[i],
            aml_risk=aml_risk[i],
            ops_risk=ops_risk[i],
            edd_required=edd[i],
            next_review=review[aml_risk[i]],
            service_level=sl.prohibited if aml_risk[i] == "prohibited"
            else getattr(sl, value_tier[i]),
            status=status[i],
            upgraded_from=upgraded[i],
            open_complaints=int(complaints[i]),
            detractor=detractor[i],
            dq_fields=tuple(sorted({issue["field"] for issue in row_issues})),
        )
        out.append(validate({
            "id": profile.id,
            **outcome.decided(),
            "reasons": row_reasons,
            "actions": strategy.actions(profile, outcome, row_reasons, policy, as_of),
            "dq_issues": row_issues,
            "policy_version": policy.version,
            "below_floor_since": since[i],
        }))
    return out


@lru_cache(maxsize=64)
def _next_review_by_level(
    months: tuple[int, int, int], working_days: int, as_of: date
) -> dict[str, date]:
    """Review dates by AML level (low, medium, high months; prohibited as high; unrated
    within the new-customer working days). Cached: a day's webhooks share one as_of."""
    low, medium, high = months
    return {
        "low": add_months(as_of, low),
        "medium": add_months(as_of, medium),
        "high": add_months(as_of, high),
        "prohibited": add_months(as_of, high),
        "unrated": add_working_days(as_of, working_days),
    }


def _py(value: Any) -> Any:
    """A numpy/float value as JSON-friendly Python: whole numbers as int, NaN as None."""
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        return int(value) if value.is_integer() else value
    return value


def _profile_value(profile: CustomerProfile, path: str) -> Any:
    node: Any = profile
    for part in path.split("."):
        node = getattr(node, part, None)
        if node is None:
            return None
    return list(node) if isinstance(node, tuple) else node


def _hits(masks: list[BoolArray]) -> list[tuple[int, int]]:
    """(column, row) of every true cell, column by column: one numpy call for all masks."""
    if not masks:
        return []
    columns, rows = np.nonzero(np.vstack(masks))
    return list(zip(columns.tolist(), rows.tolist(), strict=True))


def _scalar(values: Any, i: int) -> Any:
    return _py(values[i].item()) if isinstance(values, np.ndarray) else _py(values)


def _reasons_by_row(
    profiles: Sequence[CustomerProfile], columns: list[ReasonColumn]
) -> list[list[dict[str, Any]]]:
    rows: list[list[dict[str, Any]]] = [[] for _ in profiles]
    for c, i in _hits([rc.mask for rc in columns]):
        rc = columns[c]
        if rc.profile_path is not None:
            observed = _profile_value(profiles[i], rc.profile_path)
        elif rc.value is None:
            observed = None
        elif rc.labels is not None:
            observed = rc.labels[int(rc.value[i])]
        else:
            observed = _scalar(rc.value, i)
        weight = None if rc.weight is None else _scalar(rc.weight, i)
        rows[i].append(make_reason(rc.code, observed, _scalar(rc.threshold, i), weight))
    return rows


def _issues_by_row(
    profiles: Sequence[CustomerProfile], columns: list[IssueColumn]
) -> list[list[dict[str, Any]]]:
    rows: list[list[dict[str, Any]]] = [[] for _ in profiles]
    for c, i in _hits([ic.mask for ic in columns]):
        ic = columns[c]
        value = _profile_value(profiles[i], ic.path)
        rows[i].append({"code": ic.code, "field": ic.path, "problem": ic.problem,
                        "value": value if _is_scalar(value) else None})
    return rows


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list)
