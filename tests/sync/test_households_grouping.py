"""sync.households.expand: which customers a page's household changes pull in (issue 21
§1.3): a member joining or leaving a household, a household split, a member in two
households, and the bound on one unusually connected family. The CRM here is a list of
links; the reader counts its calls (one bulk read per hop, never one per customer)."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from sync.households import NO_LINKS, LinkMap, current_links, expand
from tiering_core.rules.household import Link


class Crm:
    """Current relationships; ``read`` answers as a connector's bulk member read does."""

    def __init__(self, links: list[Link]) -> None:
        self.links = links
        self.calls: list[list[str]] = []

    def read(self, customers: Collection[str], households: Collection[str]) -> list[Link]:
        self.calls.append(sorted(customers))
        wanted = {lk.household_id for lk in self.links if lk.customer_id in customers}
        wanted |= set(households)
        return [lk for lk in self.links if lk.household_id in wanted]


def L(cid: str, hid: str, role: str = "spouse") -> Link:
    return Link(cid, hid, role)


# (current CRM links, links known at the last sync, page, expected extra ids, households)
CASES = {
    "single customer, no household": ([], {}, {"A"}, set(), set()),
    "couple, one changes": (
        [L("A", "H"), L("B", "H")],
        {"A": {"H"}, "B": {"H"}},
        {"A"},
        {"B"},
        {"H"},
    ),
    "member joins: the household's others re-tier": (
        [L("A", "H"), L("B", "H"), L("C", "H")],
        {"A": {"H"}, "B": {"H"}},
        {"C"},
        {"A", "B"},
        {"H"},
    ),
    "member leaves: the household it left re-tiers": (
        [L("A", "H"), L("B", "H")],
        {"A": {"H"}, "B": {"H"}, "C": {"H"}},
        {"C"},
        {"A", "B"},
        {"H"},
    ),
    "split: old and new households re-tier": (
        [L("A", "H"), L("B", "H"), L("C", "H2"), L("D", "H2")],
        {"A": {"H"}, "B": {"H"}, "C": {"H"}, "D": {"H"}},
        {"C", "D"},
        {"A", "B"},
        {"H", "H2"},
    ),
    "member in two households: both re-tier, and each one's members": (
        [L("P", "OWN"), L("Q", "OWN"), L("P", "CHILD", "parent"), L("S", "CHILD")],
        {"P": {"OWN", "CHILD"}, "Q": {"OWN"}, "S": {"CHILD"}},
        {"P"},
        {"Q", "S"},
        {"OWN", "CHILD"},
    ),
    "a found member's other household is read on the next hop": (
        [L("A", "H"), L("B", "H"), L("B", "H2"), L("C", "H2")],
        {},
        {"A"},
        {"B", "C"},
        {"H", "H2"},
    ),
    "a member gone without a change of its own re-tiers when another member changes": (
        [L("A", "H"), L("B", "H")],
        {"A": {"H"}, "B": {"H"}, "C": {"H"}},
        {"A"},
        {"B", "C"},
        {"H"},
    ),
    "a found member's former household is read with it": (
        [L("A", "H"), L("B", "H"), L("D", "OLD")],
        {"A": {"H"}, "B": {"H", "OLD"}, "D": {"OLD"}},
        {"A"},
        {"B", "D"},
        {"H", "OLD"},
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_expand(name: str) -> None:
    links, known, page, extra, households = CASES[name]
    crm = Crm(links)
    group = expand(page, LinkMap(known), crm.read)
    assert group.extra_ids == extra, name
    assert group.households == households, name
    assert not group.truncated
    assert group.reads == len(crm.calls) <= 3  # one bulk read per hop
    # every member of every touched household is in the group's links
    members = {lk.customer_id for lk in links if lk.household_id in households}
    assert members <= {lk.customer_id for lk in group.links}
    # what the store records after it: every customer read, every household checked
    assert group.queried == page | extra
    assert group.checked >= households | LinkMap(known).households_of(page)


def test_singles_cost_one_read() -> None:
    crm = Crm([])
    group = expand({"A", "B"}, NO_LINKS, crm.read)
    assert len(crm.calls) == 1 and group.extra_ids == frozenset()


def test_one_read_per_hop_for_a_whole_page() -> None:
    links = [L(f"C{i}", f"H{i // 2}") for i in range(200)]  # 100 couples
    crm = Crm(links)
    page = {f"C{i}" for i in range(0, 200, 2)}  # one spouse of each couple
    group = expand(page, NO_LINKS, crm.read)
    assert len(crm.calls) == 2  # the page's households; then the spouses' others (none)
    assert len(group.extra_ids) == 100


def test_max_members_bounds_a_chain() -> None:
    # a chain of households each sharing a member with the next
    links = [L(f"C{i}", f"H{i}") for i in range(50)] + [L(f"C{i + 1}", f"H{i}") for i in range(49)]
    crm = Crm(links)
    group = expand({"C0"}, NO_LINKS, crm.read, max_members=5)
    assert group.truncated
    assert len(group.extra_ids) <= 6


def test_current_links_round_trip_through_a_link_map() -> None:
    links = [L("A", "H"), L("A", "H2"), L("B", "H")]
    known = current_links(links)
    assert known == {"A": frozenset({"H", "H2"}), "B": frozenset({"H"})}
    assert LinkMap(known).households_of({"A"}) == {"H", "H2"}
    assert LinkMap(known).members_of({"H"}) == {"A", "B"}
