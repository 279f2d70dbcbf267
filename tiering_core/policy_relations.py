"""Policy sections about a customer's relationship with the bank: the service channel
recommended to reach them (``[channel]``, rules/channel.py), the advisor coverage that
private and wealth customers need (``[coverage]``, tiering_core/coverage.py) and the
households whose summed AUM lifts their members (``[households]``, rules/household.py).

Each ``[channel]`` and ``[coverage]`` key has a default here that equals the shipped
``default_policy.toml`` (a test holds the two, and docs/policy.md, to the same values), so
a bank's older policy file that has no such section still loads and means the documented
default. ``[households]`` has no defaults here: the built-in policy file holds them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from tiering_core.policy_base import AmlLevel, Section, TierName


class ChannelPolicy(Section):
    """Which channel reaches a customer best. In order: a tier in ``rm_visit_tiers`` is
    visited by its relationship manager; a customer with at least ``digital_logins_min``
    digital logins in 90 days, making up at least ``digital_share_min`` of their logins
    and branch transactions, is served digitally; one with ``branch_transactions_min``
    branch transactions at the branch; otherwise a tier in ``phone_tiers`` is called and
    anyone else is served digitally (self-service)."""

    rm_visit_tiers: tuple[TierName, ...] = ("private", "corporate_strategic")
    digital_logins_min: int = Field(default=12, ge=1)  # about one a week over 90 days
    digital_share_min: float = Field(default=0.6, ge=0, le=1)
    branch_transactions_min: int = Field(default=3, ge=1)  # about one a month
    phone_tiers: tuple[TierName, ...] = (
        "wealth",
        "affluent",
        "corporate_key",
        "corporate_standard",
    )


def _weights() -> dict[TierName, float]:
    return {"private": 1.0, "wealth": 0.5}


class CoveragePolicy(Section):
    """Advisor coverage. Customers of ``rm_tiers`` need a dedicated relationship manager.
    An RM's book is counted in private-equivalents: each client weighs ``weights[tier]``
    (a tier not listed weighs nothing) and a book may hold ``capacity`` of them, unless
    the CRM's user record (a mapped user field) or the config gives that RM another
    capacity. A proposal is a task to ``queue`` naming the RM (the branch or team manager
    decides), due in ``due_days``."""

    rm_tiers: tuple[TierName, ...] = ("private", "wealth")
    capacity: float = Field(default=150.0, gt=0)
    weights: dict[TierName, Annotated[float, Field(ge=0)]] = Field(default_factory=_weights)
    queue: str = Field(default="private_banking", min_length=1)
    due_days: int = Field(default=5, ge=0)

    def weight(self, tier: str) -> float:
        """Private-equivalents a client of ``tier`` takes in a book."""
        return next((float(w) for t, w in self.weights.items() if t == tier), 0.0)


#: A member's role in a household, as the connectors normalise the CRM's relationship roles.
HouseholdRole = Literal[
    "primary", "spouse", "partner", "child", "parent", "other_family", "business", "other"
]


class HouseholdPolicy(Section):
    """Household tiering (rules.household): whether a household's summed AUM lifts its
    members, which member roles count towards it, and which AML levels of any member flag
    the household for compliance review."""

    enabled: bool
    count_roles: tuple[HouseholdRole, ...]
    review_aml: tuple[AmlLevel, ...]
