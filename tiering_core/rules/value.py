"""Value tier and value score: how much the customer is worth to the bank.

AUM (deposits + investments + insurance, or the 3-month average when the CRM has it) sets
the tier against the policy's floors (private 600万, wealth 50万, affluent 5万 by default);
profitability can lift it one or more tiers when revenue reaches a tier's revenue floor and
AUM is at least a share of that tier's floor. Hysteresis: an upgrade applies at once, a
downgrade only after the customer has stayed below the old tier's floor minus the buffer for
the whole grace period (ICBC-style re-rating with a buffer, so a month-end dip does not
cost a customer their advisor). ``below_floor_since`` carries that clock between runs.

Corporates are rated on their own ladder (``rules.corporate``); the retail ladder's reasons
are not theirs, and hysteresis never compares tiers of the two ladders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from tiering_core.columns import NUMBER_INDEX, BoolArray, Columns, FloatArray
from tiering_core.policy import Policy
from tiering_core.rules import corporate
from tiering_core.rules.base import (
    FIRST_CORPORATE_TIER,
    UNRATED_TIER,
    VALUE_TIERS,
    IntArray,
    ReasonColumn,
    ge,
    known,
    le,
)

_ASSET_ROWS = [NUMBER_INDEX[n] for n in ("deposits", "investments", "insurance")]
_REVENUE_ROWS = [NUMBER_INDEX[n] for n in ("loan_interest", "product_fees", "service_fees")]
_ACTIVITY_ROWS = [NUMBER_INDEX[n] for n in ("transactions_90d", "digital_logins_90d")]
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
    point = _sum_known(cols.numbers[_ASSET_ROWS])
    if not policy.value.prefer_avg_3m:
        return point
    avg = cols.number["aum_avg_3m"]
    return np.where(known(avg), avg, point)


def revenue_of(cols: Columns) -> FloatArray:
    return _sum_known(cols.numbers[_REVENUE_ROWS])


def _aum_reasons(by_aum: IntArray, aum: FloatArray, floors: FloatArray) -> list[ReasonColumn]:
    """VAL_AUM_<tier> for the tier AUM alone gives."""
    return [
        ReasonColumn(
            f"VAL_AUM_{tier.upper()}",
            by_aum == code,
            aum,
            float(floors[min(code, len(RANKED) - 1)]),
        )
        for code, tier in enumerate(VALUE_TIERS[:4])
    ]


def _sum_known(parts: FloatArray) -> FloatArray:
    """Column sums over the known parts; NaN where no part is known (missing is not zero)."""
    present = known(parts)
    return np.where(present.any(axis=0), np.where(present, parts, 0.0).sum(axis=0), np.nan)


def rate(cols: Columns, policy: Policy, as_of: date) -> ValueOutcome:
    v = policy.value
    tiers = {str(name): t for name, t in v.tiers.items()}
    floors = np.array([tiers[t].aum_floor for t in RANKED])  # top down
    # mass, unrated and the corporate tiers have no AUM floor
    floor_by_code = np.append(floors, np.zeros(len(VALUE_TIERS) - len(RANKED)))
    aum = aum_of(cols, policy)
    revenue = revenue_of(cols)
    rated = known(aum)

    # floors are descending: the number of floors above AUM is the tier code (3 = mass)
    by_aum = (aum[None, :] < floors[:, None]).sum(axis=0).astype(np.int8)
    by_aum = np.where(rated, by_aum, UNRATED_TIER).astype(np.int8)
    reasons = _aum_reasons(by_aum, aum, floors)

    qualified = by_aum
    if v.lift.enabled:
        revenue_floors = np.array([[tiers[t].revenue_floor] for t in RANKED])
        eligible = (
            (by_aum[None, :] > np.arange(len(RANKED))[:, None])
            & rated
            & (revenue[None, :] >= revenue_floors)
            & (aum[None, :] >= floors[:, None] * v.lift.aum_share)
        )
        lifts = eligible.any(axis=0)
        target = np.argmax(eligible, axis=0).astype(np.int8)  # the highest tier reached
        qualified = np.where(lifts, target, by_aum).astype(np.int8)
        reasons += [
            ReasonColumn(
                "VAL_LIFT_PROFIT", lifts & (target == code), revenue, float(revenue_floors[code, 0])
            )
            for code in range(len(RANKED))
        ]
    corp = corporate.rate(cols, policy, aum, revenue)
    retail = ~corp.corporate
    for rc in reasons:
        rc.mask = rc.mask & retail
    qualified = np.where(corp.corporate, corp.tier, qualified).astype(np.int8)
    reasons += corp.reasons
    rated = qualified != UNRATED_TIER

    # no buffer band on the corporate ladder (three measures): a NaN never lies within it
    buffered = np.where(retail, aum, np.nan)
    h = _hysteresis(cols, v.buffer, v.grace_days, buffered, qualified, floor_by_code, as_of)
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
    reasons.append(
        ReasonColumn(
            "VAL_ACTIVE", ge(tx, e.active_transactions_from), tx, e.active_transactions_from
        )
    )
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
    same_ladder = (prev >= FIRST_CORPORATE_TIER) == (qualified >= FIRST_CORPORATE_TIER)
    has_prev = (prev >= 0) & rated & same_ladder
    if not has_prev.any():  # nobody to hold or upgrade: first assessments, most backfills
        none = np.zeros(cols.n, dtype=np.bool_)
        nan = np.full(cols.n, np.nan)
        since = np.where(rated, np.nan, cols.below_floor_since)
        return _Hysteresis(
            qualified,
            np.full(cols.n, -1, dtype=np.int8),
            since,
            floor_by_code[np.full(cols.n, UNRATED_TIER)],
            none,
            none,
            none,
            nan,
        )
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
    activity = np.vstack([cols.numbers[_ACTIVITY_ROWS], cols.products])
    caps = np.array([[s.transactions_cap], [s.logins_cap], [s.products_cap]])
    shares = np.minimum(activity / caps, 1.0)
    counted = known(shares)
    activity_share = np.where(counted, shares, 0.0).sum(axis=0) / np.maximum(counted.sum(axis=0), 1)
    components = np.vstack(
        [
            np.minimum(np.log1p(aum) / np.log1p(s.aum_cap), 1.0),
            np.minimum(np.log1p(revenue) / np.log1p(s.revenue_cap), 1.0),
            np.where(counted.any(axis=0), activity_share, np.nan),
        ]
    )
    weights = np.array([[s.aum_weight], [s.revenue_weight], [s.activity_weight]])
    present = known(components)
    total = np.where(present, components * weights, 0.0).sum(axis=0)
    weight = (present * weights).sum(axis=0)
    result = np.round(100.0 * total / np.maximum(weight, 1e-12), 1)
    return np.where(known(aum) & (weight > 0), result, np.nan)
