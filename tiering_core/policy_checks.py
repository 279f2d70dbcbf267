"""The checks a policy must pass beyond each key's own type and range: keys that must agree
with each other (tier floors in order, a score scale that fits its bands, the corporate
ladder) and the regulatory floors a bank may weaken only by naming a waiver.

Apart from tiering_core/policy.py so the model stays readable; ``parse_policy`` runs both
lists in one pass so an admin sees every problem at once.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

from tiering_core.models import CORPORATE_TIER_ORDER, LOAN_CLASSES, VALUE_TIER_ORDER

if TYPE_CHECKING:
    from tiering_core.policy import CreditPolicy, Policy

#: An ISO 4217 currency code (the policy's own currency and its exchange-rate keys).
CURRENCY = re.compile(r"^[A-Z]{3}$")
#: Words that would reveal an AML rating in a customer-facing campaign key (PBOC 保密原则).
_CONFIDENTIAL_WORDS = ("aml", "edd", "pep", "sanction", "launder", "risk", "str_", "suspicious")

#: Regulatory floors: what a policy may weaken only by naming the floor in
#: ``[regulatory.waivers]`` with a reason. Floor id -> what it keeps.
FLOORS: dict[str, str] = {
    "sanctions": "a sanctions hit is rated prohibited, goes to compliance due the same day, "
    "and ends every campaign and marketing",
    "pep": "a politically exposed person is rated at least high",
    "complaint_deadline": "every open complaint gets a task due within 15 days",
    "aml_review": "AML review cycles: high at most 6 months, each lower level at most twice "
    "the one above",
}
#: The audit trail's policy_version column holds this many characters.
VERSION_MAX_CHARS = 80


def _score_scale_problems(c: CreditPolicy) -> list[str]:
    """Score keys only with a named scale; a named scale with its range; cut-offs in order."""
    keys = {
        "score_min": c.score_min,
        "score_max": c.score_max,
        "high_score_below": c.high_score_below,
        "medium_score_below": c.medium_score_below,
    }
    if not c.score_scale.strip():
        return [
            f"credit.{k}: needs credit.score_scale (the name of the scale the score is on)"
            for k, v in keys.items()
            if v is not None
        ]
    if c.score_min is None or c.score_max is None:
        return [
            f"credit.{k}: required with credit.score_scale"
            for k in ("score_min", "score_max")
            if keys[k] is None
        ]
    if c.score_min >= c.score_max:
        return ["credit.score_min: must be < credit.score_max"]
    cuts = [v for v in (c.high_score_below, c.medium_score_below) if v is not None]
    if cuts != sorted(cuts) or any(not c.score_min <= v <= c.score_max for v in cuts):
        return [
            "credit.high_score_below: must satisfy score_min <= high_score_below"
            " <= medium_score_below <= score_max"
        ]
    return []


def consistency_problems(p: Policy) -> list[str]:
    """Rules that relate several keys: the ladders must be ordered, the cadences lawful."""
    out: list[str] = []
    tiers = {str(name): floor for name, floor in p.value.tiers.items()}
    ladder = [t for t in VALUE_TIER_ORDER if t != "mass"]
    for tier in ladder:
        if tier not in tiers:
            out.append(f"value.tiers.{tier}: required")
    for upper, lower in itertools.pairwise(ladder):
        if upper in tiers and lower in tiers and tiers[upper].aum_floor <= tiers[lower].aum_floor:
            out.append(f"value.tiers.{upper}.aum_floor: must be > value.tiers.{lower}.aum_floor")
    out += _corporate_ladder_problems(p)
    if p.value.score.aum_weight + p.value.score.revenue_weight + p.value.score.activity_weight <= 0:
        out.append("value.score: the component weights must not all be 0")
    c = p.credit
    for loan_class in LOAN_CLASSES:
        if loan_class not in c.loan_class:
            out.append(f"credit.loan_class.{loan_class}: required")
    out += _score_scale_problems(c)
    if (
        c.medium_dti_over is not None
        and c.high_dti_over is not None
        and c.medium_dti_over > c.high_dti_over
    ):
        out.append("credit.medium_dti_over: must be <= credit.high_dti_over")
    if c.medium_dpd_from > c.high_dpd_over:
        out.append("credit.medium_dpd_from: must be <= credit.high_dpd_over")
    a = p.aml
    if a.medium_from >= a.high_from:
        out.append("aml.medium_from: must be < aml.high_from")
    weights = a.weights
    total = weights.customer + weights.geography + weights.business + weights.industry
    if abs(total - 100) > 1e-9:
        out.append(f"aml.weights: must sum to 100 (they sum to {total:g})")
    if a.thresholds.cash_large_from > a.thresholds.cash_very_large_from:
        out.append("aml.thresholds.cash_large_from: must be <= aml.thresholds.cash_very_large_from")
    for i, code in enumerate(a.countries.call_for_action):
        if not re.fullmatch(r"[A-Z]{2}", code):
            out.append(f"aml.countries.call_for_action.{i}: must be an ISO 3166 alpha-2 code")
    o = p.ops
    if o.failed_medium_from > o.failed_high_from:
        out.append("ops.failed_medium_from: must be <= ops.failed_high_from")
    if o.tickets_medium_from > o.tickets_high_from:
        out.append("ops.tickets_medium_from: must be <= ops.tickets_high_from")
    f = p.feedback
    if not f.csat_min < f.csat_max:
        out.append("feedback.csat_min: must be < feedback.csat_max")
    if not f.csat_min <= f.detractor_csat_max <= f.csat_max:
        out.append("feedback.detractor_csat_max: must lie within [csat_min, csat_max]")
    if not f.nps_min < f.nps_max:
        out.append("feedback.nps_min: must be < feedback.nps_max")
    if not f.nps_min <= f.detractor_nps_max < f.nps_max:
        out.append("feedback.detractor_nps_max: must lie within [nps_min, nps_max)")
    for code, rate in p.fx.items():
        if not CURRENCY.match(code):
            out.append(f"fx.{code}: must be an ISO 4217 currency code")
        if not rate > 0:
            out.append(f"fx.{code}: must be > 0")
    for key in p.strategy.campaigns:
        if not re.fullmatch(r"[a-z0-9_]+", key):
            out.append(f"strategy.campaigns.{key}: keys are lower_snake_case")
        if any(word in key.lower() for word in _CONFIDENTIAL_WORDS):
            out.append(
                f"strategy.campaigns.{key}: campaign keys are customer-facing and must not"
                " reveal a risk rating"
            )
    return out


def _corporate_ladder_problems(p: Policy) -> list[str]:
    """Every corporate floor present, and each criterion's floors strictly decreasing."""
    out: list[str] = []
    tiers = {str(name): floor for name, floor in p.value.corporate.tiers.items()}
    ladder = [t for t in CORPORATE_TIER_ORDER if t != "corporate_small"]
    for tier in ladder:
        if tier not in tiers:
            out.append(f"value.corporate.tiers.{tier}: required")
    for upper, lower in itertools.pairwise(ladder):
        if upper not in tiers or lower not in tiers:
            continue
        for key in ("balance_floor", "credit_line_floor", "revenue_floor"):
            if getattr(tiers[upper], key) <= getattr(tiers[lower], key):
                out.append(
                    f"value.corporate.tiers.{upper}.{key}: must be >"
                    f" value.corporate.tiers.{lower}.{key}"
                )
    return out


