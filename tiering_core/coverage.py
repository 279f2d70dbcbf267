"""Advisor coverage with capacity (issue 21 §2): which relationship manager should take
each private or wealth customer who has none, without overloading anyone.

Pure and deterministic: the same clients and roster give the same proposals whatever
order they come in, so a rerun proposes the same RM and its task upserts the same CRM
task. The rules (policy ``[coverage]``, ``policy_relations.CoveragePolicy``):

* a customer of ``rm_tiers`` whose owner is an active RM on the roster is covered, and
  keeps that RM even when the RM's book is over capacity (a relationship is never broken
  to balance load);
* any other customer of those tiers waits for an RM; they are placed heaviest first
  (private before wealth), then by id, each with the RM who has the most free capacity
  (ties by RM id), and only when the client's weight fits in that free capacity: an RM at
  capacity gets no new client, and one no RM can take stays waiting (the report lists
  them; a manager hires or rebalances).

Loads are counted in thousandths of a private-equivalent, as integers, so a long run of
fractional weights never rounds a book past its capacity.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from tiering_core.dates import period_label
from tiering_core.policy_relations import CoveragePolicy
from tiering_core.rules.strategy import dedupe_key

#: Loads and capacities are held in these units per private-equivalent.
_UNITS = 1000


@dataclass(frozen=True, slots=True)
class Advisor:
    """A relationship manager on the roster. ``capacity``: private-equivalents this RM may
    serve (from the CRM's user record or the config); None: the policy's."""

    id: str
    capacity: float | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class Client:
    """A customer as coverage sees them: value tier and current owner (a CRM user id)."""

    id: str
    tier: str
    owner_id: str | None


@dataclass(frozen=True, slots=True)
class Proposal:
    """Give ``customer_id`` (of ``tier``, currently owned by ``current_owner``) to RM
    ``advisor_id``."""

    customer_id: str
    tier: str
    advisor_id: str
    current_owner: str | None


@dataclass(frozen=True, slots=True)
class Book:
    """One RM's load against capacity, in private-equivalents, after the proposals."""

    advisor_id: str
    clients: int
    load: float
    capacity: float


@dataclass(frozen=True, slots=True)
class Coverage:
    """The outcome: proposals, customers still waiting for an RM (no RM could take them),
    every RM's book, and per tier how many customers are covered and how many need one."""

    proposals: tuple[Proposal, ...]
    waiting: tuple[Client, ...]
    books: tuple[Book, ...]
    covered: dict[str, int]
    needing: dict[str, int]


def plan(
    clients: Iterable[Client], advisors: Iterable[Advisor], policy: CoveragePolicy
) -> Coverage:
    """The assignments that cover as many waiting customers as capacity allows."""
    roster = {a.id: a for a in sorted(advisors, key=lambda a: a.id) if a.active}
    capacity = {
        i: _units(policy.capacity if a.capacity is None else a.capacity) for i, a in roster.items()
    }
    load = dict.fromkeys(roster, 0)
    count = dict.fromkeys(roster, 0)
    covered = {str(t): 0 for t in policy.rm_tiers}
    needing = dict(covered)
    waiting: list[Client] = []
    for c in clients:
        if c.owner_id in roster:
            load[c.owner_id] += _units(policy.weight(c.tier))
            count[c.owner_id] += 1
        if c.tier not in covered:
            continue
        needing[c.tier] += 1
        if c.owner_id in roster:
            covered[c.tier] += 1
        else:
            waiting.append(c)
    waiting.sort(key=lambda c: (-_units(policy.weight(c.tier)), c.id))
    # A heap of (-free capacity, id): the top is the RM with the most room, ties by id.
    free = [(load[i] - capacity[i], i) for i in roster]
    heapq.heapify(free)
    proposals: list[Proposal] = []
    unplaced: list[Client] = []
    for c in waiting:
        weight = _units(policy.weight(c.tier))
        if not free or -free[0][0] < weight:
            unplaced.append(c)  # the roomiest RM cannot take them: nobody can
            continue
        neg_free, advisor = heapq.heappop(free)
        heapq.heappush(free, (neg_free + weight, advisor))
        load[advisor] += weight
        count[advisor] += 1
        covered[c.tier] += 1
        proposals.append(Proposal(c.id, c.tier, advisor, c.owner_id))
    books = tuple(Book(i, count[i], load[i] / _UNITS, capacity[i] / _UNITS) for i in roster)
    return Coverage(tuple(proposals), tuple(unplaced), books, covered, needing)


def proposal_tasks(coverage: Coverage, policy: CoveragePolicy, as_of: date) -> list[dict[str, Any]]:
    """One task per proposal for the managers' queue (``coverage.queue``), as the plain
    data of a ``TaskAction``. The dedupe key names the customer, the proposed RM and the
    month: a rerun upserts the same task, and a different proposal is a new one."""
    due = as_of + timedelta(days=policy.due_days)
    return [
        {
            "kind": "task",
            "rule": "coverage_proposal",
            "subject": f"Assign RM {p.advisor_id} ({p.tier} customer without one)",
            "priority": "high",
            "due": due,
            "queue": policy.queue,
            "owner_id": None,
            "description": (
                f"Proposed by crmtier advisor coverage: {p.advisor_id} has the most free "
                f"capacity of the active relationship managers. Approve by making them the "
                f"owner, or assign another RM."
            ),
            "dedupe_key": dedupe_key(
                p.customer_id, f"coverage_proposal:{p.advisor_id}", period_label(as_of, "month")
            ),
        }
        for p in coverage.proposals
    ]


def _units(private_equivalents: float) -> int:
    return round(private_equivalents * _UNITS)
