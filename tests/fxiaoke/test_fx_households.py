"""Households read from the FXiaoke sandbox (issue 21 §1.1/§1.3): member contacts
(``ContactObj``) under the household's customer, as the generator seeded them (a member of
two households included); a page's households found with all their members in a few bulk
queries; and the whole chain, sandbox to tiers, lifting a household's members by its
summed AUM."""

from __future__ import annotations

import math
from collections import Counter

from connectors.fxiaoke.query import PAGE_LIMIT
from connectors.sandbox.generator import customer_id
from connectors.sandbox.households import household_links
from sync.households import NO_LINKS, expand
from tests.sync.households_chain import a_couple, assert_lifted_together, links_of_all

CUSTOMERS = 300


def test_seeded_households_read_back_as_generated(make_sandbox, connect) -> None:
    connector = connect(make_sandbox(CUSTOMERS))
    records, links, calls = links_of_all(connector)

    index = {customer_id(i): i for i in range(CUSTOMERS)}
    individuals = sorted(index[r.profile.id] for r in records if r.profile.kind != "corporate")
    expected = {
        (customer_id(lk.member), customer_id(lk.household), lk.role)
        for lk in household_links(individuals)
    }
    assert {(lk.customer_id, lk.household_id, lk.role) for lk in links} == expected
    households = {lk.household_id for lk in links}
    members = Counter(lk.household_id for lk in links)
    # one query per 100 customers, then per 100 households (a page of 100 member rows
    # each, and one more call whenever a page comes back full)
    least = math.ceil(len(records) / PAGE_LIMIT) + math.ceil(len(households) / PAGE_LIMIT)
    assert least <= calls <= least + math.ceil(sum(members.values()) / PAGE_LIMIT)
    sizes = Counter(members.values())
    assert sizes[2] > sizes[3] > 0  # couples outnumber families


def test_a_member_of_two_households_is_read_in_both(make_sandbox, connect) -> None:
    connector = connect(make_sandbox(2_000))
    ids = [r.profile.id for page in connector.read_changed(None) for r in page.records]
    links = connector.household_links(ids, [])
    twice = next(c for c, n in Counter(lk.customer_id for lk in links).items() if n == 2)
    both = {lk.household_id for lk in links if lk.customer_id == twice}

    before = connector.api_usage().total
    alone = connector.household_links([twice], [])
    assert {lk.household_id for lk in alone} == both
    assert {lk for lk in links if lk.household_id in both} == set(alone)
    assert connector.api_usage().total - before == 2  # its households, then their members


def test_page_change_pulls_in_the_household_and_lifts_it(make_sandbox, connect) -> None:
    connector = connect(make_sandbox(CUSTOMERS))
    records, couple, members = a_couple(connector)

    before = connector.api_usage().total
    group = expand([members[0]], NO_LINKS, connector.household_links)
    assert members[1] in group.extra_ids
    assert connector.api_usage().total - before == group.reads * 2

    assert_lifted_together(records, couple, members, group.links)