def _floor_breaches(p: Policy) -> list[tuple[str, str]]:
    """(floor id, ``key: problem``) for every regulatory floor the policy weakens."""
    out: list[tuple[str, str]] = []
    o, risk, t = p.aml.overrides, p.strategy.risk, p.strategy.tasks
    if o.sanctions_hit != "prohibited":
        out.append(
            (
                "sanctions",
                'aml.overrides.sanctions_hit: must be "prohibited" (PBOC'
                " 银发〔2013〕2号: a listed customer goes straight to the highest level)",
            )
        )
    for key in ("no_marketing_aml", "no_campaigns_aml"):
        if "prohibited" not in getattr(risk, key):
            out.append(("sanctions", f'strategy.risk.{key}: must include "prohibited"'))
    s = t.sanctions_review
    if not s.enabled or s.due_days > 0 or s.priority != "high":
        out.append(
            (
                "sanctions",
                "strategy.tasks.sanctions_review: must be enabled, priority"
                ' "high" and due_days = 0 (FATF R.6: act without delay)',
            )
        )
    if o.pep not in ("high", "prohibited"):
        out.append(
            (
                "pep",
                'aml.overrides.pep: must be "high" or "prohibited" (FATF R.12:'
                " enhanced measures for every PEP)",
            )
        )
    c = t.complaint
    if not c.enabled or c.due_days > 15:
        out.append(
            (
                "complaint_deadline",
                "strategy.tasks.complaint.due_days: must be <= 15"
                " with the rule enabled (银行保险机构消费投诉处理管理办法, 2020)",
            )
        )
    r = p.aml.review_months
    if r.high > 6:
        out.append(("aml_review", "aml.review_months.high: must be <= 6 (PBOC 银发〔2013〕2号)"))
    if r.medium > 2 * r.high:
        out.append(
            ("aml_review", "aml.review_months.medium: must be <= 2 x aml.review_months.high")
        )
    if r.low > 2 * r.medium:
        out.append(("aml_review", "aml.review_months.low: must be <= 2 x aml.review_months.medium"))
    return out


def regulatory_problems(p: Policy) -> list[str]:
    """A weakened floor without a waiver, and every waiver that is not one with a reason."""
    waivers = p.regulatory.waivers
    breaches = _floor_breaches(p)
    out = [
        f"{problem}; a regulatory floor: weaken it only with [regulatory.waivers] {floor} ="
        ' "<reason>"'
        for floor, problem in breaches
        if not waivers.get(floor, "").strip()
    ]
    weakened = {floor for floor, _ in breaches}
    for floor, reason in waivers.items():
        if floor not in FLOORS:
            out.append(f"regulatory.waivers.{floor}: unknown floor (one of {', '.join(FLOORS)})")
        elif not reason.strip():
            out.append(f"regulatory.waivers.{floor}: needs the reason for the waiver")
        elif floor not in weakened:
            out.append(
                f"regulatory.waivers.{floor}: the policy keeps this floor; remove the waiver"
            )
    if len(p.version) > VERSION_MAX_CHARS:
        out.append(
            f"name: too long: the version {p.version!r} must fit {VERSION_MAX_CHARS}"
            " characters (the audit trail's column)"
        )
    return out
