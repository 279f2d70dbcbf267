"""Advisor coverage in the sync (issue 21 §2): the roster from CRM users and the config,
a pass over a generated book, and the proposals as a write plan of upserted tasks."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from connectors.contract import CrmRecord, Page
from connectors.sandbox.generator import generate
from sync.coverage import Roster, clients, propose, roster_from_config, roster_from_users
from tiering_core.coverage import Advisor
from tiering_core.models import CustomerProfile
from tiering_core.policy import load_policy

POLICY = load_policy()
AS_OF = date(2026, 11, 28)
STAMP = datetime(2026, 1, 1, tzinfo=UTC)


def pages(n: int = 400, size: int = 100) -> list[Page]:
    records = [
        CrmRecord(CustomerProfile.model_validate({"id": c.id, **c.profile}), STAMP)
        for c in generate(n, seed=11)
        if not c.dirty
    ]
    return [Page(tuple(records[k : k + size])) for k in range(0, len(records), size)]


@pytest.mark.parametrize(
    ("users", "advisors", "problems"),
    [
        ([{"id": "U1", "active": True, "cap": 120}], [Advisor("U1", 120.0)], []),
        ([{"id": "U1", "cap": ""}], [Advisor("U1")], []),  # empty: the policy's capacity
        ([{"id": "U1", "active": False}], [Advisor("U1", None, False)], []),
        (
            [{"id": "U1", "cap": "lots"}, {"id": "U2", "cap": "80"}],
            [Advisor("U2", 80.0)],
            ["user U1: cap is not a positive number; left off"],
        ),
        ([{"id": "U1", "cap": -3}], [], ["user U1: cap is not a positive number; left off"]),
        ([{"cap": 5}], [], ["user without id: left off the roster"]),
    ],
)
def test_roster_from_users(users, advisors, problems):
    roster = roster_from_users(users, capacity_field="cap")
    assert list(roster.advisors) == advisors and list(roster.problems) == problems


def test_the_config_overrides_the_crm_users_one_rm_at_a_time():
    base = roster_from_users([{"id": "U1", "cap": 100}, {"id": "U2"}], capacity_field="cap")
    roster = roster_from_config(
        {"U1": 60, "U3": {"capacity": 10, "active": True}, "U2": {"active": "yes"}}, base
    )
    assert roster.advisors == (Advisor("U1", 60.0), Advisor("U3", 10.0))
    assert roster.problems == (
        "[coverage.advisors] U2: bad active (not true or false); left off the roster",
    )
    bad = roster_from_config({"U9": {"capacity": 0}, "U8": {"seats": 3}})
    assert bad.problems == (
        "[coverage.advisors] U9: bad capacity (not a positive number); left off the roster",
        "[coverage.advisors] U8: bad seats; left off the roster",
    )


def test_a_pass_over_a_generated_book_proposes_within_capacity():
    book = clients(pages(), POLICY, AS_OF)
    assert {c.tier for c in book} <= {"private", "wealth"} and book
    owners = sorted({c.owner_id for c in book if c.owner_id})
    busiest = max(owners, key=lambda o: (sum(c.owner_id == o for c in book), o))
    # two RMs on the roster: the busiest one exactly full, a new one with room for three
    full = sum(POLICY.coverage.weight(c.tier) for c in book if c.owner_id == busiest)
    roster = Roster((Advisor(busiest, capacity=full), Advisor("NEW", capacity=3)))
    waiting = [c for c in book if c.owner_id != busiest]
    coverage, plan = propose(pages(), roster, POLICY, AS_OF)
    assert {p.advisor_id for p in coverage.proposals} == {"NEW"}  # the full RM gets nobody
    assert sum(POLICY.coverage.weight(p.tier) for p in coverage.proposals) <= 3
    assert len(coverage.proposals) + len(coverage.waiting) == len(waiting)
    assert [t.customer_id for t in plan.tasks] == [p.customer_id for p in coverage.proposals]
    assert all(t.task.queue == "private_banking" and t.task.owner_id is None for t in plan.tasks)
    assert all("NEW" in t.task.subject for t in plan.tasks)
    again = propose(pages(), roster, POLICY, AS_OF)[1]
    assert [t.task.dedupe_key for t in again.tasks] == [t.task.dedupe_key for t in plan.tasks]
