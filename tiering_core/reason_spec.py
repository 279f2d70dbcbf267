"""What one reason code is: its dimension, the factor it speaks for, its weight in the CRM's
short "top reasons" field, and its English and Chinese texts (tiering_core/reasons.py holds
the whole catalogue; the entries live by dimension in reasons_customer.py and
reasons_risk.py, so none of those files is a wall of every code)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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


def spec(
    code: str, dimension: Dimension, factor: str, weight: float, en: str, zh: str
) -> ReasonSpec:
    return ReasonSpec(code, dimension, factor, weight, en, zh)
