"""Why a customer has its tiers: the content of ``crmtier explain``.

A customer may ask a bank to explain a decision made by automated means (PIPL Art. 24),
and an examiner asks the same of any tier. The explanation is rebuilt from what the
decision rested on: the inputs the sync stored when it assessed the customer
(``sync.inputs``), the committed state that fed hysteresis, and the active policy, decided
again by the same engine and planned by the same planner the sync uses. With households
on, the customer is decided beside the other members of its households as the store
recorded them (``sync.household_store``); the ``HOUSEHOLD_AUM`` reason names the
household, never another member's amounts. Nothing here re-implements a rule: each fired
rule is the engine's own reason with its threshold; a policy key is looked up for it in
``POLICY_KEYS``.

Restricted parts (the AML rating, AML reasons and inputs, the EDD task) are left out
unless asked for, as every listing does (``sync.disclosure``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from connectors.mapping import FieldMapping, WritebackConfig
from sync.disclosure import Disclosure
from sync.explanation import EXPLANATION, explanation_text
from sync.inputs import StoredCustomer
from sync.planner import Known, plan_customer, tiers_of
from tiering_core.engine import decide, decide_batch
from tiering_core.models import Previous
from tiering_core.policy import Policy
from tiering_core.rules.household import HouseholdLinks, Link

#: reason code (or code prefix ending in ``_``) -> the policy key its threshold comes from
POLICY_KEYS: dict[str, str] = {
    "VAL_AUM_PRIVATE": "value.tiers.private.aum_floor",
    "VAL_AUM_WEALTH": "value.tiers.wealth.aum_floor",
    "VAL_AUM_AFFLUENT": "value.tiers.affluent.aum_floor",
    "VAL_AUM_MASS": "value.tiers.affluent.aum_floor",
    "VAL_LIFT_PROFIT": "value.tiers.<tier>.revenue_floor, value.lift.aum_share",
    "VAL_HELD_BUFFER": "value.buffer",
    "VAL_HELD_GRACE": "value.grace_days",
    "VAL_DOWNGRADE": "value.grace_days",
    "VAL_UPGRADE": "value.tiers",
    "VAL_NO_AUM": "value.prefer_avg_3m",
    "VAL_ACTIVE": "value.engagement.active_transactions_from",
    "VAL_DORMANT": "value.engagement.dormant_transactions_max",
    "VAL_CORP_BALANCE": "value.corporate.tiers.<tier>.balance_floor",
    "VAL_CORP_CREDIT_LINE": "value.corporate.tiers.<tier>.credit_line_floor",
    "VAL_CORP_REVENUE": "value.corporate.tiers.<tier>.revenue_floor",
    "VAL_CORP_SMALL": "value.corporate.tiers.corporate_standard",
    "CONSENT_NO_MARKETING": "strategy.tasks.<rule>.marketing, strategy.campaigns.<key>.marketing",
    "MANUAL_OVERRIDE": "overrides.lift, overrides.max_days",
    "MANUAL_OVERRIDE_SERVICE": "overrides.lift, overrides.max_days",
    "OVERRIDE_REFUSED": "overrides",
    "NEED_TIER": "needs.professional_tiers, needs.advanced_tiers",
    "NEED_INVESTMENT_PRODUCTS": "needs.advanced_products",
    "NEED_BASIC": "needs.advanced_products",
    "NEED_": "needs",
    "CRD_LOAN_CLASS_": "credit.loan_class",
    "CRD_DPD_SEVERE": "credit.high_dpd_over",
    "CRD_DPD": "credit.medium_dpd_from",
    "CRD_SCORE_LOW": "credit.high_score_below",
    "CRD_SCORE_FAIR": "credit.medium_score_below",
    "CRD_DTI_HIGH": "credit.high_dti_over",
    "CRD_DTI_ELEVATED": "credit.medium_dti_over",
    "CRD_": "credit",
    "AML_SANCTIONS": "aml.overrides.sanctions_hit",
    "AML_PEP": "aml.overrides.pep, aml.points.pep",
    "AML_REFUSED_CDD": "aml.overrides.refused_cdd",
    "AML_STR_REPEATED": "aml.overrides.repeated_str_min",
    "AML_STR": "aml.points.str_each",
    "AML_ADVERSE_MEDIA": "aml.points.adverse_media",
    "AML_CORPORATE": "aml.points.corporate",
    "AML_HIGH_RISK_COUNTRY": "aml.points.high_risk_country",
    "AML_CALL_FOR_ACTION_COUNTRY": "aml.countries.call_for_action",
    "AML_CASH_LARGE": "aml.thresholds.cash_large_from",
    "AML_CASH_VERY_LARGE": "aml.thresholds.cash_very_large_from",
    "AML_CROSS_BORDER_FREQUENT": "aml.thresholds.cross_border_count_from",
    "AML_CROSS_BORDER_LARGE": "aml.thresholds.cross_border_volume_from",
    "AML_INDUSTRY_": "aml.points.industry_medium, aml.points.industry_high",
    "AML_SCORE": "aml.medium_from, aml.high_from, aml.weights",
    "AML_NO_DATA": "aml.new_customer.working_days",
    "OPS_FRAUD_VICTIM": "ops.fraud_victim_level",
    "OPS_KYC_EXPIRED": "ops.kyc_expired_level",
    "OPS_FAILED_HIGH": "ops.failed_high_from",
    "OPS_FAILED": "ops.failed_medium_from",
    "OPS_TICKETS_HIGH": "ops.tickets_high_from",
    "OPS_TICKETS": "ops.tickets_medium_from",
    "OPS_": "ops",
    "FB_OPEN_COMPLAINT": "strategy.tasks.complaint",
    "FB_DETRACTOR_NPS": "feedback.detractor_nps_max",
    "FB_LOW_CSAT": "feedback.detractor_csat_max",
    "CH_RM_VISIT_TIER": "channel.rm_visit_tiers",
    "CH_DIGITAL_ACTIVE": "channel.digital_logins_min, channel.digital_share_min",
    "CH_BRANCH_ACTIVE": "channel.branch_transactions_min",
    "CH_PHONE_TIER": "channel.phone_tiers",
    "CH_SELF_SERVICE": "channel.phone_tiers",
}

#: when a task rule fires (strategy.tasks.<rule>), in both languages
TASK_WHEN: dict[str, tuple[str, str]] = {
    "sanctions_review": ("a sanctions screening hit", "制裁名单命中"),
    "edd_review": (
        "AML risk high or prohibited (no sanctions hit)",
        "反洗钱风险为高或禁止（无制裁命中）",
    ),
    "credit_limit_review": ("credit risk high", "信用风险为高"),
    "complaint": ("an open complaint", "有未结投诉"),
    "upgrade_call": (
        "the value tier went up, and AML risk allows marketing",
        "价值等级上调，且反洗钱风险允许营销",
    ),
    "dedicated_advisor": (
        "a tier the rule names, no owner, AML risk allows marketing",
        "规则所列等级、无客户经理，且反洗钱风险允许营销",
    ),
    "corporate_banking": (
        "a corporate customer, AML risk allows marketing",
        "对公客户，且反洗钱风险允许营销",
    ),
    "investment_advisory": (
        "professional needs (not corporate), AML risk allows marketing",
        "专业需求（非对公），且反洗钱风险允许营销",
    ),
    "service_recovery": (
        "detractor feedback, no sanctions hit, AML not prohibited",
        "贬损反馈，无制裁命中，反洗钱风险非禁止",
    ),
    "data_remediation": ("a data-quality issue", "存在数据质量问题"),
}

LABELS: dict[str, tuple[str, str]] = {
    "customer": ("Customer", "客户"),
    "policy": ("Policy version", "策略版本"),
    "crm_explanation": ("Explanation in the CRM", "CRM 中的说明"),
    "as_of": ("Assessed as of", "评估日期"),
    "tiers": ("Tiers", "分层结果"),
    "households": ("Households (role)", "所属家庭（角色）"),
    "inputs": ("Inputs used", "所用输入"),
    "rules": ("Rules that fired", "触发的规则"),
    "hysteresis": ("Hysteresis state", "防抖状态"),
    "tasks": ("Tasks", "任务"),
    "campaigns": ("Campaigns", "营销活动"),
    "created": ("would be created by the next sync", "下次同步将创建"),
    "made": ("already made by crmtier", "crmtier 已创建"),
    "not_written": (
        "not written back (write-back switches tasks off)",
        "未回写（回写配置关闭任务）",
    ),
    "not_fired": ("not created: fires on {when}", "未创建：触发条件为{when}"),
    "disabled": (
        "not created: the rule is switched off in the policy",
        "未创建：策略中已关闭此规则",
    ),
    "member": ("member", "成员"),
    # worded without the reason: why sales work is withdrawn is restricted (AML)
    "closes": (
        "the open task crmtier made is withdrawn by the next sync",
        "crmtier 已创建的未完成任务将在下次同步撤回",
    ),
    "joins": ("joins at the next sync", "下次同步加入"),
    "leaves": ("leaves at the next sync", "下次同步移出"),
    "not_member": ("not a member: {why}", "非成员：{why}"),
    "not_mapped": ("not mapped in [writeback.campaigns]", "未在 [writeback.campaigns] 中映射"),
    "stored_differs": (
        "the committed tiers differ from this decision: the customer was last assessed "
        "under another policy or day; the next sync writes the tiers shown here",
        "已提交的分层与本次决定不同：上次评估使用了其他策略或日期；下次同步将写入此处结果",
    ),
}


def label(key: str, lang: str, **values: str) -> str:
    en, zh = LABELS[key]
    return (zh if lang == "zh" else en).format(**values)


def policy_key(code: str) -> str | None:
    if code in POLICY_KEYS:
        return POLICY_KEYS[code]
    prefixes = [p for p in POLICY_KEYS if p.endswith("_") and code.startswith(p)]
    return POLICY_KEYS[max(prefixes, key=len)] if prefixes else None


@dataclass(frozen=True)
class Beside:
    """The other members of the customer's households and the links among them, as the
    state store recorded them (``sync.household_store``): what deciding the customer as
    the sync does needs. Their inputs only feed the household's sum; the explanation
    names the household, never another member or its amounts."""

    members: list[StoredCustomer] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)


@dataclass(frozen=True)
class ExplainContext:
    policy: Policy
    mapping: FieldMapping
    writeback: WritebackConfig
    disclosure: Disclosure
    lang: str


def _leaves(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        out: list[tuple[str, Any]] = []
        for key, value in node.items():
            out += _leaves(value, f"{prefix}{key}.")
        return out
    return [(prefix[:-1], node)]


def _restricted_path(path: str) -> bool:
    return path.startswith("aml.")


def _decide(stored: StoredCustomer, beside: Beside, policy: Policy, as_of: date) -> Any:
    """The customer's decision, beside its households' other members when the policy
    reads households (as the sync decides it), alone otherwise."""
    if not policy.households.enabled:
        return decide(stored.assessed(), policy, as_of)
    batch = [stored, *(m for m in beside.members if m.customer_id != stored.customer_id)]
    links = HouseholdLinks.build([c.customer_id for c in batch], beside.links, policy)
    return decide_batch([c.assessed() for c in batch], policy, as_of, households=links)[0]


def explain(
    stored: StoredCustomer,
    known: Known,
    ctx: ExplainContext,
    as_of: date,
    beside: Beside | None = None,
) -> dict[str, Any]:
    """The explanation as JSON-ready data, restricted parts left out unless disclosed.
    ``beside``: the customer's households (none: it is in none, or households are off)."""
    d = ctx.disclosure
    beside = beside or Beside()
    assessment = _decide(stored, beside, ctx.policy, as_of)
    plan = plan_customer(assessment, stored.crm_values(), known, ctx.writeback)
    crm_field = {path: f for path, f in ctx.mapping.fields.items()}
    inputs = [
        {"input": path, "value": value, "crm_field": crm_field.get(path)}
        for path, value in _leaves(stored.profile.model_dump(mode="json", exclude_none=True))
        if path != "id" and (d.show or not _restricted_path(path))
    ]
    rules = [
        {
            "code": r["code"],
            "dimension": r["dimension"],
            "factor": r["factor"],
            "value": r["value"],
            "threshold": r["threshold"],
            "policy_key": policy_key(r["code"]),
            "text": dict(r["text"])[ctx.lang if ctx.lang in ("en", "zh") else "en"],
        }
        for r in assessment["reasons"]
        if d.show or r["dimension"] != "aml"
    ]
    tiers = d.mapping(tiers_of(assessment))
    committed = d.mapping(dict(stored.state.tiers or {}))
    out: dict[str, Any] = {
        "customer": {"crm_id": stored.customer_id, "pseudonym": stored.pseudonym},
        "policy_version": assessment["policy_version"],
        "as_of": as_of.isoformat(),
        "tiers": tiers,
        "service_level": d.value("service_level", assessment["service_level"]),
        "committed_tiers": committed,
        "inputs": inputs,
        "rules": rules,
        "hysteresis": _hysteresis(stored, assessment, ctx.policy, as_of),
        "tasks": _tasks(assessment, plan, known, ctx),
        "campaigns": _campaigns(assessment, plan, stored.profile.kind, ctx),
        "restricted_shown": d.show,
    }
    if ctx.policy.households.enabled:  # its own memberships: no other member is named
        out["households"] = [
            {"household": lk.household_id, "role": lk.role}
            for lk in beside.links
            if lk.customer_id == stored.customer_id
        ]
    if EXPLANATION in ctx.writeback.fields:  # what the sync writes to that CRM field
        out["crm_explanation"] = d.value(EXPLANATION, explanation_text(assessment, ctx.writeback))
    if committed and committed != {k: tiers.get(k) for k in committed}:
        out["note"] = label("stored_differs", ctx.lang)
    return out


