"""sync.household_store on both backends: what one household read replaces of the recorded
links and what it keeps, the lookups the next run and simulate/explain make, the
completeness mark, and the family role encrypted with the store's key."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync.crypto import StoreCipher, StoreError, key_id
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
from tests.sync.conftest import PG_URL, pg_schema
from tiering_core.rules.household import Link

STREAM = "memory:customers"
KEY = secrets.token_bytes(32)
ROLE = "household_links.role"  # the column a role's ciphertext is bound to


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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sealed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[StateStore, str]]:
    """A store opened with a key, on each backend (the bulk insert that records the links
    differs by backend), and its URL, to read what it stored without the key."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'state.db'}"
        else:
            url = f"{PG_URL}?options=-csearch_path%3D{stack.enter_context(pg_schema())}"
        store = StateStore.open(url, cipher=StoreCipher(KEY, []))
        stack.callback(store.close)
        yield store, url


def test_the_family_role_is_encrypted_with_the_stores_key(
    sealed: tuple[StateStore, str],
) -> None:
    """What the database holds, read on an engine of its own (no cipher: no type of ours
    between the column and the test), is each role's ciphertext under the store's key,
    bound to its column; only the store reads the roles back."""
    store, url = sealed
    links = [Link("A", "H", "spouse"), Link("B", "H", "primary"), Link("C", "K", "spouse")]
    with store.begin() as conn:
        save_links(conn, STREAM, group(links, {"A", "B", "C"}, {"H", "K"}), "run-1")
    raw = sa.create_engine(url)
    try:
        with raw.connect() as conn:
            rows = conn.execute(sa.text("SELECT customer_id, role FROM household_links"))
            stored: dict[str, str] = {cid: role for cid, role in rows}
    finally:
        raw.dispose()
    assert sorted(stored) == ["A", "B", "C"]
    for role in stored.values():
        assert role.startswith(f"enc1:{key_id(KEY)}:")
        assert "spouse" not in role and "primary" not in role
    assert stored["A"] != stored["C"]  # the same role, a nonce of its own
    opened = {cid: StoreCipher(KEY, []).decrypt(v, ROLE) for cid, v in stored.items()}
    assert opened == {"A": b"spouse", "B": b"primary", "C": b"spouse"}
    with pytest.raises(StoreError, match="failed authentication"):
        StoreCipher(KEY, []).decrypt(stored["A"], "household_links.household_id")
    assert recorded(store) == {(lk.customer_id, lk.household_id, lk.role) for lk in links}
