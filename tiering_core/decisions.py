"""A batch's decisions, named column by column (``decided``).

``evaluate`` (engine) has decided every level, score, reason and DQ issue of a batch
column-wise as codes; this names them as the decision holds them, one list per output,
with the reasons as cells (``row_reasons``) and each customer's DQ issues
(``row_issues``), the ``set_field`` values per field (the CRM's reasons field chosen for
the whole batch: ``reasons_field``) and campaign membership (``rules.campaigns``).
``DecisionColumns`` holds them; a customer's ``AssessmentData`` (in the model's field
order, with its CRM actions: ``strategy``) is made from them only where it is read
whole: the per-record step, where a customer leaves the process (an output line, a
task, the webhook path).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import numpy as np

from tiering_core import reasons_field, row_issues, row_reasons
from tiering_core.columns import ENUM_INDEX, BoolArray, Columns
from tiering_core.dates import add_months, add_working_days
from tiering_core.decision_columns import DecisionColumns
from tiering_core.models import (
    ActionKind,
    AmlRisk,
    Channel,
    NeedsTier,
    RiskLevel,
    Status,
    ValueTier,
)
from tiering_core.policy import Policy
from tiering_core.rules import campaigns, channel, override, strategy
from tiering_core.rules.base import (
    AML_LEVELS,
    NEEDS_TIERS,
    RISK_LEVELS,
    STATUSES,
    UNRATED_TIER,
    VALUE_TIERS,
    IntArray,
)

if TYPE_CHECKING:
    from tiering_core.engine import Evaluation


def decided(
    cols: Columns,
    ev: Evaluation,
    policy: Policy,
    as_of: date,
    kinds: frozenset[ActionKind],
    *,
    rendered: bool = False,
) -> DecisionColumns:
    """The batch's decisions as columns (``DecisionColumns``): every decided output is
    named column-wise (``Named``: a vocabulary lookup per column, one review date and
    service level per level), and so are the ``set_field`` values (the CRM's reasons field
    chosen for the whole batch); a customer's decision dict is made when it is read.
    ``rendered``: reason texts as dicts up front, for a caller that writes them all (an
    output line); else each renders when first read (``reasons.ReasonText``)."""
    cells = row_reasons.reason_cells(cols, ev.reasons, rendered)
    named = Named.of(ev, policy, as_of)
    households = _household_tiers(ev)
    # each campaign's members, campaign by campaign: what an output line writes them from
    m = memberships(cols, ev, policy) if "campaign" in kinds else _NO_MEMBERSHIPS
    overrides = [override.row_of(cols, i) for i in range(cols.n)] if cols.overrides else None
    service_level = named.service_level
    if overrides:  # an applied service-tier override's level: its reason's value, a tier
        levels, applied = policy.service_levels, cells.values_of(override.SERVICE_REASON)
        service_level = [
            getattr(levels, applied[i]) if i in applied else level
            for i, level in enumerate(service_level)
        ]
    set_fields = (
        _set_field_columns(
            cols.n, named, service_level, cells, households, policy, ev.household_tier is not None
        )
        if "set_field" in kinds
        else {}
    )
    issues = row_issues.issues_by_row(cols, ev.issues)
    return DecisionColumns(
        ids=cols.ids,
        customers=partial(_customers, cols),
        named=named,
        service_level=service_level,
        cells=cells,
        issues=issues,
        set_fields=set_fields,
        households=households,
        memberships=(m.keys, m.member.tolist()),
        candidates=task_candidates(cols, ev, issues, policy).tolist() if "task" in kinds else None,
        overrides=overrides,
        policy=policy,
        as_of=as_of,
        kinds=kinds,
    )


def _customers(cols: Columns) -> list[strategy.Customer]:
    """Each row as the task and campaign rules read it (made only for whole decisions and
    output lines: ``DecisionColumns.customers``)."""
    return list(
        map(
            strategy.Customer,
            cols.ids,
            cols.owner_ids,
            cols.enum_texts[ENUM_INDEX["kind"]],
            (cols.flag["sanctions_hit"] == 1).tolist(),
        )
    )


def _set_field_columns(
    n: int,
    named: Named,
    service_level: list[str],
    cells: row_reasons.ReasonCells,
    households: list[Household],
    policy: Policy,
    households_read: bool,
) -> dict[str, Sequence[Any]]:
    """Every customer's ``set_field`` values, column by column: the reasons field is
    chosen for the whole batch at once (``reasons_field``); the household tier only when
    the batch came with household links (``households_read``)."""
    s = policy.strategy
    review = {d: d.isoformat() for d in set(named.next_review)}
    columns: dict[str, list[Any]] = {
        "value_tier": named.value_tier,
        "value_score": named.value_score,
        "needs_tier": named.needs_tier,
        "credit_risk": named.credit_risk,
        "aml_risk": named.aml_risk,
        "ops_risk": named.ops_risk,
        "edd_required": named.edd_required,
        "next_review": list(map(review.__getitem__, named.next_review)),
        "service_level": service_level,
        "preferred_channel": named.preferred_channel,
        "status": named.status,
        "policy_version": [policy.version] * n,
        "reasons": reasons_field.reasons_fields(
            n,
            cells,
            top=s.reasons_top,
            language=s.reasons_language,
            max_chars=s.reasons_max_chars,
        ),
    }
    if households_read:
        columns["household_tier"] = [h.tier for h in households]
    return strategy.set_field_columns(columns)


def task_candidates(
    cols: Columns, ev: Evaluation, issues: list[list[dict[str, Any]]], policy: Policy
) -> BoolArray:
    """The customers the task rules may give a task (``strategy.task_candidates``), from
    the batch's columns: a whole decision asks the rules about these alone (the others'
    ``tasks`` are none)."""
    return strategy.task_candidates(
        policy,
        sanctioned=cols.flag["sanctions_hit"] == 1,  # as ``_customers`` reads it
        aml_risk=ev.aml_risk,
        credit_risk=ev.credit_risk,
        open_complaints=ev.open_complaints,
        upgraded_from=ev.upgraded_from,
        value_tier=ev.value_tier,
        needs_tier=ev.needs_tier,
        kind=cols.enum["kind"],
        detractor=ev.detractor,
        dq=np.fromiter(map(bool, issues), np.bool_, len(issues)),
    )


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


class Household(NamedTuple):
    """Whether the batch came with household links, and the member's household tier."""

    read: bool
    tier: str | None


