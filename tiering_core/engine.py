"""The tiering engine: profiles in, assessments out.

The rules exist in two forms that must agree exactly. ``decide_batch`` evaluates a whole
batch column-wise with numpy (``evaluate``: millions of customers per second), then builds
one decision per customer with its reasons, DQ issues and CRM actions (a per-record Python
step, the expensive part). ``decide`` runs the same rules' plain-Python form for one
customer (the webhook path), where numpy's per-call overhead would cost more than the work.
Both end in the same assembly code, and a test holds the two paths to identical
Assessments on arbitrary and generated customers, which also makes each a check on the
other.

A decision is ``AssessmentData``: exactly the plain data an ``Assessment`` holds.
``assess_batch``/``assess`` validate it into the public model (``crmtier tier``, tests,
anything that hands an assessment on). The sync layer plans CRM writes from the plain data
directly: validating ~40 nested models a customer costs more than all the rules together
(bench/core.py, "materialise" against "decide_batch"), and the data is our own.

``as_of`` is always an input: the core never reads the clock, so an assessment can be
replayed for an examiner with the date it was made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, cast

import numpy as np

from tiering_core.collector import collector_paused
from tiering_core.columns import BoolArray, Columns, FloatArray, Record
from tiering_core.dates import add_months, add_working_days
from tiering_core.models import (
    ACTION_KINDS,
    ActionKind,
    Assessment,
    AssessmentData,
    CustomerProfile,
)
from tiering_core.policy import Policy
from tiering_core.reasons import make_reason
from tiering_core.rules import (
    aml,
    consent,
    credit,
    feedback,
    household,
    needs,
    ops,
    quality,
    strategy,
    value,
)
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
from tiering_core.rules.household import HouseholdLinks


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
    status: IntArray
    open_complaints: FloatArray
    detractor: BoolArray
    marketing_opt_out: BoolArray
    reasons: list[ReasonColumn]
    issues: list[IssueColumn]


def evaluate(
    cols: Columns, policy: Policy, as_of: date, households: HouseholdLinks | None = None
) -> Evaluation:
    """All tiers for a batch, vectorised. No per-record Python work happens here.
    ``households``: the batch's household links (rules.household), when the CRM has any."""
    clean, issues, has_issue = quality.check(cols, policy)
    v = value.rate(clean, policy, as_of)
    if households is not None:
        v = household.lift(v, clean, households, policy)
    needs_tier, needs_reasons = needs.rate(clean, policy, v.tier)
    credit_risk, credit_reasons = credit.rate(clean, policy)
    a = aml.rate(clean, policy)
    ops_risk, ops_reasons = ops.rate(clean, policy)
    fb = feedback.rate(clean, policy)
    opted_out, consent_reasons = consent.rate(clean)

    some_unrated = (
        (credit_risk == UNRATED_RISK) | (a.level == UNRATED_AML) | (ops_risk == UNRATED_RISK)
    )
    status = np.where(
        v.tier == UNRATED_TIER,
        STATUSES.index("unrated"),
        np.where(has_issue | some_unrated, STATUSES.index("partial"), STATUSES.index("rated")),
    ).astype(np.int8)
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
        status=status,
        open_complaints=np.where(gt(complaints, 0), complaints, 0.0),
        detractor=fb.detractor,
        marketing_opt_out=opted_out,
        reasons=[
            *v.reasons,
            *needs_reasons,
            *credit_reasons,
            *a.reasons,
            *ops_reasons,
            *fb.reasons,
            *consent_reasons,
            *(household.review(a.level, households, policy) if households is not None else ()),
        ],
        issues=issues,
    )


def decide_batch(
    profiles: Sequence[CustomerProfile],
    policy: Policy,
    as_of: date,
    *,
    kinds: frozenset[ActionKind] = ACTION_KINDS,
    households: HouseholdLinks | None = None,
) -> list[AssessmentData]:
    """Decide many customers at once, as plain data, in input order. A batch of one (a
    webhook's lone customer, the engine's per-record fallback) takes ``decide``, the
    plain-Python path: numpy's per-call overhead would dominate it.

    ``actions`` holds only the action ``kinds`` asked for: a sync that writes tier fields
    alone does not pay for ten campaign keys and the task rules of every customer (about
    a quarter of deciding). Everything else is the same whatever ``kinds`` is.
    ``households`` (``HouseholdLinks.build`` over these profiles' ids) applies the
    household rules (rules.household)."""
    if not profiles:
        return []
    if len(profiles) == 1 and households is None:
        return [decide(profiles[0], policy, as_of, kinds=kinds)]
    cols = Columns.from_profiles(profiles, policy)
    evaluation = evaluate(cols, policy, as_of, households)
    with collector_paused():
        return _decisions(profiles, evaluation, policy, as_of, kinds)


