"""Preferred channel: how the bank should reach each customer (issue 21 §3).

Omnichannel service means meeting a customer where they already are. The recommendation
reads the customer's own activity over 90 days (digital logins, branch transactions) and
their value tier, in the order of the policy's ``[channel]`` section
(``policy_relations.ChannelPolicy``): a tier served in person gets RM visits; a frequent,
mostly digital user is served digitally; a counter customer at the branch; anyone else by
phone when their tier is called, else through digital self-service.

The channel says *how*, never *whether*: a customer who refused personalised marketing
(``consent``) gets no marketing in any channel, and the strategy applies that refusal
before it looks at the channel.
"""

from __future__ import annotations

from functools import lru_cache
from typing import get_args

import numpy as np

from tiering_core.columns import BoolArray, Columns, FloatArray
from tiering_core.models import Channel
from tiering_core.policy import Policy
from tiering_core.rules.base import VALUE_TIERS, IntArray, ReasonColumn, ge

#: The vocabulary; a channel array holds the index into it.
CHANNELS: tuple[Channel, ...] = get_args(Channel)
_DIGITAL, _PHONE, _BRANCH, _RM_VISIT = (
    CHANNELS.index(c) for c in ("digital", "phone", "branch", "rm_visit")
)


def rate(cols: Columns, policy: Policy, tier: IntArray) -> tuple[IntArray, list[ReasonColumn]]:
    """(channel codes, reasons) for a batch whose value tiers are ``tier`` (codes)."""
    n = cols.number
    return decide(n["digital_logins_90d"], n["branch_transactions_90d"], tier, policy)


def decide(
    logins: FloatArray, branch: FloatArray, tier: IntArray, policy: Policy
) -> tuple[IntArray, list[ReasonColumn]]:
    """``rate`` on the two activity counts alone (NaN: unknown), so that one customer's
    channel costs a few one-element numpy calls, not a whole ``Columns``."""
    c = policy.channel
    in_person_tiers, phone_tiers = _tier_tables(c.rm_visit_tiers, c.phone_tiers)
    in_person = in_person_tiers[tier]
    # A missing count is no evidence: it neither qualifies a channel nor dilutes the share
    # (NaN compares false, and a NaN branch count adds nothing to the activity).
    activity = np.where(np.isnan(branch), logins, logins + branch)
    digital = ge(logins, c.digital_logins_min) & ge(logins, c.digital_share_min * activity)
    digital &= ~in_person
    at_branch = ge(branch, c.branch_transactions_min) & ~(in_person | digital)
    rest = ~(in_person | digital | at_branch)
    by_phone = rest & phone_tiers[tier]
    self_service = rest & ~by_phone
    channel = np.full(tier.shape, _DIGITAL, dtype=np.int8)
    channel[in_person] = _RM_VISIT
    channel[at_branch] = _BRANCH
    channel[by_phone] = _PHONE
    return channel, [
        ReasonColumn("CH_RM_VISIT_TIER", in_person, tier, labels=VALUE_TIERS),
        ReasonColumn("CH_DIGITAL_ACTIVE", digital, logins, float(c.digital_logins_min)),
        ReasonColumn("CH_BRANCH_ACTIVE", at_branch, branch, float(c.branch_transactions_min)),
        ReasonColumn("CH_PHONE_TIER", by_phone, tier, labels=VALUE_TIERS),
        ReasonColumn("CH_SELF_SERVICE", self_service, tier, labels=VALUE_TIERS),
    ]


@lru_cache(maxsize=16)
def _tier_tables(in_person: tuple[str, ...], phone: tuple[str, ...]) -> tuple[BoolArray, BoolArray]:
    """Per tier code, whether it is served in person / by phone: a lookup, not ``isin``."""
    return (
        np.array([t in in_person for t in VALUE_TIERS], dtype=np.bool_),
        np.array([t in phone for t in VALUE_TIERS], dtype=np.bool_),
    )


#: How a customer-contact task reaches the customer in each channel (its subject's opening).
CONTACT: dict[Channel | None, str] = {
    "digital": "Message the customer in the app",
    "phone": "Call the customer",
    "branch": "Invite the customer to the branch",
    "rm_visit": "Visit the customer",
    None: "Contact the customer",
}