def _household_tiers(ev: Evaluation) -> list[Household]:
    """Each row's household tier by name; not read at all without household links."""
    if ev.household_tier is None:
        return [Household(False, None)] * ev.n
    unrated = VALUE_TIERS.index("unrated")
    return [
        Household(True, None if t == unrated else VALUE_TIERS[t])
        for t in ev.household_tier.tolist()
    ]


def _qualified(ev: Evaluation) -> list[tuple[ValueTier, date | None] | None]:
    """``Named.qualified``: None for every row of a batch no override touched (the
    qualified columns are the value ones then, the same arrays). An unrated customer's
    clock counts for nothing (no tier to hold: ``rules.value``), and no override lifts
    one, so its tiers never differ: it is never kept apart."""
    own, since, own_since = ev.qualified_tier, ev.below_floor_since, ev.qualified_below_floor_since
    if own is ev.value_tier and own_since is since:
        return [None] * ev.n
    clocks_apart = ~((since == own_since) | (np.isnan(since) & np.isnan(own_since)))
    apart = (own != ev.value_tier) | (clocks_apart & (own != UNRATED_TIER))
    out: list[tuple[ValueTier, date | None] | None] = [None] * ev.n
    for i in np.flatnonzero(apart).tolist():
        d = float(own_since[i])
        out[i] = (VALUE_TIERS[own[i]], None if d != d else date.fromordinal(int(d)))
    return out


_Name = TypeVar("_Name", bound=str)


def _names(vocabulary: Sequence[_Name], codes: IntArray) -> list[_Name]:
    """Each code's name in ``vocabulary`` (one C-level map over the column)."""
    return list(map(vocabulary.__getitem__, codes.tolist()))


class Named(NamedTuple):
    """A batch's decided outputs as the decision holds them, one list per output, and the
    codes only the tasks read."""

    status: list[Status]
    value_tier: list[ValueTier]
    value_score: list[float | None]
    needs_tier: list[NeedsTier]
    credit_risk: list[RiskLevel]
    aml_risk: list[AmlRisk]
    ops_risk: list[RiskLevel]
    edd_required: list[bool]
    next_review: list[date]
    service_level: list[str]
    preferred_channel: list[Channel]
    below_floor_since: list[date | None]
    upgraded_from: list[ValueTier | None]
    open_complaints: list[int]
    detractor: list[bool]
    marketing_opt_out: list[bool]
    #: per customer, what its own data earns and that tier's clock where a tier override
    #: makes them differ from ``value_tier``/``below_floor_since``; else None
    qualified: list[tuple[ValueTier, date | None] | None]

    @classmethod
    def of(cls, ev: Evaluation, policy: Policy, as_of: date) -> Named:
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
            qualified=_qualified(ev),
        )

    def outcome(self, i: int, service_level: str, issues: list[dict[str, Any]]) -> strategy.Outcome:
        """Row ``i``'s ``strategy.Outcome`` (what the task rules read), from the columns:
        no decision dict is made for it."""
        return strategy.Outcome(
            value_tier=self.value_tier[i],
            value_score=self.value_score[i],
            needs_tier=self.needs_tier[i],
            credit_risk=self.credit_risk[i],
            aml_risk=self.aml_risk[i],
            ops_risk=self.ops_risk[i],
            edd_required=self.edd_required[i],
            next_review=self.next_review[i],
            service_level=service_level,
            status=self.status[i],
            upgraded_from=self.upgraded_from[i],
            open_complaints=self.open_complaints[i],
            detractor=self.detractor[i],
            dq_fields=tuple(sorted({issue["field"] for issue in issues})) if issues else (),
            marketing_opt_out=self.marketing_opt_out[i],
            preferred_channel=self.preferred_channel[i],
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
