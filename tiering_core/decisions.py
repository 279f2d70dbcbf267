"""Decisions, one per customer: the per-record step, made only where a customer leaves
the process (a CRM write, an output line).

``evaluate`` (engine) has decided every level, score, reason and DQ issue of a batch
column-wise; this turns one batch's columns into one ``AssessmentData`` per customer, in
input order and in the model's field order, with its reasons (shared texts: one per
distinct code, value and threshold), DQ issues (showing each input as given) and CRM
actions (``strategy``; campaign membership decided column-wise by ``rules.campaigns``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from functools import lru_cache
from itertools import pairwise
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from tiering_core.cells import INTEGER_PATHS
from tiering_core.columns import ENUM_INDEX, ENUMS, NUMBERS, PATHS, BoolArray, Columns
from tiering_core.dates import add_months, add_working_days
from tiering_core.models import ActionKind, AssessmentData, ValueTier
from tiering_core.policy import Policy
from tiering_core.reason_spec import ReasonSpec
from tiering_core.reasons import CATALOGUE, ReasonText
from tiering_core.rules import campaigns, channel, override, strategy
from tiering_core.rules.base import (
    AML_LEVELS,
    NEEDS_TIERS,
    RISK_LEVELS,
    STATUSES,
    VALUE_TIERS,
    IntArray,
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
    *,
    rendered: bool = False,
) -> list[AssessmentData]:
    """One decision per row of the batch. Every decided output is first named column-wise
    (``_Named``: a vocabulary lookup per column, one review date and service level per
    level), so the loop below only gathers a row's values into its dict and derives its
    actions. ``rendered``: reason texts as dicts up front, for a caller that writes them
    all (an output line); else each renders when first read (``reasons.ReasonText``)."""
    reasons = _reasons_by_row(cols, ev.reasons, rendered)
    issues = _issues_by_row(cols, ev.issues)
    named = _Named.of(ev, policy, as_of)
    customers = list(
        map(
            strategy.Customer,
            cols.ids,
            cols.owner_ids,
            cols.enum_texts[ENUM_INDEX["kind"]],
            (cols.flag["sanctions_hit"] == 1).tolist(),
        )
    )
    households = _household_tiers(ev)
    if "campaign" in kinds:
        m = memberships(cols, ev, policy)
        members = m.member.T.tolist()
    else:
        m, members = _NO_MEMBERSHIPS, [[]] * cols.n
    overrides = [override.row_of(cols, i) for i in range(cols.n)] if cols.overrides else None
    levels = policy.service_levels
    version = policy.version
    tasks = "task" in kinds
    out: list[AssessmentData] = []
    rows = zip(
        customers,
        named.status,
        named.value_tier,
        named.value_score,
        named.needs_tier,
        named.credit_risk,
        named.aml_risk,
        named.ops_risk,
        named.edd_required,
        named.next_review,
        named.service_level,
        named.preferred_channel,
        named.below_floor_since,
        reasons,
        issues,
        strict=True,
    )
    for i, (customer, status, tier, score, needs, credit, aml, ops, edd, review, level,
            channel_, since, why, dq) in enumerate(rows):  # fmt: skip
        overridden = overrides[i] if overrides else None
        if overridden:
            level = override.service_level(why, levels) or level
        decision: AssessmentData = {
            "id": customer.id,
            "status": status,
            "value_tier": tier,
            "value_score": score,
            "needs_tier": needs,
            "credit_risk": credit,
            "aml_risk": aml,
            "ops_risk": ops,
            "edd_required": edd,
            "next_review": review,
            "service_level": level,
            "preferred_channel": channel_,
            "reasons": why,
            "actions": (),  # below: in its place among the keys
            "dq_issues": dq,
            "policy_version": version,
            "below_floor_since": since,
        }
        household = households[i]
        if household.read:  # the key only where households were read: otherwise as before
            decision["household_tier"] = household.tier  # type: ignore[typeddict-item]
        # What only the tasks read is made only for them (the sync writing tier fields
        # does not).
        outcome = named.outcome(i, decision, dq) if tasks else None
        decision["actions"] = strategy.actions(
            customer, decision, outcome, why, policy, as_of, kinds, (m.keys, members[i])
        )
        if overridden is not None:  # a refused override's task to its maker
            decision["actions"] = (
                *decision["actions"],
                *override.refusal_tasks(
                    customer.id, customer.owner_id, overridden, why, policy, as_of, kinds
                ),
            )
        out.append(decision)
    return out


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


def _names(vocabulary: Sequence[str], codes: IntArray) -> list[str]:
    """Each code's name in ``vocabulary`` (one C-level map over the column)."""
    return list(map(vocabulary.__getitem__, codes.tolist()))