def _hysteresis(
    stored: StoredCustomer, assessment: Any, policy: Policy, as_of: date
) -> dict[str, Any]:
    previous = stored.state.previous()
    below = assessment["below_floor_since"]
    grace = policy.value.grace_days
    return {
        "previous_value_tier": previous.value_tier if previous else None,
        "previous_assessed_at": (
            previous.assessed_at.isoformat() if previous and previous.assessed_at else None
        ),
        "below_floor_since": below.isoformat() if below else None,
        "downgrade_due": _due(below, grace),
        **_qualified(previous, assessment, grace),
        "buffer": policy.value.buffer,
        "grace_days": grace,
    }


def _qualified(previous: Previous | None, assessment: Any, grace: int) -> dict[str, Any]:
    """What the customer's own data earns, where a tier override keeps it apart from the
    value tier (docs/overrides.md, "What an override changes"): the tier an examiner asks
    for ("what would the customer be without the override"), which needs and channel
    follow, with its own downgrade clock. Nothing where neither the committed state nor
    this decision keeps one apart; where only the committed state does, the two agree
    again from this decision on (the value tier's clock is the qualified one's)."""
    carried = previous.qualified_value_tier if previous else None
    if carried is None and "qualified_value_tier" not in assessment:
        return {}
    if "qualified_value_tier" in assessment:
        tier, since = assessment["qualified_value_tier"], assessment["qualified_below_floor_since"]
    else:
        tier, since = assessment["value_tier"], assessment["below_floor_since"]
    return {
        "previous_qualified_tier": carried,
        "qualified_value_tier": tier,
        "qualified_below_floor_since": since.isoformat() if since else None,
        "qualified_downgrade_due": _due(since, grace),
    }


