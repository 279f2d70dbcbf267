"""The durable inbox on both stores: dedupe by event key, claims that never overlap, leases
that expire, purge after the dedupe window (docs/targets.md W4, W5), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.webhook_events import ChangeEvent
from sync.inbox import Inbox
from sync.store import StateStore
from tests.sync.conftest import PG_URL, pg_schema

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_inbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Inbox]:
    if request.param == "sqlite":
        store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
        yield Inbox(store)
        store.close()
    else:
        with pg_schema() as schema:  # opened as the product opens a store
            store = StateStore.open(f"{PG_URL}?options=-csearch_path%3D{schema}")
            yield Inbox(store)
            store.close()


def _ev(key: str, customer: str = "C1") -> ChangeEvent:
    return ChangeEvent("salesforce", key, customer)


def test_add_reports_new_events_per_request_and_ignores_repeats(any_inbox: Inbox) -> None:
    assert any_inbox.add([[_ev("a"), _ev("b")], [_ev("a"), _ev("c")], [_ev("b")]], T0) == [2, 1, 0]
    assert any_inbox.add([[_ev("a")]], T0) == [0]
    assert any_inbox.event_keys() == {"a", "b", "c"}


def test_concurrent_repeats_store_one_row(any_inbox: Inbox) -> None:
    results: list[list[int]] = []

    def deliver() -> None:
        results.append(any_inbox.add([[_ev("same"), _ev("other")]], T0))

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r[0] for r in results) == 2
    assert any_inbox.stats(T0).depth == 2


def test_claims_do_not_overlap_and_expired_leases_are_taken_again(any_inbox: Inbox) -> None:
    any_inbox.add([[_ev(f"e{i}", f"C{i}") for i in range(30)]], T0)
    taken: list[list[str]] = []

    def claim(owner: str) -> None:
        taken.append([i.event_key for i in any_inbox.claim(owner, 10, T0, LEASE)])

    threads = [threading.Thread(target=claim, args=(f"w{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flat = [key for batch in taken for key in batch]
    assert len(flat) == len(set(flat)) == 30
    assert any_inbox.claim("late", 10, T0 + timedelta(minutes=1), LEASE) == []
    again = any_inbox.claim("rescuer", 50, T0 + LEASE + timedelta(seconds=1), LEASE)
    assert len(again) == 30 and all(item.attempts == 2 for item in again)


def test_release_retry_bury_and_purge(any_inbox: Inbox) -> None:
    any_inbox.add([[_ev("a"), _ev("b"), _ev("c"), _ev("d")]], T0)
    items = {i.event_key: i for i in any_inbox.claim("w", 10, T0, LEASE)}
    any_inbox.complete({items["a"].id: "written"}, T0)
    any_inbox.retry_later({items["b"].id: "TransientError: 503"}, T0 + timedelta(seconds=30))
    any_inbox.bury({items["c"].id: "TransientError: 503"}, T0)
    assert any_inbox.release("w") == 1  # d goes back, its attempt not counted
    assert [i.event_key for i in any_inbox.claim("w", 10, T0, LEASE)] == ["d"]
    assert [i.event_key for i in any_inbox.claim("w", 10, T0 + timedelta(seconds=31), LEASE)] == [
        "b"
    ]
    stats = any_inbox.stats(T0)
    assert (stats.depth, stats.dead) == (2, 1)
    assert any_inbox.purge(T0 + timedelta(days=6), timedelta(days=7)) == 0
    assert any_inbox.purge(T0 + timedelta(days=8), timedelta(days=7)) == 2  # a and c
    assert any_inbox.event_keys() == {"b", "d"}  # pending/claimed events are never purged


@pytest.mark.parametrize("workers", [2, 3])
def test_concurrent_claims_take_at_most_the_batch_size(any_inbox: Inbox, workers: int) -> None:
    """Workers claiming side by side until the inbox is empty: no claim is larger than its
    limit (on PostgreSQL one used to take the whole inbox), none overlaps, all is taken."""
    events, limit = 2000, 200
    any_inbox.add([[_ev(f"e{i}", f"C{i % 300}") for i in range(events)]], T0)
    start = threading.Barrier(workers)
    claims: list[list[int]] = []

    def drain(owner: str) -> None:
        start.wait()
        while batch := any_inbox.claim(owner, limit, T0, LEASE):
            claims.append([item.id for item in batch])

    threads = [threading.Thread(target=drain, args=(f"w{n}",)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(len(batch) for batch in claims) <= limit, sorted(map(len, claims))
    flat = [i for batch in claims for i in batch]
    assert len(flat) == len(set(flat)) == events
