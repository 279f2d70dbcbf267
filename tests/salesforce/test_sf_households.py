"""Households read from the Salesforce sandbox (issue 21 §1.1/§1.3): Person Accounts related
by AccountContactRelation, as the generator seeded them; a page's households found with
all their members in a few bulk queries; and the whole chain, sandbox to tiers, lifting a
household's members by its summed AUM."""

from __future__ import annotations

from collections import Counter
from datetime import date

from connectors.sandbox.households import household_links
from sync import households
from sync.households import NO_LINKS, expand
from tests.sync.households_chain import ON, a_couple, assert_lifted_together, links_of_all
from tiering_core.engine import decide_batch
from tiering_core.policy import policy_over_default

CUSTOMERS = 300


def test_seeded_households_read_back_as_generated(sandbox_factory, connect) -> None:
    sandbox = sandbox_factory("salesforce", customers=CUSTOMERS)
    connector = connect(sandbox)
    records, links, calls = links_of_all(connector)
    assert calls <= 4 * 2  # four queries per 200 ids: 300 ids are two chunks

    individuals = [r.profile.id for r in records if r.profile.kind != "corporate"]
    index = {sandbox.customer_id(i): i for i in range(CUSTOMERS)}
    expected = {
        (sandbox.customer_id(lk.member), sandbox.customer_id(lk.household), lk.role)
        for lk in household_links(sorted(index[i] for i in individuals))
    }
    assert {(lk.customer_id, lk.household_id, lk.role) for lk in links} == expected
    sizes = Counter(Counter(lk.household_id for lk in links).values())
    assert sizes[2] > sizes[3] > 0  # couples outnumber families


def test_page_change_pulls_in_the_household_and_lifts_it(sandbox_factory, connect) -> None:
    sandbox = sandbox_factory("salesforce", customers=CUSTOMERS)
    connector = connect(sandbox)
    records, couple, members = a_couple(connector)
    changed = members[0]

    group = expand([changed], NO_LINKS, connector.household_links)
    assert members[1] in group.extra_ids
    assert group.reads <= 3

    assert_lifted_together(records, couple, members, group.links)


def test_load_brings_the_other_members_in_one_fetch(sandbox_factory, connect) -> None:
    sandbox = sandbox_factory("salesforce", customers=CUSTOMERS)
    connector = connect(sandbox)
    records = {r.profile.id: r for page in connector.read_changed(None) for r in page.records}
    links = connector.household_links(list(records), [])
    family = next(h for h, n in Counter(lk.household_id for lk in links).items() if n >= 3)
    members = {lk.customer_id for lk in links if lk.household_id == family}
    changed = records[sorted(members)[-1]]

    before = connector.api_usage().total
    off = policy_over_default({"households": {"enabled": False}})
    assert households.load(connector, [changed], NO_LINKS, off) is None
    assert connector.api_usage().total == before  # households off: no call spent
    hh = households.load(connector, [changed], NO_LINKS, ON)
    assert hh is not None
    assert {r.profile.id for r in hh.extra} >= members - {changed.profile.id}
    assert connector.api_usage().total - before <= 3 * 4 + 1  # reads per hop, one fetch
    assert family in hh.known[changed.profile.id]
    batch = [changed, *hh.extra]
    ids = [r.profile.id for r in batch]
    decided = decide_batch(
        [r.profile for r in batch],
        ON,
        date(2026, 11, 28),
        households=hh.links_for(ids, ON),
    )
    assert len(decided) == len(batch)
