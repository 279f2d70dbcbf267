"""Household links in the state store: what the sync last read of each customer's households.

The sync reads a page's households from the CRM (``sync.households``) and records them here
in the page's commit, so the next run knows which household a customer was in: a member
leaving a household, or a household split, re-tiers the household it left in the same run,
and a member the CRM no longer lists in a household is re-tiered when another member
changes. ``crmtier simulate`` and ``crmtier explain`` decide households from these links
without a CRM call.

What one read says replaces what the store recorded, and only that: the households of the
customers whose households were all read (``HouseholdGroup.queried``), and the members of
the households whose members were all read (``HouseholdGroup.checked``). A customer the
run did not read keeps its recorded links.

The links are complete (every customer's households as the sync decides with them) only
after a full run with households on has read every customer, and only while every run
since has read them too: ``mark_complete`` records that in ``meta``; a run with households
off clears it, and simulate and explain say so when they cannot rely on the links.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa

from sync.bulkwrite import insert_rows
from sync.households import HouseholdGroup
from sync.inputs import StoredChunk, iter_chunks
from sync.schema import household_links, meta, now_text
from sync.store import StateStore
from tiering_core.policy import Policy
from tiering_core.rules.household import HouseholdLinks, Link

_CHUNK = 500
#: ``meta`` key prefix: the stream's links are complete (``mark_complete``)
COMPLETE_META = "household_links_complete:"


def _chunks(values: Collection[str]) -> Iterator[list[str]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def _links(
    conn: sa.Connection, stream: str, column: sa.Column[str], ids: Iterable[str]
) -> list[Link]:
    t = household_links.c
    out: list[Link] = []
    for chunk in _chunks(list(ids)):
        rows = conn.execute(
            sa.select(t.customer_id, t.household_id, t.role).where(
                t.stream == stream, column.in_(chunk)
            )
        ).tuples()
        out += [Link(cid, hid, role) for cid, hid, role in rows]
    return out


def links_of_customers(conn: sa.Connection, stream: str, ids: Iterable[str]) -> list[Link]:
    """The recorded links of these customers."""
    return _links(conn, stream, household_links.c.customer_id, ids)


def links_of_households(conn: sa.Connection, stream: str, ids: Iterable[str]) -> list[Link]:
    """Every recorded member link of these households."""
    return _links(conn, stream, household_links.c.household_id, ids)


def links_near(conn: sa.Connection, stream: str, ids: Collection[str]) -> list[Link]:
    """Every recorded link of every household one of these customers is in: what deciding
    them with their households needs (two indexed queries a chunk of ids)."""
    households = {link.household_id for link in links_of_customers(conn, stream, ids)}
    return links_of_households(conn, stream, households)


class StoredLinks:
    """``sync.households.KnownLinks`` over the store (one short transaction a lookup)."""

    def __init__(self, store: StateStore, stream: str) -> None:
        self.store, self.stream = store, stream

    def households_of(self, customers: Collection[str]) -> set[str]:
        if not customers:
            return set()
        with self.store.begin() as conn:
            return {lk.household_id for lk in links_of_customers(conn, self.stream, customers)}

    def members_of(self, households: Collection[str]) -> set[str]:
        if not households:
            return set()
        with self.store.begin() as conn:
            return {lk.customer_id for lk in links_of_households(conn, self.stream, households)}


def save_links(conn: sa.Connection, stream: str, group: HouseholdGroup, run_id: str) -> None:
    """Record what ``group`` read: the links of its queried customers and checked
    households are replaced by the current ones (a customer that left every household
    keeps none), in bulk, in the caller's (the page's) transaction."""
    t = household_links.c
    for chunk in _chunks(group.queried):
        conn.execute(household_links.delete().where(t.stream == stream, t.customer_id.in_(chunk)))
    for chunk in _chunks(group.checked):
        conn.execute(household_links.delete().where(t.stream == stream, t.household_id.in_(chunk)))
    now = now_text()
    rows: Sequence[tuple[str, ...]] = sorted(
        {
            (stream, lk.customer_id, lk.household_id): (
                stream,
                lk.customer_id,
                lk.household_id,
                lk.role,
                run_id,
                now,
            )
            for lk in group.links
        }.values()
    )
    insert_rows(
        conn,
        household_links,
        ("stream", "customer_id", "household_id", "role", "run_id", "updated_at"),
        rows,
    )


def _meta_key(stream: str) -> str:
    return COMPLETE_META + stream


def mark_complete(store: StateStore, stream: str, complete: bool) -> None:
    """Record whether the stream's links are complete (see the module's docstring)."""
    with store.begin() as conn:
        store.meta_put(conn, _meta_key(stream), "yes" if complete else "")


def settle(
    store: StateStore, stream: str, policy: Policy, *, read_all: bool, succeeded: bool
) -> None:
    """At the end of a run: the links are complete after a run with households on that
    read every customer and succeeded, and no longer after a run with them off (it kept
    none). Nothing is written when nothing changes."""
    if policy.households.enabled:
        if read_all and succeeded:
            mark_complete(store, stream, True)
        return
    with store.begin() as conn:
        complete = is_complete(conn, stream)
    if complete:
        mark_complete(store, stream, False)


def is_complete(conn: sa.Connection, stream: str) -> bool:
    """Whether a full run with households on has read every customer's links, and every
    run since has kept them."""
    value = conn.execute(sa.select(meta.c.value).where(meta.c.key == _meta_key(stream))).scalar()
    return value == "yes"


class StoredHouseholds:
    """The households of stored customers, as ``crmtier simulate`` and ``explain`` decide
    them: the recorded links, and the other members' stored inputs (no CRM call)."""

    def __init__(self, store: StateStore, stream: str) -> None:
        self.store, self.stream = store, stream

    def near(self, ids: Collection[str]) -> list[Link]:
        """Every recorded link of every household one of ``ids`` is in."""
        with self.store.begin() as conn:
            return links_near(conn, self.stream, ids)

    def customers(self, ids: Sequence[str]) -> list[StoredChunk]:
        """The stored customers ``ids`` (those the store holds inputs of)."""
        step = 5_000  # bound parameters a query
        return [
            chunk
            for start in range(0, len(ids), step)
            for chunk in iter_chunks(self.store, self.stream, ids=ids[start : start + step])
        ]


