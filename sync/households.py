"""Which customers a page's household changes pull in, so a change to one member re-tiers
its whole household within the minimum of API calls.

A household's tier is the sum of its members' AUM (tiering_core.rules.household), so a
page that changes one member must be tiered together with every other member of each
household the change touches, and those members' tiers rewritten. The household is touched
when the changed customer is in it now or was in it at the last sync: joining a household
lifts the others, leaving one lowers them, and a split (members moved to a new household
id) touches both the old and the new household.

A member in two households takes the best of them, so tiering it needs the members of its
other household too: ``expand`` follows the household graph to its connected component,
each hop one bulk relationship read (``MemberReader``: one read per hop for all the
households found, never one per customer), bounded by ``max_members`` so one unusually
connected family cannot turn a page into a full load. Households are small (most customers
single, couples, a few families of three to five), so the component is usually the
households of the page's customers and one hop ends it.

The engine's hook (sync/engine.py, between reading a page and deciding it):

    group = households.expand(page_ids, page_links, known_links, connector.household_members)
    extra = connector.fetch(sorted(group.extra_ids))  # one bulk read by id
    links = HouseholdLinks.build([*page_ids, *extra_ids], group.links, policy)
    decide_batch(page_profiles + extra_profiles, policy, as_of, households=links)

``known_links`` are the links recorded at the last sync (the state store keeps each
customer's households beside its state); ``group.links`` are what to record after this one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from tiering_core.rules.household import Link

#: Reads every current link of every member of the given households, the members' other
#: households included (a bulk CRM read per use, e.g. two SOQL queries: see the connector).
MemberReader = Callable[[Collection[str]], list[Link]]


@dataclass(frozen=True)
class HouseholdGroup:
    """The outcome of ``expand``: the households touched, every current link of their
    members, the customers outside the page that must be loaded and re-tiered, and whether
    ``max_members`` cut the expansion short (the remaining members keep their last tier
    until their own change or the next full sync)."""

    households: frozenset[str]
    links: tuple[Link, ...]
    extra_ids: frozenset[str]
    truncated: bool
    reads: int  # MemberReader calls made


def touched(
    page_ids: Iterable[str],
    page_links: Iterable[Link],
    known_links: Mapping[str, Collection[str]],
) -> frozenset[str]:
    """Households a page touches: each page customer's households now and at the last
    sync (a member who left still changes the household it left)."""
    found = {link.household_id for link in page_links}
    for cid in page_ids:
        found.update(known_links.get(cid, ()))
    return frozenset(found)


def expand(
    page_ids: Collection[str],
    page_links: Iterable[Link],
    known_links: Mapping[str, Collection[str]],
    read_members: MemberReader,
    *,
    max_members: int = 500,
) -> HouseholdGroup:
    """Follow the touched households to every member and each member's other households,
    one bulk read per hop, until no new household appears or ``max_members`` customers
    outside the page have been found."""
    page = frozenset(page_ids)
    links: dict[tuple[str, str], Link] = {}
    for link in page_links:
        links[(link.customer_id, link.household_id)] = link
    pending = set(touched(page, links.values(), known_links))
    done: set[str] = set()
    extra: set[str] = set()
    reads = 0
    truncated = False
    while pending:
        if len(extra) >= max_members:
            truncated = True
            break
        found = read_members(sorted(pending))
        reads += 1
        done |= pending
        members_of: dict[str, set[str]] = defaultdict(set)
        for link in found:
            links[(link.customer_id, link.household_id)] = link
            members_of[link.customer_id].add(link.household_id)
        new_members = set(members_of) - page - extra
        extra |= new_members
        # a newly found member's other households decide its tier too: read them next
        pending = {
            hid
            for cid in new_members
            for hid in (*members_of[cid], *known_links.get(cid, ()))
            if hid not in done
        }
    return HouseholdGroup(
        frozenset(done),
        tuple(links.values()),
        frozenset(extra),
        truncated,
        reads,
    )


def current_links(links: Iterable[Link]) -> dict[str, frozenset[str]]:
    """Customer -> households, the form ``known_links`` takes at the next sync."""
    out: dict[str, set[str]] = defaultdict(set)
    for link in links:
        out[link.customer_id].add(link.household_id)
    return {cid: frozenset(h) for cid, h in out.items()}
