"""Households read from the Zoho sandbox (issue 21 §1.1/§1.3): customer Contacts under a
household Account (``Account_Name``, with a ``Household_Role``), as the generator seeded
them; a page's households found with all their members in a few COQL queries; and the
whole chain, sandbox to tiers, lifting a household's members by its summed AUM."""

from __future__ import annotations

import math
from collections import Counter
from datetime import date

from connectors.sandbox.households import household_links
from connectors.sandbox.zoho import zoho_customer_id
from connectors.sandbox.zoho_households import household_account_id
from connectors.zoho.households import IN_LIMIT
from sync.households import NO_LINKS, expand
from tiering_core.engine import decide_batch
from tiering_core.models import CustomerProfile
from tiering_core.policy import policy_over_default
from tiering_core.rules.household import HouseholdLinks

CUSTOMERS = 300


def _expected(records) -> set[tuple[str, str, str]]:
    """The seeded links as Zoho holds them: a Contact has one Account, so a member of
    two generated households stays in its first."""
    index = {zoho_customer_id(i): i for i in range(CUSTOMERS)}
    individuals = sorted(index[r.profile.id] for r in records if r.profile.kind != "corporate")
    out, placed = set(), set()
    for lk in household_links(individuals):
        if lk.member not in placed:
            placed.add(lk.member)
            out.add((zoho_customer_id(lk.member), household_account_id(lk.household), lk.role))
    return out


def test_seeded_households_read_back_as_generated(sandbox_factory, connect) -> None:
    sandbox = sandbox_factory("zoho", customers=CUSTOMERS)
    connector = connect(sandbox)
    records = [r for page in connector.read_changed(None) for r in page.records]
    ids = [r.profile.id for r in records]
    before = connector.api_usage().total
    links = connector.household_links(ids, [])
    calls = connector.api_usage().total - before

    assert {(lk.customer_id, lk.household_id, lk.role) for lk in links} == _expected(records)
    households = {lk.household_id for lk in links}
    # one COQL query per 50 customers, one per 50 households (each under 200 members)
    assert calls == math.ceil(len(ids) / IN_LIMIT) + math.ceil(len(households) / IN_LIMIT)
    sizes = Counter(Counter(lk.household_id for lk in links).values())
    assert sizes[2] > sizes[3] > 0  # couples outnumber families


def test_a_household_is_read_by_its_account_and_by_any_member(sandbox_factory, connect) -> None:
    sandbox = sandbox_factory("zoho", customers=CUSTOMERS)
    connector = connect(sandbox)
    ids = [r.profile.id for page in connector.read_changed(None) for r in page.records]
    links = connector.household_links(ids, [])
    family = next(h for h, n in Counter(lk.household_id for lk in links).items() if n >= 3)
    members = {lk for lk in links if lk.household_id == family}

    before = connector.api_usage().total
    assert set(connector.household_links([], [family])) == members
    assert set(connector.household_links([max(lk.customer_id for lk in members)], [])) == members
    assert connector.api_usage().total - before == 1 + 2
    assert connector.household_links(["not-a-zoho-id"], ["nor-this"]) == []


def test_page_change_pulls_in_the_household_and_lifts_it(sandbox_factory, connect) -> None:
    sandbox = sandbox_factory("zoho", customers=CUSTOMERS)
    connector = connect(sandbox)
    records = {r.profile.id: r for page in connector.read_changed(None) for r in page.records}
    links = connector.household_links(list(records), [])
    couple = next(h for h, n in Counter(lk.household_id for lk in links).items() if n == 2)
    members = sorted(lk.customer_id for lk in links if lk.household_id == couple)

    before = connector.api_usage().total
    group = expand([members[0]], NO_LINKS, connector.household_links)
    assert members[1] in group.extra_ids
    assert connector.api_usage().total - before == group.reads * 2  # member's Account, members

    policy = policy_over_default({"households": {"enabled": True}})
    profiles = []
    for cid in members:
        assets = {"deposits": 3_500_000.0, "investments": 0.0, "insurance": 0.0}
        data = {**records[cid].profile.model_dump(), "aum_avg_3m": None, "assets": assets}
        profiles.append(CustomerProfile.model_validate(data))
    hh = HouseholdLinks.build(members, group.links, policy)
    decided = decide_batch(profiles, policy, date(2026, 11, 28), households=hh)
    for d in decided:
        assert d["value_tier"] == "private"  # 350万 each, 700万 together
        assert couple in {r["value"] for r in d["reasons"] if r["code"] == "HOUSEHOLD_AUM"}