def _due(since: date | None, grace: int) -> str | None:
    """The day a downgrade falls due on a clock started ``since`` (None: no clock)."""
    return (since + timedelta(days=grace)).isoformat() if since else None


def _tasks(assessment: Any, plan: Any, known: Known, ctx: ExplainContext) -> list[dict[str, Any]]:
    lang, d = ctx.lang, ctx.disclosure
    fired = {a["rule"]: a for a in assessment["actions"] if a["kind"] == "task"}
    planned = {t.dedupe_key for t in plan.tasks}
    closing = {c.rule for c in plan.closures}
    rules = ctx.policy.strategy.tasks.model_dump()
    out = []
    for rule in sorted(rules):
        if d.hides_rule(rule):
            continue
        action = fired.get(rule)
        if action is None:
            when = TASK_WHEN.get(rule, (rule, rule))[1 if lang == "zh" else 0]
            status = "disabled" if not rules[rule].get("enabled", True) else "not_fired"
            why = label(status, lang, when=when)
        elif not ctx.writeback.tasks:
            why = label("not_written", lang)
        elif action["dedupe_key"] in planned:
            why = label("created", lang)
        elif action["dedupe_key"] in known.tasks:
            why = label("made", lang)
        else:
            why = label("not_written", lang)
        if rule in closing:
            why = label("closes", lang)
        out.append(
            {
                "rule": rule,
                "policy_key": f"strategy.tasks.{rule}",
                "fired": action is not None,
                "why": why,
            }
        )
    return out


