"""The tiering engine: columns in, decisions out, in one implementation.

``evaluate`` decides a whole batch column-wise with numpy (every level, score, reason and
DQ mask: millions of customers per second). ``decide_columns`` then builds one decision
per customer with its reasons, DQ issues and CRM actions: the per-record step, needed only
where a customer leaves the process (a CRM write, an output line). One customer (the
webhook path) is a batch of one through the same code; a golden fixture of generated books
(tests/core/test_core_golden.py) pins the decisions.

A decision is ``AssessmentData``: exactly the plain data an ``Assessment`` holds, keyed in
the model's field order, so ``assessment_json`` writes the bytes ``Assessment`` would
without building it. ``assess_batch``/``assess`` validate it into the public model (tests,
anything that hands an assessment on as a model); the sync layer plans CRM writes from the
plain data directly.

``as_of`` is always an input: the core never reads the clock, so an assessment can be
replayed for an examiner with the date it was made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
import pydantic_core

from tiering_core.cells import INTEGER_PATHS
from tiering_core.columns import (
    ENUM_INDEX,
    ENUMS,
    NUMBERS,
    PATHS,
    BoolArray,
    Columns,
    FloatArray,
)
from tiering_core.dates import add_months, add_working_days
from tiering_core.models import (
    ACTION_KINDS,
    ActionKind,
    Assessment,
    AssessmentData,
    CustomerProfile,
)
from tiering_core.policy import Policy
from tiering_core.reasons import CATALOGUE, ReasonText, make_reason
from tiering_core.rules import (
    aml,
    campaigns,
    consent,
    credit,
    feedback,
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


def evaluate(cols: Columns, policy: Policy, as_of: date) -> Evaluation:
    """All tiers for a batch, vectorised. No per-record Python work happens here."""
    clean, issues, has_issue = quality.check(cols, policy)
    v = value.rate(clean, policy, as_of)
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
        ],
        issues=issues,
    )


def decide_columns(
    cols: Columns,
    policy: Policy,
    as_of: date,
    *,
    kinds: frozenset[ActionKind] = ACTION_KINDS,
) -> list[AssessmentData]:
    """Decide a batch laid out as columns (with its ids: ``Columns.from_cells``), as plain
    data, in input order.

    ``actions`` holds only the action ``kinds`` asked for: a sync that writes tier fields
    alone does not pay for ten campaign keys and the task rules of every customer (about
    a quarter of deciding). Everything else is the same whatever ``kinds`` is."""
    if not cols.n:
        return []
    return _decisions(cols, evaluate(cols, policy, as_of), policy, as_of, kinds)


def decide_batch(
    profiles: Sequence[CustomerProfile],
    policy: Policy,
    as_of: date,
    *,
    kinds: frozenset[ActionKind] = ACTION_KINDS,
) -> list[AssessmentData]:
    """``decide_columns`` of validated profiles (a batch of one: the webhook path)."""
    if not profiles:
        return []
    return decide_columns(Columns.from_profiles(profiles, policy), policy, as_of, kinds=kinds)


def assess_batch(
    profiles: Sequence[CustomerProfile], policy: Policy, as_of: date
) -> list[Assessment]:
    """``decide_batch`` validated into ``Assessment`` models."""
    return [_model(d) for d in decide_batch(profiles, policy, as_of)]


def assess(profile: CustomerProfile, policy: Policy, as_of: date) -> Assessment:
    """One customer: a batch of one, validated into an ``Assessment``."""
    return assess_batch([profile], policy, as_of)[0]


def decide(
    profile: CustomerProfile,
    policy: Policy,
    as_of: date,
    *,
    kinds: frozenset[ActionKind] = ACTION_KINDS,
) -> AssessmentData:
    """One customer (the webhook path): a batch of one through the vectorised rules."""
    return decide_batch([profile], policy, as_of, kinds=kinds)[0]


def assessment_json(decision: AssessmentData) -> bytes:
    """One decision as the JSON ``Assessment.model_dump_json`` writes, byte for byte,
    without building the model: the keys are already in the model's order and
    pydantic-core's serializer formats every value the same way. Reason texts are
    rendered here (in place: the decision is on its way out), where a person reads them."""
    return pydantic_core.to_json(_with_texts(decision))


def _model(decision: AssessmentData) -> Assessment:
    """One decision as a model (texts rendered in place first: pydantic reads a
    ``Mapping`` item by item, far slower than a dict)."""
    return Assessment.model_validate(_with_texts(decision))


def _with_texts(decision: AssessmentData) -> AssessmentData:
    for reason in decision["reasons"]:
        text = reason["text"]
        if text.__class__ is ReasonText:
            reason["text"] = text.rendered()
    return decision


def _decisions(
    cols: Columns,
    ev: Evaluation,
    policy: Policy,
    as_of: date,
    kinds: frozenset[ActionKind],
) -> list[AssessmentData]:
    reasons = _reasons_by_row(cols, ev.reasons)
    issues = _issues_by_row(cols, ev.issues)
    kind = cols.enum_texts[ENUM_INDEX["kind"]]
    sanctioned = (cols.flag["sanctions_hit"] == 1).tolist()
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
    customers = zip(cols.ids, cols.owner_ids, kind, sanctioned, strict=True)
    m = campaigns.decide(
        policy,
        value_tier=ev.value_tier,
        needs_tier=ev.needs_tier,
        credit_risk=ev.credit_risk,
        aml_risk=ev.aml_risk,
        kind=cols.enum["kind"],
        marketing_opt_out=ev.marketing_opt_out,
    )
    members = m.member.T.tolist() if "campaign" in kinds else [[]] * cols.n
    return [
        _decision(
            strategy.Customer(*customer),
            _Decided(*row),
            reasons[i],
            issues[i],
            policy,
            as_of,
            kinds,
            (m.keys, members[i]),
        )
        for i, (customer, row) in enumerate(zip(customers, rows, strict=True))
    ]


@dataclass(slots=True)
class _Decided:
    """One customer's decisions as vocabulary codes."""

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
    customer: strategy.Customer,
    d: _Decided,
    reasons: list[dict[str, Any]],
    issues: list[dict[str, Any]],
    policy: Policy,
    as_of: date,
    kinds: frozenset[ActionKind],
    memberships: tuple[tuple[str, ...], Sequence[bool]],
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
        "id": customer.id,
        "status": outcome.status,
        "value_tier": outcome.value_tier,
        "value_score": outcome.value_score,
        "needs_tier": outcome.needs_tier,
        "credit_risk": outcome.credit_risk,
        "aml_risk": outcome.aml_risk,
        "ops_risk": outcome.ops_risk,
        "edd_required": outcome.edd_required,
        "next_review": outcome.next_review,
        "service_level": outcome.service_level,
        "reasons": reasons,
        "actions": strategy.actions(customer, outcome, reasons, policy, as_of, kinds, memberships),
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


