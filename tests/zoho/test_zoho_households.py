"""Households read from the Zoho sandbox (issue 21 §1.1/§1.3): customer Contacts under a
household Account (``Account_Name``, with a ``Household_Role``), as the generator seeded
them; a page's households found with all their members in a few COQL queries; and the
whole chain, sandbox to tiers, lifting a household's members by its summed AUM."""

from __future__ import annotations

import math
from collections import Counter

from connectors.sandbox.households import household_links
from connectors.sandbox.zoho import zoho_customer_id
from connectors.sandbox.zoho_households import household_account_id
from connectors.zoho.client_values import ReadPage
from connectors.zoho.households import IN_LIMIT, HouseholdReader
from sync.households import NO_LINKS, expand
from tests.sync.households_chain import a_couple, assert_lifted_together, links_of_all

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
    records, links, calls = links_of_all(connector)

    assert {(lk.customer_id, lk.household_id, lk.role) for lk in links} == _expected(records)
    households = {lk.household_id for lk in links}
    # one COQL query per 50 customers, one per 50 households (each under 200 members)
    assert calls == math.ceil(len(records) / IN_LIMIT) + math.ceil(len(households) / IN_LIMIT)
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
    records, couple, members = a_couple(connector)

    before = connector.api_usage().total
    group = expand([members[0]], NO_LINKS, connector.household_links)
    assert members[1] in group.extra_ids
    assert connector.api_usage().total - before == group.reads * 2  # member's Account, members

    assert_lifted_together(records, couple, members, group.links)


class _Queries:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def query(self, select_query: str) -> ReadPage:
        self.sent.append(select_query)
        return ReadPage([], False)


def test_ids_go_into_the_in_list_quoted_as_zohos_samples_give_them() -> None:
    """Kaizen #81 "COQL API - Part II" compares record ids as quoted strings
    (``'What_Id->Leads.id' in ('4876876000000900134','4876678000000900987')``)."""
    client = _Queries()
    HouseholdReader(client)(["3477061000000123", "3477061000000456"], [])
    assert "id in ('3477061000000123', '3477061000000456')" in client.sent[0]
