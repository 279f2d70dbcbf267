"""The demo's household: one family whose summed assets lift a member into private
banking, with its reason (issue 21 §1, "the demo shows one household lifted").

The households are the CRM's own (the connector's ``household_links``: Salesforce Person
Accounts in Household accounts), read in bulk after the demo's syncs, and the members are
decided by the same core the sync uses (``decide_batch`` with ``households=``). The sync
engine does not pass households into its decisions yet (``sync/households.py`` describes
the hook), so the lift is shown here, as ``crmtier tier`` would decide it, and the summary
says it is not written back yet. The household is named by its primary member's pseudonym
(a Salesforce household is that member's Person Account), never by a name or an amount.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from connectors.contract import Connector
from tiering_core.engine import decide_batch
from tiering_core.policy import Policy
from tiering_core.privacy import pseudonym
from tiering_core.rules.household import HouseholdLinks, Link

LIFT_REASON = "HOUSEHOLD_AUM"
TARGET_TIER = "private"


@dataclass(frozen=True)
class LiftedHousehold:
    """The household shown: its pseudonym, its size, the members it lifted into private
    banking and the floor the household's AUM reached."""

    household: str  # ``cust_…``: the pseudonym of the household's primary member
    members: int
    lifted: int
    floor: float

    def line(self) -> str:
        return (
            f"Household of {self.household}: {self.lifted} of {self.members} members lifted "
            f"into {TARGET_TIER} banking, reason {LIFT_REASON} (household AUM at or above "
            f"the {self.floor:,.0f} floor)"
        )


def read_links(connector: Connector, customer_ids: Sequence[str], policy: Policy) -> list[Link]:
    """The CRM's household links of ``customer_ids`` in one bulk read; none when the
    connector reads no households or the policy switches them off."""
    read = getattr(connector, "household_links", None)
    if read is None or not policy.households.enabled or not customer_ids:
        return []
    links: list[Link] = read(customer_ids, ())
    return links


def primaries(links: Sequence[Link]) -> set[str]:
    """The households' primary members: the demo's large deposit goes to them first, so
    that their households reach private banking and lift the other members."""
    return {link.customer_id for link in links if link.role == "primary"}


def lifted_household(
    connector: Connector, links: Sequence[Link], policy: Policy, as_of: date, key: bytes
) -> LiftedHousehold | None:
    """The first household (by pseudonym) that lifts a member into private banking, or
    None (no links, or no household does). Its members are read in one bulk fetch."""
    members = sorted({link.customer_id for link in links})
    if not members:
        return None
    profiles = [r.profile for r in connector.fetch(members)]
    ids = [p.id for p in profiles]
    decided = decide_batch(
        profiles, policy, as_of, households=HouseholdLinks.build(ids, links, policy)
    )
    lifted: dict[str, list[float]] = {}
    for d in decided:
        if d["value_tier"] != TARGET_TIER:
            continue
        for reason in d["reasons"]:
            if reason["code"] == LIFT_REASON:
                lifted.setdefault(str(reason["value"]), []).append(float(reason["threshold"]))
    if not lifted:
        return None
    named = sorted((pseudonym(h, key), h) for h in lifted)
    shown, household = named[0]
    return LiftedHousehold(
        shown,
        sum(link.household_id == household for link in links),
        len(lifted[household]),
        lifted[household][0],
    )


def households_on(policy: Policy) -> Policy:
    """``policy`` with households switched on, for the demo's household line only: they are
    opt-in, so the demo's sync runs without them and the line shows what switching them
    on would lift."""
    return policy.model_copy(
        update={"households": policy.households.model_copy(update={"enabled": True})}
    )