def _hits(masks: Sequence[BoolArray]) -> list[tuple[int, int]]:
    """(column, row) of every true cell, column by column: one numpy call for all masks."""
    if not masks:
        return []
    columns, rows = np.nonzero(np.vstack(masks))
    return list(zip(columns.tolist(), rows.tolist(), strict=True))


def _reasons_by_row(cols: Columns, columns: Sequence[ReasonColumn]) -> list[list[dict[str, Any]]]:
    """Each customer's reasons, in column order. Made column by column: one numpy call
    takes a column's cells of all its rows, and the customers of a column who share a
    value and threshold share one text (rendered once, if ever read)."""
    rows: list[list[dict[str, Any]]] = [[] for _ in range(cols.n)]
    by_column: dict[int, list[int]] = {}
    for c, i in _hits([rc.mask for rc in columns]):
        by_column.setdefault(c, []).append(i)
    for c, hit in by_column.items():
        rc = columns[c]
        observed: list[Any]
        if rc.profile_path is not None:  # the listed countries, as given
            observed = [_listed(cols, i) for i in hit]
        elif rc.labels is not None:
            labels = rc.labels
            observed = [None if k is None else labels[int(k)] for k in _cells(rc.value, hit)]
        else:
            observed = _cells(rc.value, hit)
        thresholds, weights = _cells(rc.threshold, hit), _cells(rc.weight, hit)
        spec = CATALOGUE[rc.code]
        texts: dict[tuple[Any, Any], ReasonText] = {}
        for i, seen, threshold, weight in zip(hit, observed, thresholds, weights, strict=True):
            shared = None if seen.__class__ is list else texts.get((seen, threshold))
            if shared is not None:
                text = shared
            else:
                text = ReasonText(spec, seen, threshold)
                if seen.__class__ is not list:
                    texts[(seen, threshold)] = text
            rows[i].append(make_reason(rc.code, seen, threshold, weight, text))
    return rows


def _listed(cols: Columns, row: int) -> list[str] | None:
    listed = cols.listed_countries[row]
    return None if listed is None else list(listed)


def _cells(values: Any, rows: list[int]) -> list[Any]:
    """A column's ``rows`` as JSON-friendly Python values; a scalar stands for every row."""
    if isinstance(values, np.ndarray):
        return [_py(v) for v in values[rows].tolist()]
    return [_py(values)] * len(rows)


def _issues_by_row(cols: Columns, columns: list[IssueColumn]) -> list[list[dict[str, Any]]]:
    rows: list[list[dict[str, Any]]] = [[] for _ in range(cols.n)]
    for c, i in _hits([ic.mask for ic in columns]):
        ic = columns[c]
        rows[i].append(
            {
                "code": ic.code,
                "field": ic.path,
                "problem": ic.problem,
                "value": _input_value(cols, ic.path, i),
            }
        )
    return rows


#: Canonical path -> (row in ``numbers``, whether the model holds it as an integer).
_NUMBER_ROWS = {
    PATHS[name]: (k, PATHS[name] in INTEGER_PATHS) for k, (name, _, _) in enumerate(NUMBERS)
}
#: Canonical path -> row in ``enum_texts``.
_ENUM_ROWS = {PATHS[name]: k for k, (name, *_) in enumerate(ENUMS)}


def _input_value(cols: Columns, path: str, row: int) -> Any:
    """The input a DQ issue is about, as given (a block or a missing value: None)."""
    number = _NUMBER_ROWS.get(path)
    if number is not None:
        k, integer = number
        x = float(cols.numbers[k, row])
        return None if x != x else int(x) if integer else x
    enum = _ENUM_ROWS.get(path)
    if enum is not None:
        return cols.enum_texts[enum][row]
    if path == "currency":
        return cols.currencies[row]
    if path == "aml.high_risk_countries":
        return _listed(cols, row)
    return None  # a whole block, a missing flag
