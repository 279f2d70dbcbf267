"""Carrying out advisor-coverage proposals (``sync/coverage_write.py``), on both state-store
backends: each proposal task is sent once and recorded with its audit row; a task the CRM
refuses is one line naming the customer's pseudonym, is not recorded, and is the only one
sent again next time; opt-in owner changes are audited, refusals reported the same way."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa

from connectors.contract import OwnerChange, WritePlan, WriteResult
from sync.audit import verify
from sync.coverage_write import change_owners, write_proposals
from sync.schema import audit
from sync.store import StateStore
from tiering_core.coverage import Advisor, Client, plan
from tiering_core.policy import load_policy

POLICY = load_policy()
AS_OF = date(2026, 12, 7)
KEY = b"k" * 32
STREAM = "salesforce:Account"
REFUSED = "C3"


class FakeCrm:
    """Answers every write ok except those for customer ``REFUSED``; keeps what it got."""

    def __init__(self) -> None:
        self.plans: list[WritePlan] = []
        self.changes: list[Sequence[OwnerChange]] = []

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        self.plans.append(plan)
        return [
            WriteResult("task", t.task.dedupe_key, t.customer_id != REFUSED, "LOCKED")
            for t in plan.tasks
        ]

    def change_owners(self, changes: Sequence[OwnerChange]) -> list[WriteResult]:
        self.changes.append(changes)
        return [
            WriteResult("field_update", c.customer_id, c.customer_id != REFUSED, "LOCKED")
            for c in changes
        ]


def coverage():  # five private customers waiting, one RM with room for all
    clients = [Client(f"C{k}", "private", None) for k in range(1, 6)]
    return plan(clients, [Advisor("RM1", capacity=10)], POLICY.coverage)


def audit_events(store: StateStore) -> list[str]:
    with store.begin() as conn:
        return list(conn.execute(sa.select(audit.c.event).order_by(audit.c.seq)).scalars())


def test_each_task_is_sent_once_and_a_refused_one_is_sent_again(store: StateStore) -> None:
    crm = FakeCrm()
    first = write_proposals(store, STREAM, crm, coverage(), POLICY, AS_OF, pseudonym_key=KEY)  # type: ignore[arg-type]
    assert (first.made, first.already) == (4, 0)
    assert len(first.failed) == 1 and "(LOCKED)" in first.failed[0]
    assert REFUSED not in first.failed[0] and "cust_" in first.failed[0]  # a pseudonym
    second = write_proposals(store, STREAM, crm, coverage(), POLICY, AS_OF, pseudonym_key=KEY)  # type: ignore[arg-type]
    assert [t.customer_id for t in crm.plans[1].tasks] == [REFUSED]  # only the refused one
    assert (second.made, second.already, len(second.failed)) == (0, 4, 1)
    assert audit_events(store) == ["task"] * 4
    with store.begin() as conn:
        assert verify(conn, store.audit_keys).ok


def test_a_plan_with_nothing_new_makes_no_call(store: StateStore) -> None:
    crm = FakeCrm()
    nobody = plan([Client("C1", "private", "RM1")], [Advisor("RM1")], POLICY.coverage)
    done = write_proposals(store, STREAM, crm, nobody, POLICY, AS_OF, pseudonym_key=KEY)  # type: ignore[arg-type]
    assert (done.made, done.already, done.failed, crm.plans) == (0, 0, (), [])


def test_owner_changes_are_audited_and_refusals_reported(store: StateStore) -> None:
    crm = FakeCrm()
    done = change_owners(store, STREAM, crm, coverage(), POLICY, pseudonym_key=KEY)
    assert [c.owner_id for c in crm.changes[0]] == ["RM1"] * 5
    assert done.made == 4 and len(done.failed) == 1 and "owner change" in done.failed[0]
    assert audit_events(store) == ["owner_change"] * 4
    with store.begin() as conn:
        assert verify(conn, store.audit_keys).ok