class _Named(NamedTuple):
    """A batch's decided outputs as the decision holds them, one list per output, and the
    codes only the tasks read."""

    status: list[str]
    value_tier: list[str]
    value_score: list[float | None]
    needs_tier: list[str]
    credit_risk: list[str]
    aml_risk: list[str]
    ops_risk: list[str]
    edd_required: list[bool]
    next_review: list[date]
    service_level: list[str]
    preferred_channel: list[str]
    below_floor_since: list[date | None]
    upgraded_from: list[ValueTier | None]
    open_complaints: list[int]
    detractor: list[bool]
    marketing_opt_out: list[bool]

    @classmethod
    def of(cls, ev: Evaluation, policy: Policy, as_of: date) -> _Named:
        months = policy.aml.review_months
        review = _next_review_by_level(
            (months.low, months.medium, months.high), policy.aml.new_customer.working_days, as_of
        )
        levels = policy.service_levels
        # a tier's service level, or the prohibited one (whatever the tier) at that AML level
        service = [getattr(levels, tier) for tier in VALUE_TIERS]
        high, prohibited = AML_LEVELS.index("high"), AML_LEVELS.index("prohibited")
        level_codes = np.where(ev.aml_risk == prohibited, len(service), ev.value_tier)
        aml = _names(AML_LEVELS, ev.aml_risk)
        return cls(
            status=_names(STATUSES, ev.status),
            value_tier=_names(VALUE_TIERS, ev.value_tier),
            value_score=[None if v != v else v for v in ev.value_score.tolist()],
            needs_tier=_names(NEEDS_TIERS, ev.needs_tier),
            credit_risk=_names(RISK_LEVELS, ev.credit_risk),
            aml_risk=aml,
            ops_risk=_names(RISK_LEVELS, ev.ops_risk),
            edd_required=((ev.aml_risk == high) | (ev.aml_risk == prohibited)).tolist(),
            next_review=list(map(review.__getitem__, aml)),
            service_level=_names((*service, levels.prohibited), level_codes),
            preferred_channel=_names(channel.CHANNELS, ev.preferred_channel),
            below_floor_since=[
                None if d != d else date.fromordinal(int(d)) for d in ev.below_floor_since.tolist()
            ],
            upgraded_from=[None if t < 0 else VALUE_TIERS[t] for t in ev.upgraded_from.tolist()],
            open_complaints=[int(c) for c in ev.open_complaints.tolist()],
            detractor=ev.detractor.tolist(),
            marketing_opt_out=ev.marketing_opt_out.tolist(),
        )

    def outcome(
        self, i: int, decision: AssessmentData, issues: list[dict[str, Any]]
    ) -> strategy.Outcome:
        """Row ``i``'s ``strategy.Outcome`` (what the task rules read)."""
        return strategy.Outcome(
            value_tier=decision["value_tier"],
            value_score=decision["value_score"],
            needs_tier=decision["needs_tier"],
            credit_risk=decision["credit_risk"],
            aml_risk=decision["aml_risk"],
            ops_risk=decision["ops_risk"],
            edd_required=decision["edd_required"],
            next_review=self.next_review[i],
            service_level=decision["service_level"],
            status=decision["status"],
            upgraded_from=self.upgraded_from[i],
            open_complaints=self.open_complaints[i],
            detractor=self.detractor[i],
            dq_fields=tuple(sorted({issue["field"] for issue in issues})) if issues else (),
            marketing_opt_out=self.marketing_opt_out[i],
            preferred_channel=decision["preferred_channel"],
        )


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


