"""sync.household_store on both backends: what one household read replaces of the recorded
links and what it keeps, the lookups the next run and simulate/explain make, the
completeness mark, and the family role encrypted with the store's key."""

from __future__ import annotations

import secrets
from pathlib import Path

import sqlalchemy as sa

from sync.crypto import StoreCipher
from sync.household_store import (
    StoredLinks,
    is_complete,
    links_near,
    mark_complete,
    save_links,
)
from sync.households import HouseholdGroup
from sync.schema import household_links
from sync.store import StateStore
from tiering_core.rules.household import Link

STREAM = "memory:customers"


def group(links: list[Link], queried: set[str], checked: set[str]) -> HouseholdGroup:
    return HouseholdGroup(
        frozenset(lk.household_id for lk in links),
        tuple(links),
        frozenset(),
        False,
        1,
        frozenset(queried),
        frozenset(checked),
    )


def recorded(store: StateStore) -> set[tuple[str, str, str]]:
    t = household_links.c
    with store.begin() as conn:
        rows = conn.execute(
            sa.select(t.customer_id, t.household_id, t.role).where(t.stream == STREAM)
        )
        return set(rows.tuples())


def test_a_read_replaces_what_it_covers_and_keeps_the_rest(store: StateStore) -> None:
    first = [Link("A", "H", "primary"), Link("B", "H", "spouse"), Link("P", "K", "parent")]
    with store.begin() as conn:
        save_links(conn, STREAM, group(first, {"A", "B", "P"}, {"H", "K"}), "run-1")
    assert recorded(store) == {("A", "H", "primary"), ("B", "H", "spouse"), ("P", "K", "parent")}
    # B left H for H2; A was read (its households), H was checked (its members); P was not
    now = [Link("A", "H", "primary"), Link("B", "H2", "spouse"), Link("C", "H2", "primary")]
    with store.begin() as conn:
        save_links(conn, STREAM, group(now, {"A", "B"}, {"H", "H2"}), "run-2")
    assert recorded(store) == {
        ("A", "H", "primary"),
        ("B", "H2", "spouse"),
        ("C", "H2", "primary"),
        ("P", "K", "parent"),  # not covered by the read: kept as recorded
    }
    # a customer read in no household keeps none
    with store.begin() as conn:
        save_links(conn, STREAM, group([], {"P"}, set()), "run-3")
    assert ("P", "K", "parent") not in recorded(store)

    known = StoredLinks(store, STREAM)
    assert known.households_of({"B", "A"}) == {"H", "H2"}
    assert known.members_of({"H2"}) == {"B", "C"}
    assert known.households_of(set()) == set() and known.members_of(set()) == set()
    with store.begin() as conn:
        near = links_near(conn, STREAM, ["C"])
    assert {(lk.customer_id, lk.household_id) for lk in near} == {("B", "H2"), ("C", "H2")}


def test_the_completeness_mark(store: StateStore) -> None:
    with store.begin() as conn:
        assert not is_complete(conn, STREAM)
    mark_complete(store, STREAM, True)
    with store.begin() as conn:
        assert is_complete(conn, STREAM) and not is_complete(conn, "other:stream")
    mark_complete(store, STREAM, False)
    with store.begin() as conn:
        assert not is_complete(conn, STREAM)


def test_the_family_role_is_encrypted_with_the_stores_key(tmp_path: Path) -> None:
    cipher = StoreCipher(secrets.token_bytes(32), [])
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}", cipher=cipher)
    try:
        with store.begin() as conn:
            save_links(conn, STREAM, group([Link("A", "H", "spouse")], {"A"}, {"H"}), "run-1")
            raw = conn.execute(sa.text("SELECT role FROM household_links")).scalar_one()
        assert raw.startswith("enc1:") and "spouse" not in raw
        assert recorded(store) == {("A", "H", "spouse")}
    finally:
        store.close()
