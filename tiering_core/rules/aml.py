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

import numpy as np

from tiering_core.columns import CUSTOMER_KINDS, LEVELS, BoolArray, Columns, FloatArray
from tiering_core.policy import Policy
from tiering_core.rules.base import AML_LEVELS, UNRATED_AML, IntArray, ReasonColumn, ge, known

LOW, MEDIUM, HIGH = (AML_LEVELS.index(x) for x in ("low", "medium", "high"))
CORPORATE = CUSTOMER_KINDS.index("corporate")


@dataclass(frozen=True)
class AmlOutcome:
    level: IntArray
    score: FloatArray
    reasons: list[ReasonColumn]


@dataclass(frozen=True)
class _Factor:
    code: str
    group: str
    fires: BoolArray
    points: FloatArray | float
    value: FloatArray | None = None
    threshold: float | None = None
    profile_path: str | None = None


def rate(cols: Columns, policy: Policy) -> AmlOutcome:
    a = policy.aml
    pts, th = a.points, a.thresholds
    x = cols.number
    flag = {k: cols.flag[k] == 1 for k in ("pep", "sanctions_hit", "refused_cdd", "adverse_media")}
    strs = x["str_count_12m"]
    cash = x["cash_volume_90d"]
    cb_count, cb_volume = x["cross_border_count_90d"], x["cross_border_volume_90d"]
    industry = cols.enum["industry_risk"]
    cash_very_large = ge(cash, th.cash_very_large_from)
    call_for_action = cols.call_for_action > 0
    factors = (
        _Factor("AML_PEP", "customer", flag["pep"], pts.pep),
        _Factor("AML_ADVERSE_MEDIA", "customer", flag["adverse_media"], pts.adverse_media),
        _Factor("AML_STR", "customer", ge(strs, 1), np.nan_to_num(strs) * pts.str_each, strs),
        _Factor("AML_CORPORATE", "customer", cols.enum["kind"] == CORPORATE, pts.corporate),
        _Factor("AML_CALL_FOR_ACTION_COUNTRY", "geography", call_for_action,
                pts.call_for_action_country, profile_path="aml.high_risk_countries"),
        _Factor("AML_HIGH_RISK_COUNTRY", "geography", (cols.countries > 0) & ~call_for_action,
                pts.high_risk_country, profile_path="aml.high_risk_countries"),
        _Factor("AML_CASH_VERY_LARGE", "business", cash_very_large, pts.cash_very_large, cash,
                th.cash_very_large_from),
        _Factor("AML_CASH_LARGE", "business", ge(cash, th.cash_large_from) & ~cash_very_large,
                pts.cash_large, cash, th.cash_large_from),
        _Factor("AML_CROSS_BORDER_FREQUENT", "business", ge(cb_count, th.cross_border_count_from),
                pts.cross_border_frequent, cb_count, th.cross_border_count_from),
        _Factor("AML_CROSS_BORDER_LARGE", "business", ge(cb_volume, th.cross_border_volume_from),
                pts.cross_border_large, cb_volume, th.cross_border_volume_from),
        _Factor("AML_INDUSTRY_MEDIUM", "industry", industry == LEVELS.index("medium"),
                pts.industry_medium),
        _Factor("AML_INDUSTRY_HIGH", "industry", industry == LEVELS.index("high"),
                pts.industry_high),
    )
    weights = a.weights.model_dump()
    group_points = {g: np.zeros(cols.n) for g in weights}
    for f in factors:
        group_points[f.group] = group_points[f.group] + np.where(f.fires, f.points, 0.0)
    score = np.zeros(cols.n)
    for group, w in weights.items():
        score += w * np.minimum(group_points[group], 100.0) / 100.0
    score = np.round(score, 1)

    level = np.where(ge(score, a.high_from), HIGH, np.where(ge(score, a.medium_from), MEDIUM, LOW))
    o = a.overrides
    overrides = (
        ("AML_SANCTIONS", flag["sanctions_hit"], o.sanctions_hit, None, None),
        ("AML_PEP", flag["pep"], o.pep, None, None),
        ("AML_REFUSED_CDD", flag["refused_cdd"], o.refused_cdd, None, None),
        ("AML_STR_REPEATED", ge(strs, o.repeated_str_min), o.repeated_str, strs,
         float(o.repeated_str_min)),
    )
    reasons: list[ReasonColumn] = []
    overridden: set[str] = set()
    for code, fires, forced, value, threshold in overrides:
        if not forced:
            continue
        level = np.where(fires, np.maximum(level, AML_LEVELS.index(forced)), level)
        reasons.append(ReasonColumn(code, fires, value, threshold))
        overridden.add(code)
    for f in factors:
        if f.code in overridden:
            continue
        contribution = weights[f.group] * np.minimum(f.points, 100.0) / 10_000.0
        reasons.append(
            ReasonColumn(f.code, f.fires, f.value, f.threshold,
                         weight=np.broadcast_to(contribution, (cols.n,)).astype(np.float64),
                         profile_path=f.profile_path)
        )

    has_data = cols.block["aml"] & (
        (cols.flag["pep"] >= 0) | (cols.flag["sanctions_hit"] >= 0)
        | (cols.flag["refused_cdd"] >= 0) | (cols.flag["adverse_media"] >= 0)
        | known(strs) | known(cash) | known(cb_count) | known(cb_volume)
        | (industry >= 0) | known(cols.countries)
    )
    level = np.where(has_data, level, UNRATED_AML).astype(np.int8)
    cut = np.where(level >= HIGH, a.high_from, a.medium_from)
    reasons.append(ReasonColumn("AML_SCORE", has_data, score, cut))
    reasons.append(ReasonColumn("AML_NO_DATA", ~has_data, None, float(a.new_customer.working_days)))
    return AmlOutcome(level, np.where(has_data, score, np.nan), reasons)
