"""The short explanation crmtier writes to the CRM when ``[writeback.fields]`` maps
``explanation``: each tier with the heaviest reason for it, and the policy version, in one
line a relationship manager can read on the customer's page.

It answers, on the record itself, what ``crmtier explain`` answers in full (a customer's
request to explain an automated decision, PIPL Art. 24). It is declared with the other
outputs as an optional single-line text (``tiering_core/outputs.py``) and bounded: such a
field holds 255 characters in Salesforce (Text) and Zoho CRM (single line), 100 in FXiaoke
(单行文本), so the admin's ``explanation_max_chars`` caps it and the config check holds that
cap to the CRM (``connectors/coverage.py``). When it does not fit, reasons are dropped from
the last dimension up before anything is cut.

The AML rating and its reasons are confidential (PBOC 保密原则): they appear only when the
admin lists ``explanation`` in ``[writeback] restricted`` (the CRM field is then readable by
compliance alone). The text carries no date, so a customer whose decision has not changed
is not rewritten.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connectors.mapping import WritebackConfig
from tiering_core.models import AssessmentData
from tiering_core.reasons_field import cut, utf16_length

#: output name in ``[writeback.fields]``
EXPLANATION = "explanation"

#: (assessment key, reason dimension, en label, zh label), in the order written
_DIMENSIONS: tuple[tuple[str, str, str, str], ...] = (
    ("value_tier", "value", "Value", "价值等级"),
    ("needs_tier", "needs", "Needs", "需求等级"),
    ("credit_risk", "credit", "Credit risk", "信用风险"),
    ("ops_risk", "ops", "Ops risk", "操作风险"),
    ("aml_risk", "aml", "AML risk", "反洗钱风险"),
)
_WORDS = {
    "en": {"sep": ": ", "end": ". ", "status": "Status", "policy": "Policy"},
    "zh": {"sep": "：", "end": "。", "status": "状态", "policy": "策略"},
}


def explanation_text(assessment: AssessmentData, writeback: WritebackConfig) -> str:
    """The explanation of ``assessment`` as ``writeback`` configures it (language, length,
    whether the AML rating may be shown)."""
    return render(
        assessment,
        writeback.explanation_language,
        writeback.explanation_max_chars,
        show_aml=EXPLANATION in writeback.restricted,
    )


def render(assessment: AssessmentData, lang: str, max_chars: int, *, show_aml: bool) -> str:
    """One line, at most ``max_chars`` characters (UTF-16 code units, ``reasons_field.cut``):
    per dimension its level and the text of
    its heaviest reason (ties by code, as the CRM's reasons field orders them), then the
    data status when not fully rated, then the policy version."""
    words = _WORDS[lang]
    shown = [d for d in _DIMENSIONS if show_aml or d[1] != "aml"]
    top = _top_by_dimension(assessment["reasons"], lang)
    head = [
        f"{zh if lang == 'zh' else en} {assessment[key]}"  # type: ignore[literal-required]
        for key, _, en, zh in shown
    ]
    why = [top.get(dim) for _, dim, _, _ in shown]
    tail = []
    if assessment["status"] != "rated":
        tail.append(f"{words['status']} {assessment['status']}")
    tail.append(f"{words['policy']} {assessment['policy_version']}")

    def line(reasons: Sequence[str | None]) -> str:
        parts = [
            h if r is None else f"{h}{words['sep']}{r}" for h, r in zip(head, reasons, strict=True)
        ]
        return words["end"].join([*parts, *tail]) + words["end"].rstrip()

    text = line(why)
    for drop in reversed(range(len(why))):  # the last dimension's reason goes first
        if utf16_length(text) <= max_chars:  # as Salesforce counts: an emoji is two
            return text
        why[drop] = None
        text = line(why)
    return cut(text, max_chars)


def _top_by_dimension(reasons: Sequence[Mapping[str, Any]], lang: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in sorted(reasons, key=lambda r: (-r["weight"], r["code"])):
        out.setdefault(r["dimension"], r["text"][lang])
    return out
