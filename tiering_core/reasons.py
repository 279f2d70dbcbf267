"""The reason-code catalogue: every code a rule can give, with its bilingual text.

Codes are stable identifiers (a CRM report or a compliance query may filter on them), so a
code is never renamed or reused; docs/reason-codes.md lists them. The weight orders reasons
for the CRM's short "top reasons" field: decisive facts (overrides, the tier's own
threshold) outrank contributing ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Dimension = Literal[
    "value", "needs", "credit", "aml", "ops", "feedback", "dq", "consent", "channel"
]


@dataclass(frozen=True)
class ReasonSpec:
    code: str
    dimension: Dimension
    factor: str
    weight: float
    en: str  # str.format template over {value} and {threshold}, both pre-formatted
    zh: str


def _spec(
    code: str, dimension: Dimension, factor: str, weight: float, en: str, zh: str
) -> ReasonSpec:
    return ReasonSpec(code, dimension, factor, weight, en, zh)


_SPECS = (
    # value
    _spec(
        "VAL_AUM_PRIVATE",
        "value",
        "aum",
        0.70,
        "AUM {value} >= private floor {threshold}",
        "资产 {value} ≥ 私行门槛 {threshold}",
    ),
    _spec(
        "VAL_AUM_WEALTH",
        "value",
        "aum",
        0.60,
        "AUM {value} >= wealth floor {threshold}",
        "资产 {value} ≥ 财富门槛 {threshold}",
    ),
    _spec(
        "VAL_AUM_AFFLUENT",
        "value",
        "aum",
        0.50,
        "AUM {value} >= affluent floor {threshold}",
        "资产 {value} ≥ 富裕门槛 {threshold}",
    ),
    _spec(
        "VAL_AUM_MASS",
        "value",
        "aum",
        0.30,
        "AUM {value} below affluent floor {threshold}",
        "资产 {value} 低于富裕门槛 {threshold}",
    ),
    _spec(
        "VAL_LIFT_PROFIT",
        "value",
        "revenue_12m",
        0.65,
        "Revenue {value} >= lift floor {threshold}: tier lifted",
        "年贡献 {value} ≥ 提级门槛 {threshold}，等级上调",
    ),
    _spec(
        "HOUSEHOLD_AUM",
        "value",
        "household",
        0.68,
        "Household {value} reaches floor {threshold}: tier lifted to the household's",
        "家庭 {value} 合计资产达到门槛 {threshold}，等级按家庭上调",
    ),
    _spec(
        "VAL_UPGRADE",
        "value",
        "previous.value_tier",
        0.55,
        "Upgraded from {value}",
        "由 {value} 升级",
    ),
    _spec(
        "VAL_HELD_BUFFER",
        "value",
        "aum",
        0.55,
        "AUM {value} within buffer of floor {threshold}: tier kept",
        "资产 {value} 在缓冲区内（门槛 {threshold}），保级",
    ),
    _spec(
        "VAL_HELD_GRACE",
        "value",
        "below_floor_days",
        0.55,
        "Below floor for {value} of {threshold} grace days: tier kept",
        "低于门槛 {value} 天（宽限 {threshold} 天），暂保级",
    ),
    _spec(
        "VAL_DOWNGRADE",
        "value",
        "below_floor_days",
        0.60,
        "Below floor for {value} days (grace {threshold}): downgraded",
        "低于门槛 {value} 天（宽限 {threshold} 天），降级",
    ),
    _spec(
        "VAL_CORP_BALANCE",
        "value",
        "aum",
        0.70,
        "Corporate balances {value} >= tier floor {threshold}",
        "对公日均存款 {value} ≥ 本级门槛 {threshold}",
    ),
    _spec(
        "VAL_CORP_CREDIT_LINE",
        "value",
        "credit.credit_line",
        0.70,
        "Corporate credit lines {value} >= tier floor {threshold}",
        "对公授信额度 {value} ≥ 本级门槛 {threshold}",
    ),
    _spec(
        "VAL_CORP_REVENUE",
        "value",
        "revenue_12m",
        0.70,
        "Corporate revenue {value} >= tier floor {threshold}",
        "对公年贡献 {value} ≥ 本级门槛 {threshold}",
    ),
    _spec(
        "VAL_CORP_SMALL",
        "value",
        "kind",
        0.30,
        "Corporate below every standard floor: small business",
        "对公客户未达一般客户门槛：小微客户",
    ),
    _spec(
        "VAL_NO_AUM",
        "value",
        "aum",
        0.90,
        "No usable asset data: value tier unrated",
        "无可用资产数据，价值等级未评",
    ),
    _spec(
        "VAL_ACTIVE",
        "value",
        "activity.transactions_90d",
        0.20,
        "{value} transactions in 90 days (active >= {threshold})",
        "90天交易 {value} 笔（活跃 ≥ {threshold}）",
    ),
    _spec(
        "VAL_DORMANT",
        "value",
        "activity.transactions_90d",
        0.25,
        "No transactions or logins in 90 days",
        "90天无交易、无登录",
    ),
    # needs
    _spec(
        "NEED_CORPORATE",
        "needs",
        "kind",
        0.45,
        "Corporate customer: professional needs",
        "对公客户：专业需求",
    ),
    _spec(
        "NEED_TIER",
        "needs",
        "value_tier",
        0.40,
        "Value tier {value} sets needs {threshold}",
        "价值等级 {value}，需求 {threshold}",
    ),
    _spec(
        "NEED_QUALIFIED_INVESTOR",
        "needs",
        "qualified_investor",
        0.45,
        "Qualified investor: professional needs",
        "合格投资者：专业需求",
    ),
    _spec(
        "NEED_INVESTMENT_PRODUCTS",
        "needs",
        "activity.products_held",
        0.35,
        "Holds investment or insurance products",
        "持有投资或保险类产品",
    ),
    _spec(
        "NEED_BASIC",
        "needs",
        "activity.products_held",
        0.10,
        "No investment products: basic needs",
        "无投资类产品：基础需求",
    ),
    # credit
    _spec(
        "CRD_LOAN_CLASS_HIGH",
        "credit",
        "credit.loan_class",
        0.85,
        "Loan class {value} (non-performing)",
        "五级分类 {value}（不良）",
    ),
    _spec(
        "CRD_LOAN_CLASS_MEDIUM",
        "credit",
        "credit.loan_class",
        0.50,
        "Loan class {value}",
        "五级分类 {value}",
    ),
    _spec(
        "CRD_DPD_SEVERE",
        "credit",
        "credit.days_past_due_max_12m",
        0.85,
        "{value} days past due (> {threshold})",
        "逾期 {value} 天（> {threshold}）",
    ),
    _spec(
        "CRD_DPD",
        "credit",
        "credit.days_past_due_max_12m",
        0.50,
        "{value} days past due (>= {threshold})",
        "逾期 {value} 天（≥ {threshold}）",
    ),
    _spec(
        "CRD_SCORE_LOW",
        "credit",
        "credit.score",
        0.80,
        "Credit score {value} < {threshold}",
        "信用评分 {value} < {threshold}",
    ),
    _spec(
        "CRD_SCORE_FAIR",
        "credit",
        "credit.score",
        0.45,
        "Credit score {value} < {threshold}",
        "信用评分 {value} < {threshold}",
    ),
    _spec(
        "CRD_DTI_HIGH",
        "credit",
        "credit.debt_to_income",
        0.80,
        "Debt-to-income {value} > {threshold}",
        "负债收入比 {value} > {threshold}",
    ),
    _spec(
        "CRD_DTI_ELEVATED",
        "credit",
        "credit.debt_to_income",
        0.45,
        "Debt-to-income {value} > {threshold}",
        "负债收入比 {value} > {threshold}",
    ),
    _spec(
        "CRD_GOOD",
        "credit",
        "credit",
        0.15,
        "No adverse credit factor",
        "无不利信用因素",
    ),
    _spec(
        "CRD_NO_DATA",
        "credit",
        "credit",
        0.20,
        "No credit data: credit risk unrated",
        "无信用数据，信用风险未评",
    ),
    # aml (weights of contributing factors come from the policy's factor weights)
    _spec(
        "AML_SANCTIONS",
        "aml",
        "aml.sanctions_hit",
        1.00,
        "Sanctions screening hit",
        "制裁名单命中",
    ),
    _spec(
        "AML_PEP",
        "aml",
        "aml.pep",
        0.95,
        "Politically exposed person",
        "政治公众人物",
    ),
    _spec(
        "AML_REFUSED_CDD",
        "aml",
        "aml.refused_cdd",
        0.95,
        "Refused customer due diligence",
        "拒绝配合尽职调查",
    ),
    _spec(
        "AML_STR_REPEATED",
        "aml",
        "aml.str_count_12m",
        0.95,
        "{value} suspicious-transaction reports in 12 months (>= {threshold})",
        "12个月可疑交易报告 {value} 次（≥ {threshold}）",
    ),
    _spec(
        "AML_STR",
        "aml",
        "aml.str_count_12m",
        0.0,
        "{value} suspicious-transaction report(s) in 12 months",
        "12个月可疑交易报告 {value} 次",
    ),
    _spec(
        "AML_ADVERSE_MEDIA",
        "aml",
        "aml.adverse_media",
        0.0,
        "Adverse media",
        "负面新闻",
    ),
    _spec(
        "AML_CORPORATE",
        "aml",
        "kind",
        0.0,
        "Corporate customer",
        "对公客户",
    ),
    _spec(
        "AML_HIGH_RISK_COUNTRY",
        "aml",
        "aml.high_risk_countries",
        0.0,
        "Links to high-risk countries ({value})",
        "涉及高风险国家或地区（{value}）",
    ),
    _spec(
        "AML_CALL_FOR_ACTION_COUNTRY",
        "aml",
        "aml.high_risk_countries",
        0.0,
        "Links to FATF call-for-action countries ({value})",
        "涉及FATF呼吁采取行动的国家（{value}）",
    ),
    _spec(
        "AML_CASH_LARGE",
        "aml",
        "aml.cash_volume_90d",
        0.0,
        "Cash {value} in 90 days >= {threshold}",
        "90天现金 {value} ≥ {threshold}",
    ),
    _spec(
        "AML_CASH_VERY_LARGE",
        "aml",
        "aml.cash_volume_90d",
        0.0,
        "Cash {value} in 90 days >= {threshold}",
        "90天现金 {value} ≥ {threshold}",
    ),
    _spec(
        "AML_CROSS_BORDER_FREQUENT",
        "aml",
        "aml.cross_border_count_90d",
        0.0,
        "{value} cross-border transfers in 90 days >= {threshold}",
        "90天跨境交易 {value} 笔 ≥ {threshold}",
    ),
    _spec(
        "AML_CROSS_BORDER_LARGE",
        "aml",
        "aml.cross_border_volume_90d",
        0.0,
        "Cross-border {value} in 90 days >= {threshold}",
        "90天跨境金额 {value} ≥ {threshold}",
    ),
    _spec(
        "AML_INDUSTRY_MEDIUM",
        "aml",
        "aml.industry_risk",
        0.0,
        "Medium-risk industry",
        "中风险行业",
    ),
    _spec(
        "AML_INDUSTRY_HIGH",
        "aml",
        "aml.industry_risk",
        0.0,
        "High-risk industry",
        "高风险行业",
    ),
    _spec(
        "AML_SCORE",
        "aml",
        "aml.score",
        0.40,
        "AML factor score {value} (level threshold {threshold})",
        "反洗钱因素得分 {value}（等级门槛 {threshold}）",
    ),
    _spec(
        "HOUSEHOLD_REVIEW",
        "aml",
        "household",
        0.85,
        "Household {value} flagged for compliance review by a member's AML rating",
        "家庭 {value} 因成员反洗钱评级需合规复核",
    ),
    _spec(
        "AML_NO_DATA",
        "aml",
        "aml",
        0.90,
        "No AML data: AML risk unrated, rate within {threshold} working days",
        "无反洗钱数据，需在 {threshold} 个工作日内评级",
    ),
    # ops
    _spec(
        "OPS_FRAUD_VICTIM",
        "ops",
        "ops.fraud_victim_flag",
        0.75,
        "Fraud victim",
        "欺诈受害客户",
    ),
    _spec(
        "OPS_KYC_EXPIRED",
        "ops",
        "ops.kyc_expired",
        0.70,
        "KYC documents expired",
        "身份资料过期",
    ),
    _spec(
        "OPS_FAILED_HIGH",
        "ops",
        "ops.failed_operations_90d",
        0.60,
        "{value} failed operations in 90 days (>= {threshold})",
        "90天操作失败 {value} 次（≥ {threshold}）",
    ),
    _spec(
        "OPS_FAILED",
        "ops",
        "ops.failed_operations_90d",
        0.35,
        "{value} failed operations in 90 days (>= {threshold})",
        "90天操作失败 {value} 次（≥ {threshold}）",
    ),
    _spec(
        "OPS_TICKETS_HIGH",
        "ops",
        "ops.support_tickets_90d",
        0.55,
        "{value} support tickets in 90 days (>= {threshold})",
        "90天服务工单 {value} 个（≥ {threshold}）",
    ),
    _spec(
        "OPS_TICKETS",
        "ops",
        "ops.support_tickets_90d",
        0.30,
        "{value} support tickets in 90 days (>= {threshold})",
        "90天服务工单 {value} 个（≥ {threshold}）",
    ),
    _spec(
        "OPS_NO_DATA",
        "ops",
        "ops",
        0.40,
        "No operational data: ops risk unrated",
        "无运营数据，操作风险未评",
    ),
    # feedback
    _spec(
        "FB_OPEN_COMPLAINT",
        "feedback",
        "feedback.open_complaints",
        0.75,
        "{value} open complaint(s)",
        "未结投诉 {value} 件",
    ),
    _spec(
        "FB_DETRACTOR_NPS",
        "feedback",
        "feedback.nps",
        0.50,
        "NPS {value} <= detractor line {threshold}",
        "NPS {value} ≤ 贬损线 {threshold}",
    ),
    _spec(
        "FB_LOW_CSAT",
        "feedback",
        "feedback.csat",
        0.50,
        "CSAT {value} <= {threshold}",
        "满意度 {value} ≤ {threshold}",
    ),
    # overrides (rules/override.py): a maker-checker decision outranks every computed fact
    _spec(
        "MANUAL_OVERRIDE",
        "value",
        "override.value_tier",
        0.99,
        "Approved override: value tier {value} until {threshold}",
        "经复核批准的调整：价值等级 {value}，有效至 {threshold}",
    ),
    _spec(
        "MANUAL_OVERRIDE_SERVICE",
        "value",
        "override.service_tier",
        0.98,
        "Approved override: {value} service level until {threshold}",
        "经复核批准的调整：{value} 服务级别，有效至 {threshold}",
    ),
    _spec(
        "OVERRIDE_REFUSED",
        "value",
        "override",
        0.05,
        "Tier override to {threshold} refused: {value}",
        "等级调整（{threshold}）未获采纳：{value}",
    ),
    # consent
    _spec(
        "CONSENT_NO_MARKETING",
        "consent",
        "consent.marketing_opt_out",
        0.10,
        "Refused personalised marketing",
        "已拒绝个性化营销",
    ),
    # channel (rules/channel.py): light weights, so they never crowd out why a tier is given
    _spec(
        "CH_RM_VISIT_TIER",
        "channel",
        "value_tier",
        0.05,
        "Preferred channel RM visit: {value} customers are served in person",
        "首选渠道为客户经理上门：{value} 客户当面服务",
    ),
    _spec(
        "CH_DIGITAL_ACTIVE",
        "channel",
        "activity.digital_logins_90d",
        0.05,
        "Preferred channel digital: {value} logins in 90 days >= {threshold}",
        "首选渠道为线上：90 天登录 {value} 次 ≥ {threshold}",
    ),
    _spec(
        "CH_BRANCH_ACTIVE",
        "channel",
        "activity.branch_transactions_90d",
        0.05,
        "Preferred channel branch: {value} branch transactions in 90 days >= {threshold}",
        "首选渠道为网点：90 天网点交易 {value} 笔 ≥ {threshold}",
    ),
    _spec(
        "CH_PHONE_TIER",
        "channel",
        "value_tier",
        0.05,
        "Preferred channel phone: little digital or branch activity, {value} customer",
        "首选渠道为电话：线上与网点活动少，{value} 客户",
    ),
    _spec(
        "CH_SELF_SERVICE",
        "channel",
        "value_tier",
        0.04,
        "Preferred channel digital self-service: little activity, {value} customer",
        "首选渠道为线上自助：活动少，{value} 客户",
    ),
)

CATALOGUE: dict[str, ReasonSpec] = {spec.code: spec for spec in _SPECS}


def format_value(value: Any) -> str:
    """How an observed value or threshold reads in a reason's text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int | float):
        return f"{int(value):,}"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


