"""What a task's description tells the person who gets it: what to do, why, and by when.

A relationship manager or a compliance officer opens a task in the CRM and must be able
to act on it without looking anything up: the action, the customer's top reasons for it
(in the policy's ``strategy.reasons_language``) and where the due date comes from (the
rule's ``deadline_source`` in the policy, e.g. the regulation that sets it). The reasons
shown are those of the dimensions the rule acts on, so an EDD task for the compliance
queue shows the AML facts, and no task of another rule ever does (PBOC 保密原则: the AML
rating is not for sales staff).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from tiering_core.policy import Policy
from tiering_core.policy_strategy import TaskRule
from tiering_core.reasons import top_reasons

#: Per rule: (what to do in English, in Chinese, the reason dimensions that explain it).
WHAT: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "sanctions_review": (
        "Restrict the relationship today: freeze as the sanctions rules require, confirm"
        " or clear the screening hit and record the decision",
        "今日限制业务关系：按制裁规定冻结，确认或排除筛查命中并记录结论",
        ("aml",),
    ),
    "edd_review": (
        "Run enhanced due diligence: verify source of funds and wealth, review the"
        " relationship and record the outcome",
        "开展强化尽职调查：核实资金及财富来源，审视业务关系并记录结论",
        ("aml",),
    ),
    "credit_limit_review": (
        "Review the credit limit and pricing; decide whether to reduce exposure",
        "复核授信额度与定价，决定是否压降敞口",
        ("credit",),
    ),
    "complaint": (
        "Contact the customer, resolve the open complaint(s) and record the decision",
        "联系客户，处理未结投诉并记录处理决定",
        ("feedback",),
    ),
    "upgrade_call": (
        "Call the customer: explain the new tier's service and introduce yourself",
        "致电客户：介绍新等级的服务权益并建立联系",
        ("value",),
    ),
    "dedicated_advisor": (
        "Assign a dedicated relationship manager to this customer",
        "为该客户指派专属客户经理",
        ("value",),
    ),
    "corporate_banking": (
        "Cover the relationship: assign a relationship manager if there is none, then"
        " review cash management, credit lines and trade finance needs",
        "对公客户关系覆盖：如无客户经理先指派，再回顾现金管理、授信与贸易融资需求",
        ("value", "needs"),
    ),
    "investment_advisory": (
        "Hold an investment advisory review: suitability, portfolio and goals",
        "开展投资顾问回顾：适当性、持仓与目标",
        ("needs", "value"),
    ),
    "service_recovery": (
        "Call the customer about their feedback and agree a fix",
        "就客户反馈回访并商定改进措施",
        ("feedback",),
    ),
    "data_remediation": (
        "Complete or correct the customer data listed",
        "补全或更正所列客户数据",
        ("dq",),
    ),
}

_LABELS = {
    "en": ("To do", "Why", "Due", "days", "Fields"),
    "zh": ("待办", "原因", "期限", "天", "字段"),
}


def description(
    rule_name: str,
    rule: TaskRule,
    reasons: Sequence[dict[str, Any]],
    policy: Policy,
    due: date,
    days: int,
    dq_fields: Sequence[str] = (),
) -> str:
    """The task's description in the policy's reasons language (both: English, then
    Chinese)."""
    language = policy.strategy.reasons_language
    languages = ("en", "zh") if language == "both" else (language,)
    en, zh, dimensions = WHAT[rule_name]
    why = top_reasons(
        [r for r in reasons if r["dimension"] in dimensions],
        policy.strategy.reasons_top,
        include_aml="aml" in dimensions,
    )
    blocks = []
    for lang in languages:
        todo, because, due_label, unit, fields_label = _LABELS[lang]
        lines = [f"{todo}: {en if lang == 'en' else zh}"]
        if dq_fields:
            lines.append(f"{fields_label}: " + ", ".join(dq_fields))
        if why:
            lines.append(f"{because}: " + "; ".join(r["text"][lang] for r in why))
        source = f" — {rule.deadline_source}" if rule.deadline_source else ""
        lines.append(f"{due_label}: {due.isoformat()} ({days} {unit}){source}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
