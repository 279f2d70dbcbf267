"""The tiering engine: columns in, decisions out, in one implementation.

``evaluate`` decides a whole batch column-wise with numpy (every level, score, reason and
DQ mask: millions of customers per second). ``decide_columns`` then names the decisions
column by column (``decisions.decided``: a ``DecisionColumns``), from which one decision
per customer with its reasons, DQ issues and CRM actions is made when it is read: the
per-record step, needed only where a customer leaves the process (an output line, a
task). The sync plans tier-field writes from the columns (``sync.planning``). One
customer (the webhook path) is a batch of one through the same code; a golden fixture of
generated books (tests/core/test_core_golden.py) pins the decisions.

A decision is ``AssessmentData``: exactly the plain data an ``Assessment`` holds, keyed in
the model's field order. ``assess_batch``/``assess`` validate it into the public model
(tests, anything that hands an assessment on as a model); the sync layer plans CRM writes
from the plain data directly, and ``crmtier tier`` writes each line from the decision
columns (``tiering_core.lines``) without a decision a customer.

``as_of`` is always an input: the core never reads the clock, so an assessment can be
replayed for an examiner with the date it was made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import date
from typing import Any

import numpy as np

from tiering_core import decisions
from tiering_core.columns import (
    ENUM_INDEX,
    MISSING,
    BoolArray,
    Columns,
    FloatArray,
)
from tiering_core.models import (
    ACTION_KINDS,
    ActionKind,
    Assessment,
    AssessmentData,
    CustomerProfile,
)
from tiering_core.policy import Policy
from tiering_core.reasons import ReasonText
from tiering_core.rules import (
    aml,
    channel,
    consent,
    credit,
    feedback,
    household,
    needs,
    ops,
    override,
    quality,
    value,
)
from tiering_core.rules.base import (
    STATUSES,
    UNRATED_AML,
    UNRATED_RISK,
    UNRATED_TIER,
    IntArray,
    IssueColumn,
    ReasonColumn,
    gt,
)
from tiering_core.rules.household import HouseholdLinks
from tiering_core.rules.value import ValueOutcome


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
    preferred_channel: IntArray
    reasons: list[ReasonColumn]
    issues: list[IssueColumn]
    #: the value tier the customer's own data earns and its clock, hysteresis against the
    #: last such tier (``qualified``): ``value_tier`` and ``below_floor_since`` until a tier
    #: override applies (rules/override.py changes those two, never these)
    qualified_tier: IntArray
    qualified_below_floor_since: FloatArray
    #: each member's best household's tier (``unrated`` code: none); None when the batch
    #: came without household links, so a batch without them decides exactly as before
    household_tier: IntArray | None = None

    def head(self, n: int) -> Evaluation:
        """The first ``n`` rows: a batch decided beside the other members of its
        households (``crmtier simulate``) reports on its own rows only."""
        if n == self.n:
            return self

        def cut(x: Any) -> Any:
            return x[:n] if isinstance(x, np.ndarray) and x.ndim and len(x) == self.n else x

        rows = {f.name: cut(getattr(self, f.name)) for f in fields(self)}
        rows["reasons"] = [
            replace(
                r,
                mask=cut(r.mask),
                value=cut(r.value),
                threshold=cut(r.threshold),
                weight=cut(r.weight),
            )
            for r in self.reasons
        ]
        rows["issues"] = [replace(i, mask=cut(i.mask)) for i in self.issues]
        rows["n"] = n
        return Evaluation(**rows)


def evaluate(
    cols: Columns, policy: Policy, as_of: date, households: HouseholdLinks | None = None
) -> Evaluation:
    """All tiers for a batch, vectorised. No per-record Python work happens here.
    ``households``: the batch's household links (rules.household), when the CRM has any."""
    clean, issues, has_issue = quality.check(cols, policy)
    v = value.rate(clean, policy, as_of)
    household_tier = None
    if households is not None:
        household_tier = household.member_tiers(v, households, policy, cols.n)
        v = household.lift(v, clean, households, policy)
    own = qualified(v, clean, policy, as_of, households)
    needs_tier, needs_reasons = needs.rate(clean, policy, own.tier)
    credit_risk, credit_reasons = credit.rate(clean, policy)
    a = aml.rate(clean, policy)
    ops_risk, ops_reasons = ops.rate(clean, policy)
    fb = feedback.rate(clean, policy)
    opted_out, consent_reasons = consent.rate(clean)
    preferred_channel, channel_reasons = channel.rate(clean, policy, own.tier)

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
        preferred_channel=preferred_channel,
        reasons=[
            *v.reasons,
            *needs_reasons,
            *credit_reasons,
            *a.reasons,
            *ops_reasons,
            *fb.reasons,
            *consent_reasons,
            *(household.review(a.level, households, policy) if households is not None else ()),
            *channel_reasons,
        ],
        issues=issues,
        qualified_tier=own.tier,
        qualified_below_floor_since=own.below_floor_since,
        household_tier=household_tier,
    )


def qualified(
    v: ValueOutcome,
    cols: Columns,
    policy: Policy,
    as_of: date,
    households: HouseholdLinks | None,
) -> ValueOutcome:
    """The value outcome of what the customers' own data earns, which needs and channel
    follow: ``v`` itself unless some customer carries a previous qualified tier (an
    applied override, or the buffer and grace after one, made the written tier another),
    else the value rule again with hysteresis against that tier and its own clock. An
    override thus never moves needs or channel, on its first run or on any later one
    (docs/overrides.md); a batch without one decides exactly as before."""
    carried = cols.enum["previous_qualified_tier"]
    has = carried != MISSING
    if not has.any():
        return v
    enums = cols.enums.copy()
    written = ENUM_INDEX["previous_value_tier"]
    enums[written] = np.where(has, carried, enums[written])
    clock = cols.qualified_below_floor_since
    own = replace(
        cols,
        enums=enums,
        below_floor_since=np.where(has, np.nan if clock is None else clock, cols.below_floor_since),
    )
    q = value.rate(own, policy, as_of)
    return q if households is None else household.lift(q, own, households, policy)


def decide_columns(
    cols: Columns,
    policy: Policy,
    as_of: date,
    *,
    kinds: frozenset[ActionKind] = ACTION_KINDS,
    households: HouseholdLinks | None = None,
) -> Sequence[AssessmentData]:
    """Decide a batch laid out as columns (with its ids: ``Columns.from_cells``), as plain
    data, in input order; ``households``: its household links (rules.household).

    ``actions`` holds only the action ``kinds`` asked for: a sync that writes tier fields
    alone does not pay for ten campaign keys and the task rules of every customer (about
    a quarter of deciding). Everything else is the same whatever ``kinds`` is."""
    if not cols.n:
        return []
    evaluation = override.apply(evaluate(cols, policy, as_of, households), cols, policy, as_of)
    return decisions.decided(cols, evaluation, policy, as_of, kinds)


def decide_batch(
    profiles: Sequence[CustomerProfile],
    policy: Policy,
    as_of: date,
    *,
    kinds: frozenset[ActionKind] = ACTION_KINDS,
    households: HouseholdLinks | None = None,
) -> Sequence[AssessmentData]:
    """``decide_columns`` of validated profiles (a batch of one: the webhook path).
    ``households``: ``HouseholdLinks.build`` over these profiles' ids (rules.household)."""
    if not profiles:
        return []
    cols = Columns.from_profiles(profiles, policy)
    return decide_columns(cols, policy, as_of, kinds=kinds, households=households)


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
