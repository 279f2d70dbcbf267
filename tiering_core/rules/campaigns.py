"""Campaign membership, decided for a whole batch at once (campaign x customer).

Every criterion a campaign names must match: value tiers, needs tiers, kinds (a campaign
that names no kinds is a retail one: a corporate joins only campaigns that name
corporates) and credit levels. Risk then overrides marketing: AML levels in
``no_campaigns_aml`` end every membership; a marketing campaign takes nobody at an AML
level in ``no_marketing_aml`` nor anyone who refused personalised marketing (PIPL Art.
24); a credit-product campaign takes nobody at a credit level in
``no_credit_products_credit``. ``strategy`` turns each customer's column into campaign
actions (member or not, so a membership crmtier made can be removed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tiering_core.columns import BoolArray
from tiering_core.models import CUSTOMER_KINDS
from tiering_core.policy import Policy
from tiering_core.rules.base import AML_LEVELS, NEEDS_TIERS, RISK_LEVELS, VALUE_TIERS, IntArray

CORPORATE = CUSTOMER_KINDS.index("corporate")


@dataclass(frozen=True)
class Memberships:
    """``member[c, i]``: customer ``i`` belongs to campaign ``keys[c]`` (keys sorted)."""

    keys: tuple[str, ...]
    member: npt.NDArray[np.bool_]


def among(codes: IntArray, vocabulary: Sequence[str], names: Sequence[str]) -> BoolArray:
    """Where a code names one of ``names`` (codes of ``vocabulary``; negative: none): a
    table lookup, far cheaper than ``np.isin`` for a batch of one."""
    table = np.zeros(len(vocabulary) + 2, dtype=np.bool_)  # the last two: codes -2, -1
    table[[vocabulary.index(name) for name in names]] = True
    selected: BoolArray = table[codes]
    return selected


def decide(
    policy: Policy,
    *,
    value_tier: IntArray,
    needs_tier: IntArray,
    credit_risk: IntArray,
    aml_risk: IntArray,
    kind: IntArray,
    marketing_opt_out: BoolArray,
) -> Memberships:
    """Every campaign's members among the batch (``kind``: the input's kind codes, -1
    missing, -2 unknown)."""
    risk = policy.strategy.risk
    campaigns = policy.strategy.campaigns
    keys = tuple(sorted(campaigns))
    everyone = np.ones(value_tier.shape, dtype=np.bool_)
    blocked = among(aml_risk, AML_LEVELS, risk.no_campaigns_aml)
    no_marketing = among(aml_risk, AML_LEVELS, risk.no_marketing_aml) | marketing_opt_out
    no_credit_products = among(credit_risk, RISK_LEVELS, risk.no_credit_products_credit)
    rows = []
    for key in keys:
        c = campaigns[key]
        member = (
            (among(value_tier, VALUE_TIERS, c.tiers) if c.tiers else everyone)
            & (among(needs_tier, NEEDS_TIERS, c.needs) if c.needs else everyone)
            & (among(kind, CUSTOMER_KINDS, c.kinds) if c.kinds else kind != CORPORATE)
            & (among(credit_risk, RISK_LEVELS, c.credit) if c.credit else everyone)
            & ~blocked
        )
        if c.marketing:
            member &= ~no_marketing
        if c.credit_product:
            member &= ~no_credit_products
        rows.append(member)
    matrix = np.vstack(rows) if rows else np.zeros((0, value_tier.shape[0]), dtype=np.bool_)
    return Memberships(keys, matrix)
