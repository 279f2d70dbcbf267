"""Value tier and value score: how much the customer is worth to the bank.

AUM (deposits + investments + insurance, or the 3-month average when the CRM has it) sets
the tier against the policy's floors (private 600万, wealth 50万, affluent 5万 by default);
profitability can lift it one or more tiers when revenue reaches a tier's revenue floor and
AUM is at least a share of that tier's floor. Hysteresis: an upgrade applies at once, a
downgrade only after the customer has stayed below the old tier's floor minus the buffer for
the whole grace period (ICBC-style re-rating with a buffer, so a month-end dip does not
cost a customer their advisor). ``below_floor_since`` carries that clock between runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from tiering_core.columns import BoolArray, Columns, FloatArray
from tiering_core.policy import Policy
from tiering_core.rules.base import (
    UNRATED_TIER,
    VALUE_TIERS,
    IntArray,
    ReasonColumn,
    ge,
    known,
    le,
)

RANKED = VALUE_TIERS[:3]  # the tiers with floors, top down (mass is everything below)
MASS = VALUE_TIERS.index("mass")


@dataclass(frozen=True)
class ValueOutcome:
    tier: IntArray
    score: FloatArray  # NaN where unrated
    aum: FloatArray
    upgraded_from: IntArray  # previous tier code where this run upgraded, else -1
    below_floor_since: FloatArray  # date ordinal, NaN when not below
    reasons: list[ReasonColumn]


def aum_of(cols: Columns, policy: Policy) -> FloatArray:
    """Assets under management in the policy currency; NaN when no usable figure exists."""
    x = cols.number
    parts = np.stack([x["deposits"], x["investments"], x["insurance"]])
    any_part = known(parts).any(axis=0)
    point = np.where(any_part, np.nansum(parts, axis=0), np.nan)
    if not policy.value.prefer_avg_3m:
        return point
    avg = x["aum_avg_3m"]
    return np.where(known(avg), avg, point)


def revenue_of(cols: Columns) -> FloatArray:
    x = cols.number
    parts = np.stack([x["loan_interest"], x["product_fees"], x["service_fees"]])
    return np.where(known(parts).any(axis=0), np.nansum(parts, axis=0), np.nan)


def rate(cols: Columns, policy: Policy, as_of: date) -> ValueOutcome:
    v = policy.value
    floors = policy.tier_floors()
    floor_by_code = np.array([floors.get(t, 0.0) for t in VALUE_TIERS[:4]] + [0.0])
    aum = aum_of(cols, policy)
    revenue = revenue_of(cols)
    rated = known(aum)
    reasons: list[ReasonColumn] = []

    by_aum = np.full(cols.n, MASS, dtype=np.int8)
    for code in reversed(range(len(RANKED))):
        by_aum[ge(aum, floors[RANKED[code]])] = code
    by_aum[~rated] = UNRATED_TIER
    for code, tier in enumerate(VALUE_TIERS[:4]):
        threshold = floors[tier] if tier != "mass" else floors["affluent"]
        reasons.append(
            ReasonColumn(f"VAL_AUM_{tier.upper()}", by_aum == code, aum, threshold)
        )

    qualified = by_aum.copy()
    if v.lift.enabled:
        tiers = {str(name): floor for name, floor in v.tiers.items()}
        lifted = np.zeros(cols.n, dtype=np.bool_)
        for code, name in enumerate(RANKED):  # top down: the highest tier reached wins
            lift = (
                rated
                & ~lifted
                & (by_aum > code)
                & ge(revenue, tiers[name].revenue_floor)
                & ge(aum, tiers[name].aum_floor * v.lift.aum_share)
            )
            reasons.append(ReasonColumn("VAL_LIFT_PROFIT", lift, revenue,
                                        tiers[name].revenue_floor))
            qualified[lift] = code
            lifted |= lift

    h = _hysteresis(cols, v.buffer, v.grace_days, aum, qualified, floor_by_code, as_of)
    reasons += [
        ReasonColumn("VAL_UPGRADE", h.upgraded_from >= 0, h.upgraded_from, labels=VALUE_TIERS),
        ReasonColumn("VAL_HELD_BUFFER", h.in_buffer, aum, h.prev_floor),
        ReasonColumn("VAL_HELD_GRACE", h.held_grace, h.days_below, float(v.grace_days)),
        ReasonColumn("VAL_DOWNGRADE", h.downgraded, h.days_below, float(v.grace_days)),
        ReasonColumn("VAL_NO_AUM", ~rated),
    ]
    tx = cols.number["transactions_90d"]
    logins = cols.number["digital_logins_90d"]
    e = v.engagement
    reasons.append(ReasonColumn("VAL_ACTIVE", ge(tx, e.active_transactions_from), tx,
                                e.active_transactions_from))
    dormant = le(tx, e.dormant_transactions_max) & le(logins, e.dormant_transactions_max)
    reasons.append(ReasonColumn("VAL_DORMANT", dormant))
    return ValueOutcome(
        h.tier, score(cols, policy, aum, revenue), aum, h.upgraded_from, h.since, reasons
    )


@dataclass(frozen=True)
class _Hysteresis:
    tier: IntArray
    upgraded_from: IntArray
    since: FloatArray
    prev_floor: FloatArray
    in_buffer: BoolArray
    held_grace: BoolArray
    downgraded: BoolArray
    days_below: FloatArray


def _hysteresis(
    cols: Columns,
    buffer: float,
    grace_days: int,
    aum: FloatArray,
    qualified: IntArray,
    floor_by_code: FloatArray,
    as_of: date,
) -> _Hysteresis:
    prev = cols.enum["previous_value_tier"]
    rated = qualified != UNRATED_TIER
    has_prev = (prev >= 0) & rated
    upgraded_from = np.where(has_prev & (qualified < prev), prev, -1).astype(np.int8)
    falling = has_prev & (qualified > prev)
    prev_floor = floor_by_code[np.where(prev >= 0, prev, UNRATED_TIER)]
    in_buffer = falling & ge(aum, prev_floor * (1.0 - buffer))
    below = falling & ~in_buffer
    today = float(as_of.toordinal())
    started = np.where(
        np.isnan(cols.below_floor_since), today, np.minimum(cols.below_floor_since, today)
    )
    days_below = np.where(below, today - started, np.nan)
    downgraded = below & ge(days_below, grace_days)
    held_grace = below & ~downgraded
    tier = np.where(in_buffer | held_grace, prev, qualified).astype(np.int8)
    # The clock runs only while below the buffer; unrated keeps the old clock untouched.
    since = np.where(held_grace, started, np.where(rated, np.nan, cols.below_floor_since))
    return _Hysteresis(
        tier, upgraded_from, since, prev_floor, in_buffer, held_grace, downgraded, days_below
    )


def score(cols: Columns, policy: Policy, aum: FloatArray, revenue: FloatArray) -> FloatArray:
    """0-100: AUM and revenue on a log scale, activity linear, each capped; a component
    without data is left out and the others re-weighted (missing is not zero)."""
    s = policy.value.score
    x = cols.number
    activity_parts = np.stack([
        np.minimum(x["transactions_90d"] / s.transactions_cap, 1.0),
        np.minimum(x["digital_logins_90d"] / s.logins_cap, 1.0),
        np.minimum(cols.products / s.products_cap, 1.0),
    ])
    activity_known = known(activity_parts)
    activity = np.where(
        activity_known.any(axis=0),
        np.nansum(activity_parts, axis=0) / np.maximum(activity_known.sum(axis=0), 1),
        np.nan,
    )
    components = (
        (s.aum_weight, _log_share(aum, s.aum_cap)),
        (s.revenue_weight, _log_share(revenue, s.revenue_cap)),
        (s.activity_weight, activity),
    )
    total = np.zeros(cols.n)
    weight = np.zeros(cols.n)
    for w, c in components:
        present = known(c)
        total += np.where(present, w * c, 0.0)
        weight += np.where(present, w, 0.0)
    result = np.round(100.0 * total / np.maximum(weight, 1e-12), 1)
    return np.where(known(aum) & (weight > 0), result, np.nan)


def _log_share(x: FloatArray, cap: float) -> FloatArray:
    return np.minimum(np.log1p(x) / np.log1p(cap), 1.0)
