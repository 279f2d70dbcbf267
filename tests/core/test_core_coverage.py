"""Advisor coverage with capacity (issue 21 §2): proposals never exceed an RM's free
capacity, keep existing suitable owners, are deterministic whatever the input order, and
an RM at capacity gets no new private client."""

from __future__ import annotations

import random
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiering_core.coverage import Advisor, Client, plan, proposal_tasks
from tiering_core.policy_relations import CoveragePolicy

POLICY = CoveragePolicy()
AS_OF = date(2026, 11, 28)


def book(owner: str | None, n: int, tier: str = "private", prefix: str = "") -> list[Client]:
    return [Client(f"{prefix or owner}-{k:04d}", tier, owner) for k in range(n)]


def test_an_rm_at_capacity_gets_no_new_private_clients() -> None:
    clients = [*book("RM1", 150), *book(None, 3, prefix="new")]
    result = plan(clients, [Advisor("RM1"), Advisor("RM2", capacity=2)], POLICY)
    assert {p.advisor_id for p in result.proposals} == {"RM2"}
    assert len(result.proposals) == 2 and [c.id for c in result.waiting] == ["new-0002"]
    assert {b.advisor_id: (b.load, b.capacity) for b in result.books} == {
        "RM1": (150.0, 150.0),
        "RM2": (2.0, 2.0),
    }


@pytest.mark.parametrize(
    ("clients", "advisors", "proposed", "waiting"),
    [
        # the RM with more room gets the client; ties go to the lower id
        (
            [*book("A", 10), Client("x", "private", None)],
            [Advisor("A"), Advisor("B")],
            {"x": "B"},
            [],
        ),
        ([Client("x", "private", None)], [Advisor("B"), Advisor("A")], {"x": "A"}, []),
        # heaviest first: the private client takes the last full unit, the wealth one fits the half
        (
            [Client("w", "wealth", None), Client("p", "private", None)],
            [Advisor("A", capacity=1.5)],
            {"p": "A", "w": "A"},
            [],
        ),
        (
            [Client("w", "wealth", None), Client("p", "private", None)],
            [Advisor("A", capacity=1.0)],
            {"p": "A"},
            ["w"],
        ),
        # an owner who is not an active RM is no suitable owner
        (
            [Client("x", "wealth", "GONE")],
            [Advisor("A"), Advisor("GONE", active=False)],
            {"x": "A"},
            [],
        ),
        # tiers outside coverage.rm_tiers need nobody
        ([Client("x", "affluent", None), Client("y", "mass", None)], [Advisor("A")], {}, []),
        # no roster: everyone waits
        ([Client("x", "private", None)], [], {}, ["x"]),
        # an existing relationship is kept even over capacity
        ([*book("A", 3)], [Advisor("A", capacity=1)], {}, []),
    ],
)
def test_proposals(
    clients: list[Client], advisors: list[Advisor], proposed: dict[str, str], waiting: list[str]
) -> None:
    result = plan(clients, advisors, POLICY)
    assert {p.customer_id: p.advisor_id for p in result.proposals} == proposed
    assert [c.id for c in result.waiting] == waiting


def test_coverage_counts_per_tier() -> None:
    clients = [*book("A", 2), *book(None, 2, "wealth", "w"), Client("m", "mass", None)]
    result = plan(clients, [Advisor("A", capacity=3)], POLICY)
    assert result.needing == {"private": 2, "wealth": 2}
    assert result.covered == {"private": 2, "wealth": 2}
    assert [b.load for b in result.books] == [3.0]


def test_proposal_tasks_go_to_the_managers_queue_with_a_stable_key() -> None:
    result = plan([Client("x", "private", None)], [Advisor("RM7")], POLICY)
    [task] = proposal_tasks(result, POLICY, AS_OF)
    assert task["queue"] == POLICY.queue and task["owner_id"] is None
    assert "RM7" in task["subject"] and task["due"] == date(2026, 12, 3)
    [again] = proposal_tasks(
        plan([Client("x", "private", None)], [Advisor("RM7")], POLICY), POLICY, AS_OF
    )
    assert again["dedupe_key"] == task["dedupe_key"]


# --- properties ----------------------------------------------------------------------------

TIERS = ("private", "wealth", "affluent", "mass")
advisors_st = st.lists(
    st.builds(
        Advisor,
        id=st.sampled_from([f"RM{k}" for k in range(6)]),
        capacity=st.none() | st.floats(0, 8).map(lambda x: round(x, 1)),
        active=st.booleans(),
    ),
    max_size=6,
    unique_by=lambda a: a.id,
)
clients_st = st.lists(
    st.builds(
        Client,
        id=st.text("abcdef0123", min_size=1, max_size=6),
        tier=st.sampled_from(TIERS),
        owner_id=st.none() | st.sampled_from([f"RM{k}" for k in range(8)]),
    ),
    max_size=40,
    unique_by=lambda c: c.id,
)
SMALL = CoveragePolicy(capacity=4, weights={"private": 1.0, "wealth": 0.3})


@settings(max_examples=200, deadline=None)
@given(clients=clients_st, advisors=advisors_st)
def test_never_more_than_free_capacity_and_existing_owners_kept(
    clients: list[Client], advisors: list[Advisor]
) -> None:
    result = plan(clients, advisors, SMALL)
    active = {a.id for a in advisors if a.active}
    before: dict[str, float] = dict.fromkeys(active, 0.0)
    for c in clients:
        if c.owner_id in active:
            before[c.owner_id] += SMALL.weight(c.tier)
    added: dict[str, float] = dict.fromkeys(active, 0.0)
    proposed = {p.customer_id for p in result.proposals}
    for p in result.proposals:
        assert p.advisor_id in active
        added[p.advisor_id] += SMALL.weight(p.tier)
    for b in result.books:
        free = max(b.capacity - before[b.advisor_id], 0.0)
        assert added[b.advisor_id] <= free + 1e-9  # never beyond the free capacity
        if before[b.advisor_id] >= b.capacity - 1e-9:
            assert not any(
                p.advisor_id == b.advisor_id and SMALL.weight(p.tier) > 0 for p in result.proposals
            )
    for c in clients:
        if c.owner_id in active:
            assert c.id not in proposed  # a suitable owner is kept
        if c.tier in SMALL.rm_tiers and c.owner_id not in active:
            assert (c.id in proposed) != (c in result.waiting)  # proposed or waiting, not both


@settings(max_examples=100, deadline=None)
@given(clients=clients_st, advisors=advisors_st, seed=st.integers(0, 1000))
def test_deterministic_whatever_the_input_order(
    clients: list[Client], advisors: list[Advisor], seed: int
) -> None:
    shuffled_clients, shuffled_advisors = list(clients), list(advisors)
    random.Random(seed).shuffle(shuffled_clients)
    random.Random(seed).shuffle(shuffled_advisors)
    first = plan(clients, advisors, SMALL)
    second = plan(shuffled_clients, shuffled_advisors, SMALL)
    assert first == second


@settings(max_examples=100, deadline=None)
@given(clients=clients_st, advisors=advisors_st)
def test_no_waiting_customer_fits_anywhere(clients: list[Client], advisors: list[Advisor]) -> None:
    """Placement is greedy but not wasteful: a customer left waiting fits no RM's room."""
    result = plan(clients, advisors, SMALL)
    room = max((b.capacity - b.load for b in result.books), default=-1.0)
    for c in result.waiting:
        assert SMALL.weight(c.tier) > room + 1e-9