class ReasonText(Mapping[str, str]):
    """A reason's text by language (``en``, ``zh``), rendered when first read, then kept.

    Reasons are codes until a person reads them: a CRM's reasons field shows the top few
    in one language, a task description those of its dimensions, and the sync reads no
    other text (it keeps reason codes), so rendering every text in both languages up front
    would be most of the cost of making a reason. ``crmtier tier`` writes them all, each
    rendered once; a reason that carries no per-customer value is one shared text for the
    whole batch (``engine``), so it is rendered once a batch."""

    __slots__ = ("_spec", "_text", "_threshold", "_value")

    def __init__(self, spec: ReasonSpec, value: Any, threshold: Any) -> None:
        self._spec, self._value, self._threshold = spec, value, threshold
        self._text: dict[str, str] | None = None

    def __getitem__(self, language: str) -> str:
        return self.rendered()[language]

    def rendered(self) -> dict[str, str]:
        """Both languages, as a dict (what a model is validated from; not to be changed)."""
        text = self._text
        if text is None:
            fields = {
                "value": format_value(self._value),
                "threshold": format_value(self._threshold),
            }
            spec = self._spec
            text = self._text = {"en": spec.en.format(**fields), "zh": spec.zh.format(**fields)}
        return text

    def __iter__(self) -> Iterator[str]:
        return iter(("en", "zh"))

    def __len__(self) -> int:
        return 2

    def __repr__(self) -> str:
        return repr(dict(self))


