"""A customer read twice in a run keeps only its newest decision (REC-B), also when that
decision writes nothing: a task the first read planned and queued, no longer wanted by the
second read, is never sent (it was, when the newest plan was empty: the earlier decision
stood); and a task so superseded no longer counts as made against its owner's cap
(``sync.taskbudget``), where it held back the owner's real work until its due date. A task
already sent when its customer is read again is neither withdrawn nor uncounted.

The engine's real path on a real SQLite store, over the in-memory CRM of
tests/sync/test_task_budget.py."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.contract import CrmRecord
from sync import schema, taskbudget
from sync.engine import RunOptions
from sync.outbox import OutboxItem
from sync.records import Decision
from sync.run_parts import RunParts
from sync.taskbudget import TaskLimit
from tests.sync.test_task_budget import AS_OF, TaskCrm, engine, task
from tiering_core.models import TaskAction


class ChangingCrm(TaskCrm):
    """A customer fetched by id (a waiting task's revisit) stops wanting its task right
    after (with ``clear_tier``, its tier field is also emptied, so the newest plan writes
    it again), and the change stream then reads it again in the same run."""

    def __init__(self, n: int, *, clear_tier: bool) -> None:
        super().__init__(n)
        self.clear_tier = clear_tier
        self.drop_after_fetch: set[str] = set()

    def fetch(self, ids: Sequence[str]) -> list[CrmRecord]:
        records = super().fetch(ids)
        if self.drop_after_fetch & set(ids):
            self.wanted -= self.drop_after_fetch
            if self.clear_tier:
                for cid in self.drop_after_fetch:
                    self.tier.pop(cid, None)
            self.stamp = datetime.now(UTC) - timedelta(seconds=30)
        return records


@pytest.mark.parametrize("clear_tier", [False, True], ids=["plans-nothing", "plans-a-field"])
def test_a_task_superseded_in_the_run_is_neither_made_nor_counted(
    tmp_path: Path, clear_tier: bool
) -> None:
    crm = ChangingCrm(3, clear_tier=clear_tier)  # C00 (high, RM0) is made; C01, C02 wait
    e = engine(crm, tmp_path, {"call": TaskLimit(budget=1, open_per_owner=5)})
    first = e.run(RunOptions(as_of=AS_OF))
    assert first.status == "succeeded", first.error
    assert set(crm.tasks) == {"C00:call"}
    crm.drop_after_fetch = {"C01"}
    second = e.run(RunOptions(as_of=AS_OF))
    assert second.status == "succeeded", second.error
    assert "C01:call" not in crm.tasks  # admitted on its revisit, superseded by the stream
    assert second.counts.skipped["superseded"] == 1
    assert crm.tier["C01"] == "mass"
    with e.store.begin() as conn:
        open_now = taskbudget.load_open(conn, e.stream, AS_OF, prune=False)
        pending = conn.execute(
            sa.select(schema.customers.c.pending).where(schema.customers.c.customer_id == "C01")
        ).scalar_one()
    assert open_now == Counter({("call", "RM0"): 1})  # C00's: C01's (RM1) was never made
    assert pending is None  # the newest decision is the committed one


class SendingCrm(ChangingCrm):
    """One item a write call: the revisit's task goes out as soon as its page commits,
    before the change stream reads its customer again."""

    capabilities = replace(ChangingCrm.capabilities, max_write_batch=1)


@pytest.mark.parametrize("clear_tier", [False, True], ids=["plans-nothing", "plans-a-field"])
def test_a_task_sent_before_its_customer_is_read_again_stays_made_and_counted(
    tmp_path: Path, clear_tier: bool
) -> None:
    """The revisit's task was sent (its answer not yet recorded) when the stream reads the
    customer again and no longer wants it: the write may have reached the CRM, so it is
    neither withdrawn nor taken off its owner's cap (``Dispatcher.withdraw``); it is
    recorded made, once."""
    crm = SendingCrm(3, clear_tier=clear_tier)
    e = engine(crm, tmp_path, {"call": TaskLimit(budget=1, open_per_owner=5)})
    assert e.run(RunOptions(as_of=AS_OF)).status == "succeeded"
    crm.drop_after_fetch = {"C01"}
    second = e.run(RunOptions(as_of=AS_OF))
    assert second.status == "succeeded", second.error
    assert crm.tasks["C01:call"] == 1
    assert crm.tier["C01"] == "mass" and second.counts.reconciles()
    # a second read whose plan writes nothing supersedes nothing: the earlier decision stands
    assert second.counts.skipped["superseded"] == (1 if clear_tier else 0)
    with e.store.begin() as conn:
        open_now = taskbudget.load_open(conn, e.stream, AS_OF, prune=False)
        pending = conn.execute(
            sa.select(schema.customers.c.pending).where(schema.customers.c.customer_id == "C01")
        ).scalar_one()
    assert open_now == Counter({("call", "RM0"): 1, ("call", "RM1"): 1})
    assert pending is None


#: a queued task's cases of the ``Dispatcher._unsent`` rule (``outbox.may_have_landed``):
#: attempts, who queued it, whether a call of it went unanswered, and whether it may have
#: reached the CRM
QUEUED_TASKS = pytest.mark.parametrize(
    ("attempts", "queued_by", "unanswered", "maybe_sent"),
    [
        (0, "this run", False, False),  # never went out
        (1, "this run", True, True),  # sent, unanswered (a timeout): the CRM may hold it
        (3, "this run", True, True),
        (1, "this run", False, False),  # refused retryably (a locked record): made nothing
        (0, "a run that died", False, True),  # it may have sent it before it died
        (2, "a run that died", False, True),
        (0, "a run that stopped", False, False),  # it never sent what it left
    ],
)


def _queued_by(parts: RunParts, queued_by: str) -> str:
    """The run id of ``queued_by``, the dispatcher told which runs died (``recover``)."""
    parts.dispatcher.maybe_made.died.add("a-dead-run")
    return {"this run": parts.run_id, "a run that died": "a-dead-run"}.get(
        queued_by, "a-stopped-run"
    )


@QUEUED_TASKS
def test_a_superseded_task_leaves_its_owner_s_cap_only_if_it_never_went_out(
    tmp_path: Path, attempts: int, queued_by: str, unanswered: bool, maybe_sent: bool
) -> None:
    """``Dispatcher.supersede`` takes a queued task off its owner's cap only when it is
    sure the CRM never got it: never sent, or every call of it refused. One that may have
    reached the CRM (the same rule as ``Dispatcher.in_doubt``'s) is open there until its
    due date, as far as crmtier can know, and stays counted."""
    e = engine(TaskCrm(2), tmp_path, {"call": TaskLimit(open_per_owner=5)})
    parts = RunParts(e, RunOptions(as_of=AS_OF))
    made = task("C01:call", owner="RM1")
    run_id = _queued_by(parts, queued_by)
    item = OutboxItem(
        7, "C01", "task", made.dedupe_key, {}, attempts, run_id, "schedule",
        unanswered=unanswered,
    )  # fmt: skip
    parts.pool.queue[item.id] = item
    try:
        with e.store.begin() as conn:
            taskbudget.record(conn, e.stream, run_id, ["C01"], {"C01": [made]}, {})
            parts.dispatcher.supersede(conn, [item.id])
            open_now = taskbudget.load_open(conn, e.stream, AS_OF, prune=False)
    finally:
        parts.pool.shutdown()
    assert open_now == (Counter({("call", "RM1"): 1}) if maybe_sent else Counter())
    assert item.id not in parts.pool.queue


@QUEUED_TASKS
def test_a_withdrawn_task_gives_its_budget_back_so_a_third_read_meets_the_cap(
    tmp_path: Path, attempts: int, queued_by: str, unanswered: bool, maybe_sent: bool
) -> None:
    """C01's first read admitted its task to RM1 (cap 1); a second read plans nothing and
    withdraws it (``Dispatcher.withdraw``) only if it certainly never went out. Withdrawn,
    its place under the cap goes to C02's task, and a third read of C01 that wants its
    task again must meet RM1's cap like any other: it waits. It used to keep its
    admission (and its share of the rule's ``used``) and pass without counting, RM1 then
    holding 2 open tasks under a cap of 1. Not withdrawn (it may have reached the CRM),
    it keeps RM1's place, C02's waits, and the third read finds it still admitted."""
    given_back = not maybe_sent
    e = engine(TaskCrm(3), tmp_path, {"call": TaskLimit(budget=5, open_per_owner=1)})
    parts = RunParts(e, RunOptions(as_of=AS_OF))
    budget = parts.planner.budget
    assert budget is not None
    mine, other = task("C01:call", owner="RM1"), task("C02:call", owner="RM1")
    run_id = _queued_by(parts, queued_by)

    def read(conn: sa.Connection, cid: str, wanted: TaskAction) -> bool:
        """A page of one customer wanting ``wanted``: recounted, admitted, recorded."""
        budget.recount(conn, e.stream, AS_OF, [wanted])
        admitted, waiting = taskbudget.split(budget, [(cid, [wanted])])
        taskbudget.record(conn, e.stream, parts.run_id, [cid], admitted, waiting)
        return bool(admitted)

    try:
        with e.store.begin() as conn:
            assert read(conn, "C01", mine)
            item = OutboxItem(
                7, "C01", "task", mine.dedupe_key, {}, attempts, run_id, "x",
                unanswered=unanswered,
            )  # fmt: skip
            parts.pool.queue[item.id] = replace(item, action=mine)
            parts.recorder.decisions["C01"] = Decision("C01", None, {item.id}, True, None)
            assert parts.dispatcher.withdraw(conn, "C01") is given_back
            kept_admission = (budget.used["call"], mine.dedupe_key in budget.admitted)
            assert kept_admission == ((0, False) if given_back else (1, True))
            assert read(conn, "C02", other) is given_back  # the place C01's task left
            assert read(conn, "C01", mine) is not given_back  # the third read
            open_now = taskbudget.load_open(conn, e.stream, AS_OF, prune=False)
    finally:
        parts.pool.shutdown()
    assert open_now == Counter({("call", "RM1"): 1})  # never over the cap


def test_a_task_the_new_plan_makes_again_keeps_its_admission(tmp_path: Path) -> None:
    """A queued task superseded by a new plan that makes the same task again (same key, say
    a later due date) gives nothing back: the new item passed on the old one's admission
    (``Budget.admit``), and giving that back would leave the task queued uncounted."""
    e = engine(TaskCrm(2), tmp_path, {"call": TaskLimit(budget=5, open_per_owner=1)})
    parts = RunParts(e, RunOptions(as_of=AS_OF))
    budget = parts.planner.budget
    assert budget is not None
    mine = task("C01:call", owner="RM1")
    taskbudget.split(budget, [("C01", [mine])])
    item = OutboxItem(7, "C01", "task", mine.dedupe_key, {}, 0, parts.run_id, "x", None, mine)
    parts.pool.queue[item.id] = item
    try:
        with e.store.begin() as conn:
            parts.dispatcher.supersede(conn, [item.id], {mine.dedupe_key})
    finally:
        parts.pool.shutdown()
    assert (budget.used["call"], mine.dedupe_key in budget.admitted) == (1, True)
    assert budget.open == Counter({("call", "RM1"): 1})
