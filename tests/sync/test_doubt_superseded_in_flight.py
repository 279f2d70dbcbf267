"""A write in flight when its customer is planned again, and no longer wanted by the newer
plan, is not sent again when its call comes back unanswered: the newer plan has already
said what it wants of its task or membership (it is in doubt: ``Dispatcher.in_doubt``), and
its retry would undo that. A customer sanctioned between two reads of one run has its
sales task closed (as in doubt) and its campaign membership removed; a retry of the making
or the add, queued behind the withdrawal, made them again: a sanctioned customer kept an
open upgrade call, or its VIP membership, once the run was over. The write stays in doubt
on record (``sync.state.mark_in_doubt``), so a later hit withdraws it again should the
lost call land after all.

The engine's real path on a real store, over an in-memory CRM that reads the customer
twice in one run (wanting the task or membership, then sanctioned) and makes the first
task or membership call's writes, then fails it as a timeout would. One write a call, so
the first read's write is in flight while the second read is planned.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from connectors.calltally import CallCounter
from connectors.contract import Capabilities, CrmRecord, Cursor, Page, WritePlan, WriteResult
from connectors.errors import TransientError
from connectors.mapping import WritebackConfig
from sync import schema
from sync.engine import RunOptions
from sync.store import StateStore
from tests.sync.memory_crm import OneCustomerCrm, memory_engine
from tests.sync.test_dead_letter_sanctions import AS_OF, CHANGED, SANCTIONED, UPGRADE
from tests.sync.test_dead_letter_sanctions import assess as task_assess
from tests.sync.test_membership_doubt import assess as member_assess
from tiering_core.models import AssessmentData, Assets, CustomerProfile

TASK = "C00:upgrade_call"


class ReadAgainCrm(OneCustomerCrm):
    """``C00`` on one page of one read for each of ``reads`` (its deposits, which say what
    it wants), each page stamped later and read once the first call has answered. The
    first call with a task or a membership add makes its writes and is then lost (a
    timeout); the rest are answered. It keeps every task upsert it was sent (key,
    ``resend``)."""

    capabilities = Capabilities(crm="again", page_size=10, max_write_batch=1)

    def __init__(self, *reads: float) -> None:
        self.reads = reads
        self.upserts: list[tuple[str, bool]] = []
        self.stamp = datetime.now(UTC) - timedelta(minutes=5)
        self.tier: str | None = "mass"  # the tier both reads decide: no field write
        self.members: set[str] = set()
        self.open_tasks: set[str] = set()
        self.lost = 1
        self.answered = threading.Event()  # the lost call has answered
        self.lock = threading.Lock()
        self.calls = CallCounter()

    def read_changed(self, since: Cursor | None) -> Iterator[Page]:
        for n, deposits in enumerate(self.reads):
            if n:  # the run has it in hand, answered, not yet recorded (a guard, not a test)
                self.answered.wait(30)
            profile = CustomerProfile(id="C00", assets=Assets(deposits=deposits))
            stamp = self.stamp + timedelta(seconds=n)
            yield Page((CrmRecord(profile, stamp, {"value_tier": self.tier}),))

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        with self.lock:
            for m in plan.memberships:
                (self.members.add if m.member else self.members.discard)(m.campaign)
            self.upserts += [(u.task.dedupe_key, u.resend) for u in plan.tasks]
            self.open_tasks.update(u.task.dedupe_key for u in plan.tasks)
            self.open_tasks.difference_update(c.dedupe_key for c in plan.task_closes)
            if self.lost and (plan.tasks or any(m.member for m in plan.memberships)):
                self.lost -= 1
                self.answered.set()
                raise TransientError("read timed out")
        return [
            *(WriteResult("field_update", u.customer_id, True) for u in plan.field_updates),
            *(WriteResult("task", u.task.dedupe_key, True) for u in plan.tasks),
            *(WriteResult("membership", m.dedupe_key, True) for m in plan.memberships),
            *(WriteResult("task_close", c.dedupe_key, True) for c in plan.task_closes),
        ]


#: the customer wants the upgrade call again, its subject changed (the same key)
AGAIN = 5.0


def _tasks(profiles: Sequence[CustomerProfile]) -> list[AssessmentData]:
    """test_dead_letter_sanctions's decisions; ``AGAIN``: the upgrade call, another
    subject."""
    rows = task_assess(profiles)
    for p, row in zip(profiles, rows, strict=True):
        if p.assets is not None and p.assets.deposits == AGAIN:
            task = {"rule": "upgrade_call", "subject": "upgrade, again", "priority": "normal"}
            task |= {"due": AS_OF.isoformat(), "owner_id": None, "queue": None}
            row["actions"].append({"kind": "task", "dedupe_key": TASK, **task})  # type: ignore[arg-type]
    return rows


WRITEBACKS = {
    "task": (WritebackConfig(fields={"value_tier": "Tier"}), _tasks),
    "membership": (
        WritebackConfig(fields={"value_tier": "Tier"}, campaigns={"vip": "CAMP-VIP"}),
        member_assess,
    ),
}


@pytest.mark.parametrize("kind", sorted(WRITEBACKS))
def test_a_write_in_flight_the_newer_plan_withdraws_is_not_sent_again(
    store: StateStore, kind: str
) -> None:
    crm = ReadAgainCrm(UPGRADE, SANCTIONED)
    writeback, assess = WRITEBACKS[kind]
    e = memory_engine(crm, store, writeback, assess, stream="twice:Customer")
    e.settings = replace(e.settings, record_retry_attempts=3, record_retry_base=0.0)
    report = e.run(RunOptions(as_of=AS_OF))
    assert report.status == "succeeded", (report.error, report.counts.as_json())
    assert crm.lost == 0  # the first read's write went out, and its answer was lost
    if kind == "task":
        assert TASK not in crm.open_tasks, "a sanctioned customer keeps an upgrade call"
    else:
        assert crm.members == set(), "a sanctioned customer keeps a VIP campaign membership"
    with store.begin() as conn:
        o = schema.outbox
        rows = conn.execute(sa.select(o.c.kind, o.c.status, o.c.attempts)).all()
        s = schema.side_effects
        effects = conn.execute(sa.select(s.c.kind, s.c.active, s.c.in_doubt)).all()
    # the lost write: sent once, then superseded, never sent again; the withdrawal that
    # found it answered, so it is neither open nor in doubt on record
    assert (kind, "superseded", 1) in [tuple(r) for r in rows], rows
    assert [(r.kind, r.active, bool(r.in_doubt)) for r in effects] == [(kind, False, False)]


@pytest.mark.parametrize(
    ("reads", "attempts"),
    [
        ((UPGRADE, UPGRADE), 3),  # the same task: its own retry, once
        ((UPGRADE, AGAIN), 3),  # changed: the newer one, and no retry of the lost one
        ((UPGRADE, UPGRADE, UPGRADE), 1),  # dead-lettered, then planned again
    ],
    ids=["same-task", "changed-task", "after-its-letter"],
)
def test_a_task_planned_again_after_its_call_was_lost_is_sent_as_one_the_crm_may_hold(
    store: StateStore, reads: tuple[float, ...], attempts: int
) -> None:
    """The customer is read again once the call making its task has answered (lost) and
    before that answer is recorded: the page's state, loaded then, does not say the task
    is in doubt; the run's calls in hand do (``Dispatcher.in_doubt``), and any later plan
    of the key goes out as a re-send (``TaskUpsert.resend``), never as a first send that
    may overwrite what a relationship manager changed. A third read, after the answer is
    recorded (dead-lettered), has it in doubt on record."""
    crm = ReadAgainCrm(*reads)
    e = memory_engine(crm, store, WRITEBACKS["task"][0], _tasks, stream="again:Customer")
    e.settings = replace(e.settings, record_retry_attempts=attempts, record_retry_base=0.0)
    report = e.run(RunOptions(as_of=AS_OF))
    assert report.status in ("succeeded", "completed_with_errors"), report.error
    assert crm.upserts == [(TASK, False), (TASK, True)]


#: a customer of the ``mass`` tier, wanting nothing else
PLAIN = 4.0


class LaggingFieldCrm(ReadAgainCrm):
    """``ReadAgainCrm`` that makes its field writes, and whose later reads show the tier
    as it was when the run began: read while the first field write was on its way. That
    first call makes its write and is then lost (``lost``) or answered."""

    def __init__(self, *reads: float, lost: bool) -> None:
        super().__init__(*reads)
        self.lost = int(lost)
        self.shown = self.tier  # what every read shows

    def read_changed(self, since: Cursor | None) -> Iterator[Page]:
        for page in super().read_changed(since):
            (record,) = page.records
            yield Page((replace(record, current={"value_tier": self.shown}),))

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        with self.lock:
            for update in plan.field_updates:
                self.tier = str(update.fields["value_tier"])
            first = not self.answered.is_set()
            self.answered.set()
            if first and self.lost:
                raise TransientError("read timed out")
        return [WriteResult("field_update", u.customer_id, True) for u in plan.field_updates]


@pytest.mark.parametrize("lost", [True, False], ids=["lost", "answered"])
def test_a_tier_field_write_in_flight_the_newer_plan_undoes_is_countered(
    store: StateStore, lost: bool
) -> None:
    """The customer's value tier moves up (``mass`` to ``affluent``) and back within one
    run. The second read shows ``mass`` still (the first write on its way), so the newer
    plan saw nothing to write, and the first write, landed, left the CRM showing
    ``affluent`` for a customer decided ``mass``. The field a write in flight carries is
    in doubt (``Dispatcher.in_doubt``): the newer plan writes its own value of it, after
    the first write's answer."""
    crm = LaggingFieldCrm(CHANGED, PLAIN, lost=lost)
    e = memory_engine(crm, store, WRITEBACKS["task"][0], task_assess, stream="tier:Customer")
    e.settings = replace(e.settings, record_retry_attempts=3, record_retry_base=0.0)
    report = e.run(RunOptions(as_of=AS_OF))
    assert report.status == "succeeded", (report.error, report.counts.as_json())
    assert crm.tier == "mass", "the CRM shows a tier the run no longer decides"
