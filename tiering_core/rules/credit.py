"""Credit risk: the worst of loan classification and arrears, plus the score and
debt-to-income cut-offs a policy declares.

Worst-of mirrors Basel's one grade per obligor: by default high = 不良 (次级/可疑/损失) or
more than 90 days past due, medium = 关注 or any arrears, low otherwise (商业银行金融资产风险
分类办法, 2023). A score counts only when the policy names its scale (``credit.score_scale``)
and a debt-to-income ratio only when the policy sets its cut-offs: a cut-off left out never
fires, and an input the policy does not use does not make a customer rated. A customer with
no usable credit data is ``unrated``, never ``low``: no loans is not a good borrower.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tiering_core.columns import BoolArray, Columns, FloatArray
from tiering_core.models import LOAN_CLASSES
from tiering_core.policy import CreditPolicy, Policy
from tiering_core.rules.base import (
    RISK_LEVELS,
    UNRATED_RISK,
    IntArray,
    ReasonColumn,
    ge,
    gt,
    known,
    lt,
)

LOW, MEDIUM, HIGH = (RISK_LEVELS.index(x) for x in ("low", "medium", "high"))


def _cut(
    test: Callable[[FloatArray, float], BoolArray], x: FloatArray, threshold: float | None
) -> BoolArray:
    """``test(x, threshold)``, or nowhere when the policy leaves the cut-off out."""
    if threshold is None:
        return np.zeros(x.shape, dtype=bool)
    return test(x, threshold)


def _uses_score(c: CreditPolicy) -> bool:
    return c.high_score_below is not None or c.medium_score_below is not None


def _uses_dti(c: CreditPolicy) -> bool:
    return c.high_dti_over is not None or c.medium_dti_over is not None


def _num(threshold: float | None) -> float | None:
    return None if threshold is None else float(threshold)


def rate(cols: Columns, policy: Policy) -> tuple[IntArray, list[ReasonColumn]]:
    c = policy.credit
    x = cols.number
    score, dti, dpd = x["credit_score"], x["debt_to_income"], x["days_past_due"]
    loan_class = cols.enum["loan_class"]
    levels = {str(k): v for k, v in c.loan_class.items()}
    by_class = np.array([RISK_LEVELS.index(levels[k]) for k in LOAN_CLASSES] + [-1], dtype=np.int8)
    class_level = by_class[np.where(loan_class >= 0, loan_class, len(LOAN_CLASSES))]

    dpd_high, dpd_medium = gt(dpd, c.high_dpd_over), ge(dpd, c.medium_dpd_from)
    score_high, score_medium = (
        _cut(lt, score, c.high_score_below),
        _cut(lt, score, c.medium_score_below),
    )
    dti_high, dti_medium = _cut(gt, dti, c.high_dti_over), _cut(gt, dti, c.medium_dti_over)
    high = (class_level == HIGH) | dpd_high | score_high | dti_high
    medium = (class_level == MEDIUM) | dpd_medium | score_medium | dti_medium
    has_data = (
        (known(score) & _uses_score(c))
        | (known(dti) & _uses_dti(c))
        | known(dpd)
        | (loan_class >= 0)
    )
    level = np.where(high, HIGH, np.where(medium, MEDIUM, LOW))
    level = np.where(has_data, level, UNRATED_RISK).astype(np.int8)
    reasons = [
        ReasonColumn("CRD_LOAN_CLASS_HIGH", class_level == HIGH, loan_class, labels=LOAN_CLASSES),
        ReasonColumn(
            "CRD_LOAN_CLASS_MEDIUM", class_level == MEDIUM, loan_class, labels=LOAN_CLASSES
        ),
        ReasonColumn("CRD_DPD_SEVERE", dpd_high, dpd, float(c.high_dpd_over)),
        ReasonColumn("CRD_DPD", dpd_medium & ~dpd_high, dpd, float(c.medium_dpd_from)),
        ReasonColumn("CRD_SCORE_LOW", score_high, score, _num(c.high_score_below)),
        ReasonColumn(
            "CRD_SCORE_FAIR", score_medium & ~score_high, score, _num(c.medium_score_below)
        ),
        ReasonColumn("CRD_DTI_HIGH", dti_high, dti, c.high_dti_over),
        ReasonColumn("CRD_DTI_ELEVATED", dti_medium & ~dti_high, dti, c.medium_dti_over),
        ReasonColumn("CRD_GOOD", level == LOW),
        ReasonColumn("CRD_NO_DATA", ~has_data),
    ]
    return level, reasons
