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
customers found, never one per customer), bounded by ``max_members`` so one unusually
connected family cannot turn a page into a full load. Households are small (most customers
single, couples, a few families of three to five), so the first read finds everyone
and a second, for the members it found, finds nobody new.

The engine's hook (sync/engine.py, between reading a page and deciding it) is one call:

    hh = households.load(connector, page_records, known, policy)  # None: off
    records = [*page_records, *hh.extra] if hh else page_records
    decide_batch([r.profile for r in records], policy, as_of,
                 households=hh.links_for([r.profile.id for r in records], policy) if hh else None)

``known`` are the links recorded at the last sync (``sync.household_store`` keeps each
customer's households beside its state and records ``hh.group`` with the page's commit).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from connectors.contract import HOUSEHOLDS_CHECK, Connector, CrmRecord, HouseholdReads, SchemaCheck
from connectors.errors import ConfigError
from tiering_core.policy import Policy
from tiering_core.rules.household import HouseholdLinks, Link

#: ``read(customers, households)``: every current link of every household that holds one of
#: ``customers`` or is one of ``households``, all their members included (one bulk read
#: per use: a few queries for the whole list, never one per customer; see the connector).
MemberReader = Callable[[Collection[str], Collection[str]], list[Link]]


class KnownLinks(Protocol):
    """The links recorded at the last sync (``sync.household_store.StoredLinks`` reads them
    from the state store; ``LinkMap`` holds them in memory)."""

    def households_of(self, customers: Collection[str]) -> set[str]:
        """The households these customers were in at the last sync."""
        ...

    def members_of(self, households: Collection[str]) -> set[str]:
        """The customers these households held at the last sync."""
        ...


@dataclass(frozen=True)
class LinkMap:
    """``KnownLinks`` over a customer -> households mapping."""

    by_customer: Mapping[str, Collection[str]]

    def households_of(self, customers: Collection[str]) -> set[str]:
        return {hid for cid in customers for hid in self.by_customer.get(cid, ())}

    def members_of(self, households: Collection[str]) -> set[str]:
        wanted = set(households)
        return {cid for cid, hids in self.by_customer.items() if wanted.intersection(hids)}


#: no links recorded (a first sync, or households read for the first time)
NO_LINKS = LinkMap({})


@dataclass(frozen=True)
class HouseholdGroup:
    """The outcome of ``expand``: the households found, every current link of their
    members, the customers outside the page that must be loaded and re-tiered, and whether
    ``max_members`` cut the expansion short (the remaining members keep their last tier
    until their own change or the next full sync).

    ``queried`` are the customers whose every current household was read, ``checked`` the
    households whose every current member was: what the CRM says of them replaces what
    the store recorded (``sync.household_store.save_links``)."""

    households: frozenset[str]
    links: tuple[Link, ...]
    extra_ids: frozenset[str]
    truncated: bool
    reads: int  # MemberReader calls made
    queried: frozenset[str] = frozenset()
    checked: frozenset[str] = frozenset()


def expand(
    page_ids: Collection[str],
    known: KnownLinks,
    read: MemberReader,
    *,
    max_members: int = 500,
) -> HouseholdGroup:
    """The page's households now and at the last sync, with all their members; then each
    newly found member's other households (a member in two households takes the better),
    one bulk read per hop, until no new member appears or ``max_members`` customers
    outside the page have been found.

    What the last sync recorded widens each hop at no API cost: the households a customer
    was in are read with it (leaving one lowers its others), and a member a household held
    then but not now is re-tiered (it lost the household's AUM, and the household its own;
    so is one that left without a change of its own record, when another member changes)."""
    page = frozenset(page_ids)
    links: dict[tuple[str, str], Link] = {}
    customers: set[str] = set(page)
    households: set[str] = known.households_of(page)
    queried: set[str] = set()
    checked: set[str] = set()
    extra: set[str] = set()
    reads = 0
    truncated = False
    while customers or households:
        if len(extra) >= max_members:
            truncated = True
            break
        found = read(sorted(customers), sorted(households))
        reads += 1
        queried |= customers
        for link in found:
            links[(link.customer_id, link.household_id)] = link
        now = ({link.household_id for link in found} | households) - checked
        checked |= now
        members = {lk.customer_id for lk in links.values() if lk.household_id in now}
        gone = known.members_of(now) - members  # left since the last sync
        new = (members | gone) - page - extra
        extra |= new
        customers, households = new, known.households_of(new) - checked
    return HouseholdGroup(
        frozenset(link.household_id for link in links.values()),
        tuple(links.values()),
        frozenset(extra),
        truncated,
        reads,
        frozenset(queried),
        frozenset(checked),
    )


