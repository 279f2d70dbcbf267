"""Credit risk: the worst of loan classification, arrears, bureau score and debt-to-income.

Worst-of mirrors Basel's one grade per obligor (domain.md A5): high = 不良 (次级/可疑/损失),
more than 90 days past due, score below 580 or DTI above 55%; medium = 关注, any arrears,
score below 740 or DTI above 40%; low otherwise. A customer with no credit data at all is
``unrated``, never ``low``: no loans is not the same as a good borrower.
"""

from __future__ import annotations

import math

import numpy as np

from tiering_core.columns import LOAN_CLASSES, Columns, Record
from tiering_core.policy import Policy
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


def rate(cols: Columns, policy: Policy) -> tuple[IntArray, list[ReasonColumn]]:
    c = policy.credit
    x = cols.number
    score, dti, dpd = x["credit_score"], x["debt_to_income"], x["days_past_due"]
    loan_class = cols.enum["loan_class"]
    levels = {str(k): v for k, v in c.loan_class.items()}
    by_class = np.array([RISK_LEVELS.index(levels[k]) for k in LOAN_CLASSES] + [-1], dtype=np.int8)
    class_level = by_class[np.where(loan_class >= 0, loan_class, len(LOAN_CLASSES))]

    dpd_high, dpd_medium = gt(dpd, c.high_dpd_over), ge(dpd, c.medium_dpd_from)
    score_high, score_medium = lt(score, c.high_score_below), lt(score, c.medium_score_below)
    dti_high, dti_medium = gt(dti, c.high_dti_over), gt(dti, c.medium_dti_over)
    high = (class_level == HIGH) | dpd_high | score_high | dti_high
    medium = (class_level == MEDIUM) | dpd_medium | score_medium | dti_medium
    has_data = known(score) | known(dti) | known(dpd) | (loan_class >= 0)
    level = np.where(high, HIGH, np.where(medium, MEDIUM, LOW))
    level = np.where(has_data, level, UNRATED_RISK).astype(np.int8)
    reasons = [
        ReasonColumn("CRD_LOAN_CLASS_HIGH", class_level == HIGH, loan_class, labels=LOAN_CLASSES),
        ReasonColumn("CRD_LOAN_CLASS_MEDIUM", class_level == MEDIUM, loan_class,
                     labels=LOAN_CLASSES),
        ReasonColumn("CRD_DPD_SEVERE", dpd_high, dpd, float(c.high_dpd_over)),
        ReasonColumn("CRD_DPD", dpd_medium & ~dpd_high, dpd, float(c.medium_dpd_from)),
        ReasonColumn("CRD_SCORE_LOW", score_high, score, float(c.high_score_below)),
        ReasonColumn("CRD_SCORE_FAIR", score_medium & ~score_high, score,
                     float(c.medium_score_below)),
        ReasonColumn("CRD_DTI_HIGH", dti_high, dti, c.high_dti_over),
        ReasonColumn("CRD_DTI_ELEVATED", dti_medium & ~dti_high, dti, c.medium_dti_over),
        ReasonColumn("CRD_GOOD", level == LOW),
        ReasonColumn("CRD_NO_DATA", ~has_data),
    ]
    return level, reasons


def rate_one(rec: Record, policy: Policy) -> tuple[int, list[ReasonColumn]]:
    """``rate`` for one customer; a test holds the two to identical results."""
    c = policy.credit
    score, dti, dpd = rec.num("credit_score"), rec.num("debt_to_income"), rec.num("days_past_due")
    loan_class = rec.enum("loan_class")
    class_level = (RISK_LEVELS.index({str(k): v for k, v in c.loan_class.items()}[
        LOAN_CLASSES[loan_class]]) if loan_class >= 0 else -1)
    dpd_high, dpd_medium = dpd > c.high_dpd_over, dpd >= c.medium_dpd_from
    score_high, score_medium = score < c.high_score_below, score < c.medium_score_below
    dti_high, dti_medium = dti > c.high_dti_over, dti > c.medium_dti_over
    high = class_level == HIGH or dpd_high or score_high or dti_high
    medium = class_level == MEDIUM or dpd_medium or score_medium or dti_medium
    has_data = not (math.isnan(score) and math.isnan(dti) and math.isnan(dpd)) or loan_class >= 0
    level = (HIGH if high else MEDIUM if medium else LOW) if has_data else UNRATED_RISK
    return level, [
        ReasonColumn("CRD_LOAN_CLASS_HIGH", class_level == HIGH, loan_class, labels=LOAN_CLASSES),
        ReasonColumn("CRD_LOAN_CLASS_MEDIUM", class_level == MEDIUM, loan_class,
                     labels=LOAN_CLASSES),
        ReasonColumn("CRD_DPD_SEVERE", dpd_high, dpd, float(c.high_dpd_over)),
        ReasonColumn("CRD_DPD", dpd_medium and not dpd_high, dpd, float(c.medium_dpd_from)),
        ReasonColumn("CRD_SCORE_LOW", score_high, score, float(c.high_score_below)),
        ReasonColumn("CRD_SCORE_FAIR", score_medium and not score_high, score,
                     float(c.medium_score_below)),
        ReasonColumn("CRD_DTI_HIGH", dti_high, dti, c.high_dti_over),
        ReasonColumn("CRD_DTI_ELEVATED", dti_medium and not dti_high, dti, c.medium_dti_over),
        ReasonColumn("CRD_GOOD", level == LOW),
        ReasonColumn("CRD_NO_DATA", not has_data),
    ]