def make_reason(
    code: str,
    value: Any = None,
    threshold: Any = None,
    weight: float | None = None,
    text: ReasonText | None = None,
) -> dict[str, Any]:
    """A ``Reason`` as the plain data the engine validates into an ``Assessment`` in one
    go (validating one nested structure is far cheaper than constructing each model).
    ``text``: one already made for the same code, value and threshold (shared)."""
    spec = CATALOGUE[code]
    return {
        "code": code,
        "dimension": spec.dimension,
        "factor": spec.factor,
        "value": value,
        "threshold": threshold,
        "weight": spec.weight if weight is None else round(weight, 4),
        "text": ReasonText(spec, value, threshold) if text is None else text,
    }


def top_reasons(
    reasons: Sequence[dict[str, Any]], n: int, *, include_aml: bool = False
) -> list[dict[str, Any]]:
    """The ``n`` heaviest reasons, ties broken by code: the same input always gives the same
    list. AML reasons are never among them (unless ``include_aml``: the EDD task for the
    compliance queue): the CRM's reasons field is visible to sales staff and the AML rating
    is confidential (PBOC 保密原则)."""
    visible = [r for r in reasons if include_aml or r["dimension"] != "aml"]
    return sorted(visible, key=lambda r: (-r["weight"], r["code"]))[:n]


def compact(reasons: list[dict[str, Any]], language: str, max_chars: int) -> str:
    """One line for a CRM text field: ``CODE text; CODE text``, cut at ``max_chars``."""
    parts = []
    for r in reasons:
        text = r["text"]
        if text.__class__ is ReasonText:
            text = text.rendered()  # one call instead of one per language read
        if language == "zh":
            line = text["zh"]
        elif language == "both":
            line = f"{text['en']} / {text['zh']}"
        else:
            line = text["en"]
        parts.append(f"{r['code']} {line}")
    joined = "; ".join(parts)
    return joined if len(joined) <= max_chars else joined[: max_chars - 1] + "…"
