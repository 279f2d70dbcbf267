"""Decisions, one per customer: the per-record step, made only where a customer leaves
the process (a CRM write, an output line).

``evaluate`` (engine) has decided every level, score, reason and DQ issue of a batch
column-wise; this turns one batch's columns into one ``AssessmentData`` per customer, in
input order and in the model's field order, with its reasons (shared texts: one per
distinct code, value and threshold), DQ issues (showing each input as given) and CRM
actions (``strategy``; campaign membership decided column-wise by ``rules.campaigns``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from tiering_core.cells import INTEGER_PATHS
from tiering_core.columns import ENUM_INDEX, ENUMS, NUMBERS, PATHS, BoolArray, Columns
from tiering_core.dates import add_months, add_working_days
from tiering_core.models import ActionKind, AssessmentData
from tiering_core.policy import Policy
from tiering_core.reasons import CATALOGUE, ReasonText
from tiering_core.rules import campaigns, channel, override, strategy
from tiering_core.rules.base import (
    AML_LEVELS,
    NEEDS_TIERS,
    RISK_LEVELS,
    STATUSES,
    VALUE_TIERS,
    IssueColumn,
    ReasonColumn,
)

if TYPE_CHECKING:
    from tiering_core.engine import Evaluation


def made(
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
        ev.preferred_channel.tolist(),
        strict=True,
    )
    customers = zip(cols.ids, cols.owner_ids, kind, sanctioned, strict=True)
    households = _household_tiers(ev)
    if "campaign" in kinds:
        m = memberships(cols, ev, policy)
        members = m.member.T.tolist()
    else:
        m, members = _NO_MEMBERSHIPS, [[]] * cols.n
    overrides = [override.row_of(cols, i) for i in range(cols.n)] if cols.overrides else None
    return [
        _decision(
            strategy.Customer(*customer),
            _Decided._make(row),
            reasons[i],
            issues[i],
            policy,
            as_of,
            kinds,
            (m.keys, members[i]),
            households[i],
            overrides[i] if overrides else None,
        )
        for i, (customer, row) in enumerate(zip(customers, rows, strict=True))
    ]


def memberships(cols: Columns, ev: Evaluation, policy: Policy) -> campaigns.Memberships:
    """Every campaign's members among the batch, column-wise."""
    return campaigns.decide(
        policy,
        value_tier=ev.value_tier,
        needs_tier=ev.needs_tier,
        credit_risk=ev.credit_risk,
        aml_risk=ev.aml_risk,
        kind=cols.enum["kind"],
        marketing_opt_out=ev.marketing_opt_out,
    )


_NO_MEMBERSHIPS = campaigns.Memberships((), np.zeros((0, 0), dtype=np.bool_))


class _Household(NamedTuple):
    """Whether the batch came with household links, and the member's household tier."""

    read: bool
    tier: str | None


def _household_tiers(ev: Evaluation) -> list[_Household]:
    """Each row's household tier by name; not read at all without household links."""
    if ev.household_tier is None:
        return [_Household(False, None)] * ev.n
    unrated = VALUE_TIERS.index("unrated")
    return [
        _Household(True, None if t == unrated else VALUE_TIERS[t])
        for t in ev.household_tier.tolist()
    ]


class _Decided(NamedTuple):
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
    preferred_channel: int


def _decision(
    customer: strategy.Customer,
    d: _Decided,
    reasons: list[dict[str, Any]],
    issues: list[dict[str, Any]],
    policy: Policy,
    as_of: date,
    kinds: frozenset[ActionKind],
    memberships: tuple[tuple[str, ...], Sequence[bool]],
    household: _Household,
    overridden: dict[str, Any] | None = None,  # the customer's override cells, if any
) -> AssessmentData:
    months = policy.aml.review_months
    review = _next_review_by_level(
        (months.low, months.medium, months.high), policy.aml.new_customer.working_days, as_of
    )
    value_tier = VALUE_TIERS[d.value_tier]
    aml_risk = AML_LEVELS[d.aml_risk]
    sl = policy.service_levels
    since = d.below_floor_since
    next_review = review[aml_risk]
    decision: AssessmentData = {
        "id": customer.id,
        "status": STATUSES[d.status],
        "value_tier": value_tier,
        "value_score": None if d.value_score != d.value_score else d.value_score,
        "needs_tier": NEEDS_TIERS[d.needs_tier],
        "credit_risk": RISK_LEVELS[d.credit_risk],
        "aml_risk": aml_risk,
        "ops_risk": RISK_LEVELS[d.ops_risk],
        "edd_required": aml_risk in ("high", "prohibited"),
        "next_review": next_review,
        "service_level": (overridden and override.service_level(reasons, sl))
        or (sl.prohibited if aml_risk == "prohibited" else getattr(sl, value_tier)),
        "preferred_channel": channel.CHANNELS[d.preferred_channel],
        "reasons": reasons,
        "actions": (),  # below: in its place among the keys
        "dq_issues": issues,
        "policy_version": policy.version,
        "below_floor_since": None if since != since else date.fromordinal(int(since)),
    }
    if household.read:  # the key only where households were read: otherwise as before
        decision["household_tier"] = household.tier  # type: ignore[typeddict-item]
    # What only the tasks read is made only for them (the sync writing tier fields does not).
    outcome = (
        strategy.Outcome(
            value_tier=value_tier,
            value_score=decision["value_score"],
            needs_tier=decision["needs_tier"],
            credit_risk=decision["credit_risk"],
            aml_risk=aml_risk,
            ops_risk=decision["ops_risk"],
            edd_required=decision["edd_required"],
            next_review=next_review,
            service_level=decision["service_level"],
            status=decision["status"],
            upgraded_from=None if d.upgraded_from < 0 else VALUE_TIERS[d.upgraded_from],
            open_complaints=int(d.open_complaints),
            detractor=bool(d.detractor),
            dq_fields=tuple(sorted({issue["field"] for issue in issues})),
            marketing_opt_out=bool(d.marketing_opt_out),
            preferred_channel=decision["preferred_channel"],
        )
        if "task" in kinds
        else None
    )
    decision["actions"] = strategy.actions(
        customer, decision, outcome, reasons, policy, as_of, kinds, memberships
    )
    if overridden is not None:  # a refused override's task to its maker
        decision["actions"] = (
            *decision["actions"],
            *override.refusal_tasks(
                customer.id, customer.owner_id, overridden, reasons, policy, as_of, kinds
            ),
        )
    return decision


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
        thresholds = _cells(rc.threshold, hit)
        spec = CATALOGUE[rc.code]
        code, dimension, factor = spec.code, spec.dimension, spec.factor
        weights = [spec.weight if w is None else round(w, 4) for w in _cells(rc.weight, hit)]
        texts: dict[tuple[Any, Any], ReasonText] = {}
        for i, seen, threshold, weight in zip(hit, observed, thresholds, weights, strict=True):
            if seen.__class__ is list:
                text = ReasonText(spec, seen, threshold)
            else:
                text = texts.get((seen, threshold))  # type: ignore[assignment]
                if text is None:
                    text = texts[(seen, threshold)] = ReasonText(spec, seen, threshold)
            # make_reason's dict, inlined: a customer has six reasons on average
            rows[i].append(
                {
                    "code": code,
                    "dimension": dimension,
                    "factor": factor,
                    "value": seen,
                    "threshold": threshold,
                    "weight": weight,
                    "text": text,
                }
            )
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
