"""The households chain on a CRM's connector, sandbox to tiers: every customer's links
read at once; a couple's other member pulled into the batch when one member changes, and
both lifted to private banking by their summed AUM. Each CRM's household tests
(tests/salesforce, tests/zoho, tests/fxiaoke) run it; what differs between them (how the
seed is laid out in the CRM, what the reads cost) they check themselves.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from connectors.contract import CrmRecord
from tiering_core.engine import decide_batch
from tiering_core.models import CustomerProfile
from tiering_core.policy import policy_over_default
from tiering_core.rules.household import HouseholdLinks

#: the shipped policy with households switched on (they are opt-in)
ON = policy_over_default({"households": {"enabled": True}})


def links_of_all(connector: Any) -> tuple[list[CrmRecord], list[Any], int]:
    """Every record the connector reads, the household links of them all, and the API
    calls reading those links took."""
    records = [r for page in connector.read_changed(None) for r in page.records]
    before = connector.api_usage().total
    links = connector.household_links([r.profile.id for r in records], [])
    return records, links, connector.api_usage().total - before


def a_couple(connector: Any) -> tuple[dict[str, CrmRecord], str, list[str]]:
    """Every record the connector reads, by id; and the first household of exactly two
    members: its id and its members' ids, sorted."""
    records = {r.profile.id: r for page in connector.read_changed(None) for r in page.records}
    links = connector.household_links(list(records), [])
    couple = next(h for h, n in Counter(lk.household_id for lk in links).items() if n == 2)
    members = sorted(lk.customer_id for lk in links if lk.household_id == couple)
    return records, couple, members


def assert_lifted_together(
    records: dict[str, CrmRecord], couple: str, members: list[str], links: Any
) -> None:
    """With 350万 each (wealth alone), both members are private banking by the couple's
    700万, and each says so with a ``HOUSEHOLD_AUM`` reason naming the household."""
    profiles = []
    for cid in members:
        assets = {"deposits": 3_500_000.0, "investments": 0.0, "insurance": 0.0}
        data = {**records[cid].profile.model_dump(), "aum_avg_3m": None, "assets": assets}
        profiles.append(CustomerProfile.model_validate(data))
    hh = HouseholdLinks.build(members, links, ON)
    decided = decide_batch(profiles, ON, date(2026, 11, 28), households=hh)
    for d in decided:
        assert d["value_tier"] == "private"
        assert couple in {r["value"] for r in d["reasons"] if r["code"] == "HOUSEHOLD_AUM"}
