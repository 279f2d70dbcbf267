"""The words of ``crmtier explain``: which policy key each reason's threshold comes from,
when each task rule fires, and the labels of the explanation, in English and Chinese.

Kept apart from the rebuilding of a decision (``crmtier.explain``) so that what an examiner
reads can be reviewed, and translated, without reading the engine calls.
"""

from __future__ import annotations

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
    "no_adds": (
        "qualifies, but will not be added: the campaign takes no members "
        "([writeback.campaigns] add = false)",
        "符合条件，但不会加入：该营销活动不接收成员（[writeback.campaigns] add = false）",
    ),
    "memberships_off": (
        "qualifies, but will not be added: write-back switches campaign memberships off",
        "符合条件，但不会加入：回写配置关闭营销活动成员",
    ),
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


#: the table's row and column names: English as the JSON keys are named, so the two read
#: alike; Chinese for ``--lang zh``, where an English header would be the one word left
#: untranslated on the page
COLUMNS: dict[str, tuple[str, str]] = {
    "crm_id": ("CRM id", "CRM 记录 ID"),
    "pseudonym": ("pseudonym", "假名"),
    "service_level": ("service_level", "服务等级"),
    "input": ("input", "输入"),
    "value": ("value", "取值"),
    "crm_field": ("crm_field", "CRM 字段"),
    "code": ("code", "原因代码"),
    "text": ("text", "说明"),
    "threshold": ("threshold", "阈值"),
    "policy_key": ("policy_key", "策略键"),
    "rule": ("rule", "规则"),
    "why": ("why", "原因"),
    "campaign": ("campaign", "营销活动"),
}


def column(key: str, lang: str) -> str:
    en, zh = COLUMNS.get(key) or LABELS[key]
    return zh if lang == "zh" else en


def label(key: str, lang: str, **values: str) -> str:
    en, zh = LABELS[key]
    return (zh if lang == "zh" else en).format(**values)


def policy_key(code: str) -> str | None:
    if code in POLICY_KEYS:
        return POLICY_KEYS[code]
    prefixes = [p for p in POLICY_KEYS if p.endswith("_") and code.startswith(p)]
    return POLICY_KEYS[max(prefixes, key=len)] if prefixes else None