def assess_batch(
    profiles: Sequence[CustomerProfile], policy: Policy, as_of: date
) -> list[Assessment]:
    """``decide_batch`` validated into ``Assessment`` models."""
    return _validated(decide_batch(profiles, policy, as_of))


def assess(profile: CustomerProfile, policy: Policy, as_of: date) -> Assessment:
    """``decide`` validated into an ``Assessment``."""
    return _model(decide(profile, policy, as_of))


def decide(
    profile: CustomerProfile,
    policy: Policy,
    as_of: date,
    *,
    kinds: frozenset[ActionKind] = ACTION_KINDS,
) -> AssessmentData:
    """Decide one customer with the rules' plain-Python form (``decide_batch`` takes it for
    a batch of one: the webhook path). It equals the vectorised path exactly; tests hold
    the two to that on arbitrary and generated customers."""
    rec = Record.from_profile(profile, policy)
    clean, issue_cols, has_issue = quality.check_one(rec, policy)
    v = value.rate_one(clean, policy, as_of)
    needs_tier, needs_reasons = needs.rate_one(clean, policy, v.tier)
    credit_risk, credit_reasons = credit.rate_one(clean, policy)
    aml_risk, _, aml_reasons = aml.rate_one(clean, policy)
    ops_risk, ops_reasons = ops.rate_one(clean, policy)
    _, detractor, feedback_reasons = feedback.rate_one(clean, policy)
    opted_out, consent_reasons = consent.rate_one(clean)
    if v.tier == UNRATED_TIER:
        status = STATUSES.index("unrated")
    elif has_issue or UNRATED_RISK in (credit_risk, ops_risk) or aml_risk == UNRATED_AML:
        status = STATUSES.index("partial")
    else:
        status = STATUSES.index("rated")
    complaints = clean.num("open_complaints")
    decided = _Decided(
        v.tier,
        v.score,
        needs_tier,
        credit_risk,
        aml_risk,
        ops_risk,
        status,
        v.upgraded_from,
        complaints if complaints > 0 else 0.0,
        detractor,
        v.below_floor_since,
        opted_out,
    )
    columns = (
        *v.reasons,
        *needs_reasons,
        *credit_reasons,
        *aml_reasons,
        *ops_reasons,
        *feedback_reasons,
        *consent_reasons,
    )
    reasons = _reasons_by_row([profile], columns)[0]
    issues = [_issue(profile, ic) for ic in issue_cols]
    return _decision(profile, decided, reasons, issues, policy, as_of, kinds)


# --- materialisation: columns -> one Assessment per customer -------------------------------


def materialise(
    profiles: Sequence[CustomerProfile], ev: Evaluation, policy: Policy, as_of: date
) -> list[Assessment]:
    """One validated Assessment per customer, in input order (bench/core.py's stage).

    Python's cyclic garbage collector is paused while the batch is built: every object made
    here is acyclic and kept, so the collector's repeated scans of the growing result would
    cost as much as building it (measured: about half the time). The previous state is
    restored afterwards, whatever happens."""
    with collector_paused():
        decisions = _decisions(profiles, ev, policy, as_of, ACTION_KINDS)
    return _validated(decisions)


def _validated(decisions: list[AssessmentData]) -> list[Assessment]:
    """The decisions as ``Assessment`` models (the collector paused, as for building them)."""
    with collector_paused():
        return [_model(d) for d in decisions]


def _model(decision: AssessmentData) -> Assessment:
    """One decision as a model. Its reasons' texts are rendered into dicts first: pydantic
    reads a ``Mapping`` item by item, far slower than a dict (assess_batch: 5,460 against
    6,730 customers a second)."""
    for reason in decision["reasons"]:
        reason["text"] = reason["text"].rendered()
    return Assessment.model_validate(decision)


def _decisions(
    profiles: Sequence[CustomerProfile],
    ev: Evaluation,
    policy: Policy,
    as_of: date,
    kinds: frozenset[ActionKind],
) -> list[AssessmentData]:
    reasons = _reasons_by_row(profiles, ev.reasons)
    issues = _issues_by_row(profiles, ev.issues)
    rows = zip(
        ev.value_tier.tolist(),
        ev.value_score.tolist(),
        ev.needs_tier.tolist(),
        ev.credit_risk.tolist(),
        ev.aml_risk.tolist(),
        ev.ops_risk.tolist(),
        ev.status.tolist(),
        ev.upgraded_from.tolist(),
        ev.open_complaints.tolist(),
        ev.detractor.tolist(),
        ev.below_floor_since.tolist(),
        ev.marketing_opt_out.tolist(),
        strict=True,
    )
    return [
        _decision(profile, _Decided(*row), reasons[i], issues[i], policy, as_of, kinds)
        for i, (profile, row) in enumerate(zip(profiles, rows, strict=True))
    ]