def _rows_by_column(masks: Sequence[BoolArray]) -> list[tuple[int, list[int]]]:
    """Each column with a true cell and its true rows, in column order: one numpy call
    for all masks, and the rows cut into columns where the column changes instead of one
    dict append per cell."""
    if not masks:
        return []
    columns, rows = np.nonzero(np.vstack(masks))
    if not columns.size:
        return []
    bounds = [0, *(np.flatnonzero(np.diff(columns)) + 1).tolist(), columns.size]
    firsts, cells = columns.tolist(), rows.tolist()
    return [(firsts[a], cells[a:b]) for a, b in pairwise(bounds)]


def _reasons_by_row(
    cols: Columns, columns: Sequence[ReasonColumn], rendered: bool
) -> list[list[dict[str, Any]]]:
    """Each customer's reasons, in column order. Made column by column: one numpy call
    takes a column's cells of all its rows, and the customers of a column who share a
    value and threshold share one text (rendered once: up front if ``rendered``, else
    when first read)."""
    text_of: Callable[[ReasonSpec, Any, Any], Mapping[str, str]] = (
        _rendered if rendered else ReasonText
    )
    rows: list[list[dict[str, Any]]] = [[] for _ in range(cols.n)]
    for c, hit in _rows_by_column([rc.mask for rc in columns]):
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
        weights = (
            [spec.weight] * len(hit)
            if rc.weight is None
            else [spec.weight if w is None else round(w, 4) for w in _cells(rc.weight, hit)]
        )
        texts: dict[tuple[Any, Any], Mapping[str, str]] = {}
        for i, seen, threshold, weight in zip(hit, observed, thresholds, weights, strict=True):
            if seen.__class__ is list:
                text = text_of(spec, seen, threshold)
            else:
                text = texts.get((seen, threshold))  # type: ignore[assignment]
                if text is None:
                    text = texts[(seen, threshold)] = text_of(spec, seen, threshold)
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


def _rendered(spec: ReasonSpec, value: Any, threshold: Any) -> dict[str, str]:
    return ReasonText(spec, value, threshold).rendered()


def _listed(cols: Columns, row: int) -> list[str] | None:
    listed = cols.listed_countries[row]
    return None if listed is None else list(listed)


def _cells(values: Any, rows: list[int]) -> list[Any]:
    """A column's ``rows`` as JSON-friendly Python values; a scalar stands for every row."""
    if isinstance(values, np.ndarray):
        return _plain(values[rows])
    return [_py(values)] * len(rows)


#: Beyond this a whole float does not fit an int64 (``_py`` makes it a Python int).
_INT64_SAFE = 2.0**62
#: Fewer cells than this are cheaper one by one than through four numpy calls (a batch
#: of one: the webhook path).
_FEW = 16


def _plain(x: npt.NDArray[Any]) -> list[Any]:
    """``[_py(v) for v in x.tolist()]``, in one C-level conversion when the column allows
    it: every cell a whole number (counts, most thresholds) or none whole and none NaN
    (amounts). A reason's cells are most of a decision's values, so the per-cell Python
    call of ``_py`` was a tenth of deciding (bench/core.py)."""
    cells: list[Any]
    if x.dtype.kind != "f":
        cells = x.tolist()  # codes and flags: _py leaves non-floats as they are
        return cells
    if x.size < _FEW:
        return [_py(v) for v in x.tolist()]
    finite = np.isfinite(x)
    whole = finite & (np.trunc(x) == x)
    if whole.all() and (np.abs(x) < _INT64_SAFE).all():
        cells = x.astype(np.int64).tolist()
    elif finite.all() and not whole.any():
        cells = x.tolist()
    else:
        cells = [_py(v) for v in x.tolist()]
    return cells


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