def current_links(links: Iterable[Link]) -> dict[str, frozenset[str]]:
    """Customer -> households, as ``LinkMap`` takes them."""
    out: dict[str, set[str]] = defaultdict(set)
    for link in links:
        out[link.customer_id].add(link.household_id)
    return {cid: frozenset(h) for cid, h in out.items()}


@dataclass(frozen=True)
class HouseholdPage:
    """A page's household context: the members loaded beside the page, every link among
    them, and each customer's households as they are now."""

    extra: list[CrmRecord]
    group: HouseholdGroup

    @property
    def known(self) -> dict[str, frozenset[str]]:
        return current_links(self.group.links)

    def links_for(self, customer_ids: Sequence[str], policy: Policy) -> HouseholdLinks:
        """The links as columns over the batch about to be decided (page, then extra)."""
        return HouseholdLinks.build(customer_ids, self.group.links, policy)


def load(
    connector: Connector,
    records: Sequence[CrmRecord],
    known: KnownLinks,
    policy: Policy,
    *,
    at_hand: Collection[str] = (),
    max_members: int = 500,
) -> HouseholdPage | None:
    """The household context of ``records`` (a page's changed customers), or None when
    the policy turns households off (no API call is spent on them then). Extra members
    come in one bulk ``fetch``, but for those ``at_hand`` (read with the page already).
    A connector that reads no households while the policy turns them on is a
    ``ConfigError``: tiering without them would skip what the policy asks for."""
    if not policy.households.enabled:
        return None
    if not isinstance(connector, HouseholdReads):
        raise ConfigError(f"{_ON} {_NO_READS} ({_DISABLE})")
    page_ids = [r.profile.id for r in records]
    group = expand(page_ids, known, connector.household_links, max_members=max_members)
    wanted = sorted(group.extra_ids - frozenset(at_hand))
    extra = connector.fetch(wanted) if wanted else []
    return HouseholdPage(extra, group)


_ON = "households are on in the policy, but"
_NO_READS = "this CRM's connector reads no households"
_DISABLE = "set [households] enabled = false in the policy"


def readiness(connector: Connector, policy: Policy) -> SchemaCheck | None:
    """What households need in the CRM, checked before anything relies on it: None when
    the policy turns them off (no call), else the connector's ``household_check`` line
    (one cheap call; docs/households.md lists each CRM's prerequisites and its vendor
    sources). ``crmtier doctor`` prints the line; ``crmtier sync`` and ``serve`` refuse to
    start on a failed one (``require``)."""
    if not policy.households.enabled:
        return None
    if not isinstance(connector, HouseholdReads):
        return SchemaCheck(HOUSEHOLDS_CHECK, False, _NO_READS, _DISABLE)
    return connector.household_check()


def require(connector: Connector, policy: Policy) -> None:
    """``readiness``, as a start-up gate: a missing prerequisite is a ``ConfigError`` of
    one line naming it and its fix (the command exits 2), never a run without households."""
    check = readiness(connector, policy)
    if check is not None and not check.ok:
        other = "" if check.fix == _DISABLE else f" (or {_DISABLE})"
        raise ConfigError(f"{_ON} {check.detail}: {check.fix}{other}")
