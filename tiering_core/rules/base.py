"""What every rule returns: levels per row and the reasons/issues behind them, as columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import numpy as np
import numpy.typing as npt

from tiering_core.columns import BoolArray, FloatArray
from tiering_core.models import AmlRisk, NeedsTier, RiskLevel, Status, ValueTier

IntArray = npt.NDArray[np.int8]

#: Output vocabularies; a level array holds the index into its vocabulary.
VALUE_TIERS: tuple[ValueTier, ...] = get_args(ValueTier)  # in the Literal's order
NEEDS_TIERS: tuple[NeedsTier, ...] = ("professional", "advanced", "basic")
RISK_LEVELS: tuple[RiskLevel, ...] = ("low", "medium", "high", "unrated")
AML_LEVELS: tuple[AmlRisk, ...] = ("low", "medium", "high", "prohibited", "unrated")
STATUSES: tuple[Status, ...] = ("rated", "partial", "unrated")
UNRATED_TIER = VALUE_TIERS.index("unrated")
#: Codes at or above this are the corporate ladder's (hysteresis never crosses ladders).
FIRST_CORPORATE_TIER = VALUE_TIERS.index("corporate_strategic")
UNRATED_RISK = RISK_LEVELS.index("unrated")
UNRATED_AML = AML_LEVELS.index("unrated")


@dataclass(slots=True)
class ReasonColumn:
    """Reason ``code`` applies to the rows where ``mask`` is true.

    ``value`` holds the observed value per row (or, with ``labels``, an index into
    ``labels``); ``profile_path`` says to show the profile's own value instead (lists).
    ``weight`` overrides the catalogue weight (AML factor contributions). A plain (not
    frozen) slotted class: a batch of one creates dozens, and that must stay cheap."""

    code: str
    mask: BoolArray
    value: FloatArray | npt.NDArray[np.int8] | float | int | None = None
    threshold: float | str | FloatArray | None = None  # an array: per row
    weight: FloatArray | float | None = None
    labels: tuple[str, ...] | None = None
    profile_path: str | None = None


@dataclass(slots=True)
class IssueColumn:
    """Data-quality issue ``code`` on canonical field ``path`` where ``mask`` is true."""

    code: str
    path: str
    mask: BoolArray
    problem: str


def known(x: FloatArray) -> BoolArray:
    return ~np.isnan(x)


# NaN compares false, so a missing value never fires a threshold (numpy does not warn).


def ge(x: FloatArray, threshold: float | FloatArray) -> BoolArray:
    return np.greater_equal(x, threshold)


def gt(x: FloatArray, threshold: float | FloatArray) -> BoolArray:
    return np.greater(x, threshold)


def lt(x: FloatArray, threshold: float | FloatArray) -> BoolArray:
    return np.less(x, threshold)


def le(x: FloatArray, threshold: float | FloatArray) -> BoolArray:
    return np.less_equal(x, threshold)
