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

from typing import get_args

import numpy as np

from tiering_core.columns import Columns
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
    c = policy.channel
    logins = cols.number["digital_logins_90d"]
    branch = cols.number["branch_transactions_90d"]
    in_person = np.isin(tier, _codes(c.rm_visit_tiers))
    # A missing count is no evidence: it neither qualifies a channel nor dilutes the share.
    activity = np.nan_to_num(logins) + np.nan_to_num(branch)
    share = np.divide(logins, activity, out=np.zeros_like(logins), where=activity > 0)
    digital = ~in_person & ge(logins, c.digital_logins_min) & ge(share, c.digital_share_min)
    at_branch = ~in_person & ~digital & ge(branch, c.branch_transactions_min)
    rest = ~(in_person | digital | at_branch)
    by_phone = rest & np.isin(tier, _codes(c.phone_tiers))
    self_service = rest & ~by_phone
    channel = np.select(
        [in_person, digital, at_branch, by_phone], [_RM_VISIT, _DIGITAL, _BRANCH, _PHONE], _DIGITAL
    ).astype(np.int8)
    return channel, [
        ReasonColumn("CH_RM_VISIT_TIER", in_person, tier, labels=VALUE_TIERS),
        ReasonColumn("CH_DIGITAL_ACTIVE", digital, logins, float(c.digital_logins_min)),
        ReasonColumn("CH_BRANCH_ACTIVE", at_branch, branch, float(c.branch_transactions_min)),
        ReasonColumn("CH_PHONE_TIER", by_phone, tier, labels=VALUE_TIERS),
        ReasonColumn("CH_SELF_SERVICE", self_service, tier, labels=VALUE_TIERS),
    ]


#: How a customer-contact task reaches the customer in each channel (its subject's opening).
CONTACT: dict[Channel | None, str] = {
    "digital": "Message the customer in the app",
    "phone": "Call the customer",
    "branch": "Invite the customer to the branch",
    "rm_visit": "Visit the customer",
    None: "Contact the customer",
}


def _codes(tiers: tuple[str, ...]) -> list[int]:
    return [VALUE_TIERS.index(t) for t in tiers]
