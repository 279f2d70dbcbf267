"""Needs tier: what kind of service the customer needs (basic / advanced / professional).

No regulator defines a needs tier; the mapping follows investor-suitability classes
(docs/targets.md A3): professional = corporate, the policy's professional value tiers (private)
or a qualified investor (合格投资者); advanced = holds investment or insurance products, or
is in an advanced value tier (wealth); basic otherwise.
"""

from __future__ import annotations

import numpy as np

from tiering_core.columns import Columns
from tiering_core.models import CUSTOMER_KINDS
from tiering_core.policy import Policy
from tiering_core.rules.base import NEEDS_TIERS, VALUE_TIERS, IntArray, ReasonColumn, gt

PROFESSIONAL = NEEDS_TIERS.index("professional")
ADVANCED = NEEDS_TIERS.index("advanced")
BASIC = NEEDS_TIERS.index("basic")
CORPORATE = CUSTOMER_KINDS.index("corporate")


def rate(
    cols: Columns, policy: Policy, value_tier: IntArray
) -> tuple[IntArray, list[ReasonColumn]]:
    n = policy.needs
    corporate = cols.enum["kind"] == CORPORATE
    qualified = cols.flag["qualified_investor"] == 1
    pro_tier = np.array([t in n.professional_tiers for t in VALUE_TIERS])[value_tier]
    adv_tier = np.array([t in n.advanced_tiers for t in VALUE_TIERS])[value_tier]
    # The product list is the evidence; balances stand in only when the CRM has no list.
    no_list = np.isnan(cols.products)
    invests = gt(cols.advanced_products, 0) | (
        no_list & (gt(cols.number["investments"], 0) | gt(cols.number["insurance"], 0))
    )
    professional = corporate | qualified | pro_tier
    advanced = ~professional & (invests | adv_tier)
    tier = np.where(professional, PROFESSIONAL, np.where(advanced, ADVANCED, BASIC)).astype(np.int8)
    reasons = [
        ReasonColumn("NEED_CORPORATE", corporate),
        ReasonColumn("NEED_QUALIFIED_INVESTOR", qualified),
        ReasonColumn("NEED_TIER", pro_tier, value_tier, "professional", labels=VALUE_TIERS),
        ReasonColumn(
            "NEED_TIER", adv_tier & ~professional, value_tier, "advanced", labels=VALUE_TIERS
        ),
        ReasonColumn("NEED_INVESTMENT_PRODUCTS", invests & ~professional),
        ReasonColumn("NEED_BASIC", tier == BASIC),
    ]
    return tier, reasons