class HouseholdSource(Protocol):
    """Recorded household links and the stored customers they name
    (``sync.household_store.StoredHouseholds``)."""

    def near(self, ids: Collection[str]) -> list[Link]: ...

    def customers(self, ids: Sequence[str]) -> list[StoredChunk]: ...


@dataclass(frozen=True)
class Near:
    """A chunk with the other members of its customers' households after it, and the
    links among them (as the state store recorded them, ``sync.household_store``): what
    deciding the chunk as the sync does needs. Without households, the chunk alone."""

    chunk: StoredChunk
    recorded: tuple[Link, ...] = ()
    households: bool = False

    @classmethod
    def of(cls, chunk: StoredChunk, source: HouseholdSource | None) -> Near:
        if source is None:
            return cls(chunk)
        recorded = source.near(chunk.ids)
        inside = set(chunk.ids)
        outside = sorted({lk.customer_id for lk in recorded} - inside)
        if outside:
            chunk = StoredChunk.joined(chunk, source.customers(outside))
        return cls(chunk, tuple(recorded), True)

    def links(self, policy: Policy, ids: Sequence[str] | None = None) -> HouseholdLinks | None:
        """The links over ``ids`` (default: the whole chunk) as ``policy`` counts them;
        None when it switches households off (as the sync passes none then)."""
        if not (self.households and policy.households.enabled):
            return None
        return HouseholdLinks.build(self.chunk.ids if ids is None else ids, self.recorded, policy)

    def beside(self, rows: list[int]) -> list[int]:
        """``rows``, then the other rows of their households' members."""
        if not self.recorded:
            return rows
        ids = self.chunk.ids
        wanted = {ids[i] for i in rows}
        households = {lk.household_id for lk in self.recorded if lk.customer_id in wanted}
        members = {lk.customer_id for lk in self.recorded if lk.household_id in households}
        at = {cid: i for i, cid in enumerate(ids)}
        return rows + sorted(at[c] for c in members - wanted if c in at)