def _campaigns(
    assessment: Any, plan: Any, kind: str | None, ctx: ExplainContext
) -> list[dict[str, Any]]:
    lang = ctx.lang
    changes = {m.campaign: m.member for m in plan.memberships}
    out = []
    for action in assessment["actions"]:
        if action["kind"] != "campaign":
            continue
        key = action["campaign"]
        c = ctx.policy.strategy.campaigns[key]
        if key not in ctx.writeback.campaigns:
            why = label("not_mapped", lang)
        elif key in changes:
            why = label("joins" if changes[key] else "leaves", lang)
        elif action["member"]:
            why = label("member", lang)
        else:
            why = label("not_member", lang, why="; ".join(_unmet(c, kind, assessment, ctx)))
        out.append(
            {
                "campaign": key,
                "policy_key": f"strategy.campaigns.{key}",
                "member": bool(action["member"]),
                "why": why,
            }
        )
    return out


def _unmet(c: Any, kind: str | None, assessment: Any, ctx: ExplainContext) -> list[str]:
    """Each campaign criterion the customer misses, and each risk rule that keeps it out
    (an AML one named only when restricted values are shown)."""
    risk = ctx.policy.strategy.risk
    out = [
        f"{name} {value} not in {list(allowed)}"
        for name, value, allowed in (
            ("value tier", assessment["value_tier"], c.tiers),
            ("needs", assessment["needs_tier"], c.needs),
            ("kind", kind, c.kinds),
            ("credit risk", assessment["credit_risk"], c.credit),
        )
        if allowed and value not in allowed
    ]
    aml = assessment["aml_risk"]
    if aml in risk.no_campaigns_aml or (c.marketing and aml in risk.no_marketing_aml):
        out.append(
            "AML risk keeps it out (strategy.risk)"
            if ctx.disclosure.show
            else "a restricted rating keeps it out"
        )
    if c.credit_product and assessment["credit_risk"] in risk.no_credit_products_credit:
        out.append("credit risk keeps credit products out (strategy.risk)")
    return out
