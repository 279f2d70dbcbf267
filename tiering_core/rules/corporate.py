"""The corporate ladder: a company's value to the bank, never a person's wealth.

The retail ladder measures a person's assets (the 600万 private-banking line is a definition
of an *individual's* financial net assets, CBRC 2011), so a company with large balances
would land in "private" and be offered private banking and VIP events. Corporates are
rated on their own ladder instead, by what the bank holds for the company (average
balances, time-averaged when the CRM has them), what it extends (approved credit lines,
授信额度) and what it earns (12-month revenue: interest, fees). A tier is reached when
*any* of the three reaches that tier's floor, so a borrowing relationship counts as much
as a deposit one: corporate_strategic > corporate_key > corporate_standard, and
corporate_small below them all. Each criterion that carried the tier is a reason.

Downgrades wait for the value policy's grace period like retail ones, but without the AUM
buffer band (there are three measures, not one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tiering_core.columns import BoolArray, Columns, FloatArray
from tiering_core.models import CUSTOMER_KINDS
from tiering_core.policy import Policy
from tiering_core.rules.base import FIRST_CORPORATE_TIER, UNRATED_TIER, IntArray, ReasonColumn

CORPORATE = CUSTOMER_KINDS.index("corporate")
RANKED = ("corporate_strategic", "corporate_key", "corporate_standard")  # top down
SMALL = len(RANKED)  # below every floor
#: The criteria, in the order of a floor row, and the reason each gives.
CRITERIA = (
    ("balance_floor", "VAL_CORP_BALANCE"),
    ("credit_line_floor", "VAL_CORP_CREDIT_LINE"),
    ("revenue_floor", "VAL_CORP_REVENUE"),
)


@dataclass(frozen=True)
class CorporateOutcome:
    corporate: BoolArray  # the rows this ladder rates
    tier: IntArray  # value tier codes (corporate ones, or unrated); meaningful where corporate
    reasons: list[ReasonColumn]


def floors(policy: Policy) -> np.ndarray:
    """Tier x criterion floors (top tier first)."""
    tiers = {str(name): t for name, t in policy.value.corporate.tiers.items()}
    return np.array([[getattr(tiers[t], key) for key, _ in CRITERIA] for t in RANKED])


def rate(cols: Columns, policy: Policy, aum: FloatArray, revenue: FloatArray) -> CorporateOutcome:
    corporate = cols.enum["kind"] == CORPORATE
    metrics = np.vstack([aum, cols.number["credit_line"], revenue])  # criterion x n
    f = floors(policy)
    reached = (metrics[None, :, :] >= f[:, :, None]).any(axis=1)  # tier x n; NaN never meets
    rated = ~np.isnan(metrics).all(axis=0)
    index = np.where(reached.any(axis=0), np.argmax(reached, axis=0), SMALL)
    tier = np.where(rated, index + FIRST_CORPORATE_TIER, UNRATED_TIER).astype(np.int8)
    ranked = corporate & rated & (index < SMALL)
    row_floors = f[np.minimum(index, SMALL - 1)]  # n x criterion: the reached tier's floors
    reasons = [
        ReasonColumn(code, ranked & (metrics[k] >= row_floors[:, k]), metrics[k], row_floors[:, k])
        for k, (_, code) in enumerate(CRITERIA)
    ]
    reasons.append(ReasonColumn("VAL_CORP_SMALL", corporate & rated & (index == SMALL)))
    return CorporateOutcome(corporate, tier, reasons)