@dataclass(slots=True)
class _Decided:
    """One customer's decisions as vocabulary codes (the same from either path)."""

    value_tier: int
    value_score: float  # NaN: none
    needs_tier: int
    credit_risk: int
    aml_risk: int
    ops_risk: int
    status: int
    upgraded_from: int  # -1: no upgrade
    open_complaints: float
    detractor: bool
    below_floor_since: float  # date ordinal; NaN: none
    marketing_opt_out: bool


def _decision(
    profile: CustomerProfile,
    d: _Decided,
    reasons: list[dict[str, Any]],
    issues: list[dict[str, Any]],
    policy: Policy,
    as_of: date,
    kinds: frozenset[ActionKind],
) -> AssessmentData:
    months = policy.aml.review_months
    review = _next_review_by_level(
        (months.low, months.medium, months.high), policy.aml.new_customer.working_days, as_of
    )
    value_tier = VALUE_TIERS[d.value_tier]
    aml_risk = AML_LEVELS[d.aml_risk]
    sl = policy.service_levels
    outcome = strategy.Outcome(
        value_tier=value_tier,
        value_score=None if d.value_score != d.value_score else d.value_score,
        needs_tier=NEEDS_TIERS[d.needs_tier],
        credit_risk=RISK_LEVELS[d.credit_risk],
        aml_risk=aml_risk,
        ops_risk=RISK_LEVELS[d.ops_risk],
        edd_required=aml_risk in ("high", "prohibited"),
        next_review=review[aml_risk],
        service_level=sl.prohibited if aml_risk == "prohibited" else getattr(sl, value_tier),
        status=STATUSES[d.status],
        upgraded_from=None if d.upgraded_from < 0 else VALUE_TIERS[d.upgraded_from],
        open_complaints=int(d.open_complaints),
        detractor=bool(d.detractor),
        dq_fields=tuple(sorted({issue["field"] for issue in issues})),
        marketing_opt_out=bool(d.marketing_opt_out),
    )
    since = d.below_floor_since
    return {
        "id": profile.id,
        **outcome.decided(),
        "reasons": reasons,
        "actions": strategy.actions(profile, outcome, reasons, policy, as_of, kinds),
        "dq_issues": issues,
        "policy_version": policy.version,
        "below_floor_since": None if since != since else date.fromordinal(int(since)),
    }


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


def _hits(masks: Sequence[BoolArray | bool]) -> list[tuple[int, int]]:
    """(column, row) of every true cell, column by column: one numpy call for all masks."""
    if not masks:
        return []
    columns, rows = np.nonzero(np.vstack(masks))
    return list(zip(columns.tolist(), rows.tolist(), strict=True))


def _reasons_by_row(
    profiles: Sequence[CustomerProfile], columns: Sequence[ReasonColumn]
) -> list[list[dict[str, Any]]]:
    """Each customer's reasons, in column order. Rendered column by column: one numpy call
    takes a column's cells of all its rows, where a call per cell cost a sixth of deciding.
    ``decide`` passes its one customer, whose masks and values are plain scalars."""
    rows: list[list[dict[str, Any]]] = [[] for _ in profiles]
    for rc in columns:
        hit = _rows_of(rc.mask)
        if not hit:
            continue
        if rc.profile_path is not None:
            observed = [_profile_value(profiles[i], rc.profile_path) for i in hit]
        elif rc.labels is not None:
            labels = rc.labels
            observed = [None if k is None else labels[int(k)] for k in _cells(rc.value, hit)]
        else:
            observed = _cells(rc.value, hit)
        thresholds, weights = _cells(rc.threshold, hit), _cells(rc.weight, hit)
        for i, seen, threshold, weight in zip(hit, observed, thresholds, weights, strict=True):
            rows[i].append(make_reason(rc.code, seen, threshold, weight))
    return rows


def _rows_of(mask: BoolArray | bool) -> list[int]:
    """The rows a mask selects (a scalar mask: the one customer of ``decide``, or none)."""
    if isinstance(mask, np.ndarray):
        return cast(list[int], np.flatnonzero(mask).tolist())
    return [0] if mask else []


def _cells(values: Any, rows: list[int]) -> list[Any]:
    """A column's ``rows`` as JSON-friendly Python values; a scalar stands for every row."""
    if isinstance(values, np.ndarray):
        return [_py(v) for v in values[rows].tolist()]
    return [_py(values)] * len(rows)


def _issues_by_row(
    profiles: Sequence[CustomerProfile], columns: list[IssueColumn]
) -> list[list[dict[str, Any]]]:
    rows: list[list[dict[str, Any]]] = [[] for _ in profiles]
    for c, i in _hits([ic.mask for ic in columns]):
        rows[i].append(_issue(profiles[i], columns[c]))
    return rows


def _issue(profile: CustomerProfile, ic: IssueColumn) -> dict[str, Any]:
    value = _profile_value(profile, ic.path)
    return {
        "code": ic.code,
        "field": ic.path,
        "problem": ic.problem,
        "value": value if _is_scalar(value) else None,
    }


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list)
