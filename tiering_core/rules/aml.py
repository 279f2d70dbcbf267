"""AML customer risk: PBOC 银发〔2013〕2号-style weighted factors plus overrides.

Four factor groups (customer, geography, business, industry) each score 0-100 from the
policy's points, capped; the weighted sum (weights sum to 100) gives the level by the
policy's cut-offs. Single facts force a minimum level whatever the score ("direct to
highest"): a sanctions hit makes the customer ``prohibited``; PEP, refused CDD and repeated
suspicious-transaction reports make them at least ``high``. High and prohibited require
enhanced due diligence. A customer with no AML data is ``unrated`` and must be rated within
the policy's working days. The level is confidential (保密原则): it never reaches
customer-facing text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tiering_core.columns import FLAG_INDEX, NUMBER_INDEX, BoolArray, Columns, FloatArray
from tiering_core.models import CUSTOMER_KINDS, LEVELS
from tiering_core.policy import Policy
from tiering_core.policy_aml import AmlOverrides
from tiering_core.rules.base import AML_LEVELS, UNRATED_AML, IntArray, ReasonColumn, ge, known

LOW, MEDIUM, HIGH = (AML_LEVELS.index(x) for x in ("low", "medium", "high"))
CORPORATE = CUSTOMER_KINDS.index("corporate")


@dataclass(frozen=True)
class AmlOutcome:
    level: IntArray
    score: FloatArray
    reasons: list[ReasonColumn]


@dataclass(slots=True)
class _Factor:
    code: str
    group: str
    fires: BoolArray
    points: float  # per occurrence: ``count`` (when given) multiplies it
    count: FloatArray | None = None
    value: FloatArray | None = None
    threshold: float | None = None
    profile_path: str | None = None


GROUPS = ("customer", "geography", "business", "industry")


def rate(cols: Columns, policy: Policy) -> AmlOutcome:
    a = policy.aml
    pts, th = a.points, a.thresholds
    x = cols.number
    flags = cols.flag
    pep, sanctions = flags["pep"] == 1, flags["sanctions_hit"] == 1
    refused, adverse = flags["refused_cdd"] == 1, flags["adverse_media"] == 1
    strs = x["str_count_12m"]
    cash = x["cash_volume_90d"]
    cb_count, cb_volume = x["cross_border_count_90d"], x["cross_border_volume_90d"]
    industry = cols.enum["industry_risk"]
    cash_very_large = ge(cash, th.cash_very_large_from)
    call_for_action = cols.call_for_action > 0
    path = "aml.high_risk_countries"
    factors = (
        _Factor("AML_PEP", "customer", pep, pts.pep),
        _Factor("AML_ADVERSE_MEDIA", "customer", adverse, pts.adverse_media),
        _Factor("AML_STR", "customer", ge(strs, 1), pts.str_each, count=strs, value=strs),
        _Factor("AML_CORPORATE", "customer", cols.enum["kind"] == CORPORATE, pts.corporate),
        _Factor(
            "AML_CALL_FOR_ACTION_COUNTRY",
            "geography",
            call_for_action,
            pts.call_for_action_country,
            profile_path=path,
        ),
        _Factor(
            "AML_HIGH_RISK_COUNTRY",
            "geography",
            (cols.countries > 0) & ~call_for_action,
            pts.high_risk_country,
            profile_path=path,
        ),
        _Factor(
            "AML_CASH_VERY_LARGE",
            "business",
            cash_very_large,
            pts.cash_very_large,
            value=cash,
            threshold=th.cash_very_large_from,
        ),
        _Factor(
            "AML_CASH_LARGE",
            "business",
            ge(cash, th.cash_large_from) & ~cash_very_large,
            pts.cash_large,
            value=cash,
            threshold=th.cash_large_from,
        ),
        _Factor(
            "AML_CROSS_BORDER_FREQUENT",
            "business",
            ge(cb_count, th.cross_border_count_from),
            pts.cross_border_frequent,
            value=cb_count,
            threshold=th.cross_border_count_from,
        ),
        _Factor(
            "AML_CROSS_BORDER_LARGE",
            "business",
            ge(cb_volume, th.cross_border_volume_from),
            pts.cross_border_large,
            value=cb_volume,
            threshold=th.cross_border_volume_from,
        ),
        _Factor(
            "AML_INDUSTRY_MEDIUM",
            "industry",
            industry == LEVELS.index("medium"),
            pts.industry_medium,
        ),
        _Factor(
            "AML_INDUSTRY_HIGH", "industry", industry == LEVELS.index("high"), pts.industry_high
        ),
    )
    # points per group (a group is capped at 100), weighted by the group's share of 100
    group_points = {g: np.zeros(cols.n) for g in GROUPS}
    for f in factors:
        if f.count is None:
            group_points[f.group] += f.fires * f.points
        else:
            group_points[f.group] += np.where(f.fires, f.count, 0.0) * f.points
    score = np.zeros(cols.n)
    for g in GROUPS:
        score += np.minimum(group_points[g], 100.0) * (getattr(a.weights, g) / 100.0)
    score = np.round(score, 1)

    level = np.where(ge(score, a.high_from), HIGH, np.where(ge(score, a.medium_from), MEDIUM, LOW))
    o = a.overrides
    reasons: list[ReasonColumn] = []
    overridden: set[str] = set()
    for code, fires, forced, value, threshold in _overrides(
        o, sanctions, pep, refused, ge(strs, o.repeated_str_min), strs
    ):
        if not forced:
            continue
        level = np.where(fires, np.maximum(level, AML_LEVELS.index(forced)), level)
        reasons.append(ReasonColumn(code, fires, value, threshold))
        overridden.add(code)
    for f in factors:
        if f.code not in overridden:
            weight = getattr(a.weights, f.group) * min(f.points, 100.0) / 10_000.0
            reasons.append(
                ReasonColumn(
                    f.code,
                    f.fires,
                    f.value,
                    f.threshold,
                    weight=weight,
                    profile_path=f.profile_path,
                )
            )

    has_data = cols.block["aml"] & (
        (cols.flags[[FLAG_INDEX[k] for k in _FACTS]] >= 0).any(axis=0)
        | known(cols.numbers[[NUMBER_INDEX[k] for k in _AMOUNTS]]).any(axis=0)
        | (industry >= 0)
        | known(cols.countries)
    )
    level = np.where(has_data, level, UNRATED_AML).astype(np.int8)
    cut = np.where(level >= HIGH, a.high_from, a.medium_from)
    reasons.append(ReasonColumn("AML_SCORE", has_data, score, cut))
    reasons.append(ReasonColumn("AML_NO_DATA", ~has_data, None, float(a.new_customer.working_days)))
    return AmlOutcome(level, np.where(has_data, score, np.nan), reasons)


def _overrides(
    o: AmlOverrides, sanctions: Any, pep: Any, refused: Any, repeated: Any, strs: Any
) -> tuple[tuple[str, Any, str, Any, float | None], ...]:
    """(code, fires, forced level, observed, threshold) of each override, in order."""
    return (
        ("AML_SANCTIONS", sanctions, o.sanctions_hit, None, None),
        ("AML_PEP", pep, o.pep, None, None),
        ("AML_REFUSED_CDD", refused, o.refused_cdd, None, None),
        ("AML_STR_REPEATED", repeated, o.repeated_str, strs, float(o.repeated_str_min)),
    )


_FACTS = ("pep", "sanctions_hit", "refused_cdd", "adverse_media")
_AMOUNTS = ("str_count_12m", "cash_volume_90d", "cross_border_count_90d", "cross_border_volume_90d")
