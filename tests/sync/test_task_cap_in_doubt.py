"""A task the CRM may already hold keeps its place on its owner's cap (``sync.taskbudget``)
until a closure finds and closes it: superseded before it is sent again
(``Dispatcher.supersede``), refused at its first attempt, or its closure finding nothing
under its key while it is in doubt (``AnswerBatch``), whoever judges it. Both ask the
run's one rule of what the CRM may hold (``sync.maybe_made``), which the write pool and
the recorder take as a required argument: neither has a weaker rule of its own to fall
back on.

The dispatcher, recorder and budget of a real run (``RunParts``) on a real SQLite store."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa

from connectors.contract import CrmRecord, WriteResult
from sync import taskbudget
from sync.engine import RunOptions
from sync.maybe_made import MaybeMade
from sync.outbox import OutboxItem
from sync.planner import CustomerPlan
from sync.recorder import PageRows, Recorder
from sync.records import DecisionsAt, PendingDecision, Planned
from sync.run_parts import RunParts
from sync.state import load_states, mark_in_doubt, save_states
from sync.taskbudget import TaskLimit
from sync.writepool import WritePool
from tests.sync.test_task_budget import AS_OF, TaskCrm, engine, task
from tiering_core.models import AssessmentData, CustomerProfile, TaskAction

#: one open ``call`` task per relationship manager
CAP = {"call": TaskLimit(budget=5, open_per_owner=1)}


def _planned(cid: str, tasks: tuple[TaskAction, ...]) -> tuple[Planned, PendingDecision]:
    """A read of ``cid`` whose plan makes ``tasks`` (none: it writes nothing)."""
    record = CrmRecord(CustomerProfile(id=cid), datetime.now(UTC), {})
    plan = CustomerPlan(cid, tasks=tasks)
    planned = Planned(
        record, cast(AssessmentData, {}), plan, {}, cast(DecisionsAt, []), 0
    )  # the dispatcher reads the plan alone
    pending = PendingDecision({}, {}, AS_OF, None, (), "p1", "h", None, "sync", None)
    return planned, pending


def _read(parts: RunParts, conn: sa.Connection, cid: str, wanted: TaskAction) -> bool:
    """A page of one customer wanting ``wanted``: recounted, admitted, recorded."""
    budget = parts.planner.budget
    assert budget is not None
    budget.recount(conn, parts.e.stream, AS_OF, [wanted])
    admitted, waiting = taskbudget.split(budget, [(cid, [wanted])])
    taskbudget.record(conn, parts.e.stream, parts.run_id, [cid], admitted, waiting)
    return bool(admitted)


@pytest.mark.parametrize("in_doubt", [True, False], ids=["in-doubt-on-record", "never-sent"])
def test_a_task_in_doubt_superseded_before_it_is_sent_again_keeps_its_owner_s_cap_place(
    tmp_path: Path, in_doubt: bool
) -> None:
    """RM1 may hold two open calls. C01's went out in an earlier run and its call went
    unanswered (in doubt on record: the CRM may hold it, and it holds one of RM1's
    places). This run plans it again, then reads C01 once more and no longer wants it:
    the queued re-send is withdrawn, never sent. The earlier call may still have made the
    task, so its place stays: C02's task takes RM1's other place and C03's waits. The
    place was given back (the re-send itself never went out), both were admitted, and
    RM1 could hold three open calls under a cap of two. A task never sent before gives
    its place back, and C03's task takes it."""
    e = engine(TaskCrm(4), tmp_path, {"call": TaskLimit(budget=5, open_per_owner=2)})
    parts = RunParts(e, RunOptions(as_of=AS_OF))
    mine = task("C01:call", owner="RM1")
    earlier = OutboxItem(3, "C01", "task", mine.dedupe_key, {"rule": "call"}, 1, "r0", "sync")
    try:
        with e.store.begin() as conn:
            save_states(conn, e.stream, [{"customer_id": "C01", "pseudonym": "p-C01"}])
            if in_doubt:  # the earlier run admitted it and sent it, unanswered
                taskbudget.record(conn, e.stream, "r0", ["C01"], {"C01": [mine]}, {})
                mark_in_doubt(conn, e.stream, [earlier], "r0")
            states = load_states(conn, e.stream, ["C01"])
        with e.store.begin() as conn:
            assert _read(parts, conn, "C01", mine)
            parts.dispatcher.enqueue(conn, [_planned("C01", (mine,))], states, PageRows())
        with e.store.begin() as conn:  # read again: the newest plan writes nothing
            assert parts.dispatcher.withdraw(conn, "C01")
            assert _read(parts, conn, "C02", task("C02:call", owner="RM1"))
            assert _read(parts, conn, "C03", task("C03:call", owner="RM1")) is not in_doubt
            open_now = taskbudget.load_open(conn, e.stream, AS_OF, prune=False)
    finally:
        parts.pool.shutdown()
    assert open_now == Counter({("call", "RM1"): 2})  # never over the cap


def _recorder(parts: RunParts, maybe_made: MaybeMade) -> Recorder:
    """A recorder built on its own, as a bench or a tool would, with the run's rule."""
    e = parts.e
    return Recorder(
        e.store, e.stream, parts.run_id, key=e.key, audit_keys=e.audit_keys,
        trigger="sync", actor="test", retry_attempts=1, decisions={}, maybe_made=maybe_made,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("queued_by", "kept"), [("a-dead-run", True), ("this-run", False)], ids=["died", "fresh"]
)
def test_a_recorder_built_alone_judges_a_refusal_by_the_run_s_rule(
    tmp_path: Path, queued_by: str, kept: bool
) -> None:
    """A dead run's task (it may have sent it before it died) that this run's first
    attempt finds refused outright: the CRM may hold it from the dead run's call, so it
    keeps RM1's place. A recorder built without a dispatcher judged it by its own default
    (``attempts > 0``: none yet) and gave the place back. The run's own never-sent task
    refused outright made nothing, and leaves the cap."""
    e = engine(TaskCrm(2), tmp_path, CAP)
    parts = RunParts(e, RunOptions(as_of=AS_OF))
    parts.pool.shutdown()
    maybe_made = MaybeMade(parts.run_id)
    maybe_made.died.add("a-dead-run")
    recorder = _recorder(parts, maybe_made)
    mine = task("C01:call", owner="RM1")
    run_id = parts.run_id if queued_by == "this-run" else queued_by
    item = OutboxItem(7, "C01", "task", mine.dedupe_key, {"rule": "call"}, 0, run_id, "sync")
    with e.store.begin() as conn:
        taskbudget.record(conn, e.stream, run_id, ["C01"], {"C01": [mine]}, {})
    refused = WriteResult("task", mine.dedupe_key, False, "FIELD_CUSTOM_VALIDATION_EXCEPTION")
    recorder.record_results([([item], [refused])])
    with e.store.begin() as conn:
        open_now = taskbudget.load_open(conn, e.stream, AS_OF, prune=False)
    assert open_now == (Counter({("call", "RM1"): 1}) if kept else Counter())


#: each part's constructor arguments but the rule
PARTS = {
    "pool": (WritePool, {"holding": bool, "record": list, "after_record": bool}),
    "recorder": (
        Recorder,
        {
            "key": b"", "audit_keys": None, "trigger": "sync", "actor": "a",
            "retry_attempts": 1, "decisions": {},
        },
    ),
}  # fmt: skip


@pytest.mark.parametrize("part", sorted(PARTS))
def test_the_pool_and_the_recorder_take_the_rule_or_refuse_to_start(part: str) -> None:
    """No weaker default to fall back on: building either without the run's rule fails
    at once (the old default said any attempted item, and nothing else, may be made)."""
    build, kwargs = PARTS[part]
    positional: tuple[Any, ...] = (None, None) if part == "pool" else (None, "s", "r")
    with pytest.raises(TypeError, match="maybe_made"):
        build(*positional, **kwargs)


@pytest.mark.parametrize(
    ("in_doubt", "absent", "kept"),
    [(True, True, True), (True, False, False), (False, True, False), (False, False, False)],
    ids=["in-doubt-found-absent", "in-doubt-closed", "made-found-absent", "made-closed"],
)
def test_a_closure_that_finds_no_task_in_doubt_keeps_its_owner_s_cap_place(
    tmp_path: Path, in_doubt: bool, absent: bool, kept: bool
) -> None:
    """C01 is sanctioned, and its sales task closed. Its making went unanswered (in doubt)
    and the closure's look-up found nothing under the key: the making may still land
    after that look-up, so the task stays in doubt, and it keeps RM1's place, as any task
    a call of which went unanswered does until its due date. The place was given back, and
    RM1 could get a new task beside one the CRM may yet hold. A closure that found and
    closed the task, or found no task crmtier had made (the RM deleted it), frees it."""
    e = engine(TaskCrm(2), tmp_path, CAP)
    parts = RunParts(e, RunOptions(as_of=AS_OF))
    parts.pool.shutdown()
    mine = task("C01:call", owner="RM1")
    payload: dict[str, Any] = {"rule": "call", "in_doubt": True} if in_doubt else {"rule": "call"}
    closure = OutboxItem(9, "C01", "task_close", mine.dedupe_key, payload, 0, parts.run_id, "sync")
    with e.store.begin() as conn:
        save_states(conn, e.stream, [{"customer_id": "C01", "pseudonym": "p-C01"}])
        taskbudget.record(conn, e.stream, "r0", ["C01"], {"C01": [mine]}, {})
    answer = WriteResult("task_close", mine.dedupe_key, True, absent=absent)
    parts.recorder.record_results([([closure], [answer])])
    with e.store.begin() as conn:
        open_now = taskbudget.load_open(conn, e.stream, AS_OF, prune=False)
        states = load_states(conn, e.stream, ["C01"])
    assert open_now == (Counter({("call", "RM1"): 1}) if kept else Counter())
    # the mark and the place go together
    assert (mine.dedupe_key in states["C01"].tasks_in_doubt) is kept


@pytest.mark.parametrize(("owner", "sent"), [("RM1", True), ("RM2", False)], ids=["same", "moved"])
def test_a_task_in_doubt_planned_again_does_not_wait_for_its_own_place(
    tmp_path: Path, owner: str, sent: bool
) -> None:
    """RM1 may hold one open call, and holds C01's, in doubt (its making went unanswered).
    C01 still wants it, and is planned again: its re-send looks its key up, making it only
    if absent, so RM1 still holds one at most. It was counted twice (its own place, then
    itself): it waited for room that never came, and was never sent to settle its doubt.
    C02's task for RM1 still waits. A task moved to an owner at the cap (RM2, who holds
    C03's) is a new place there, and waits."""
    e = engine(TaskCrm(4), tmp_path, CAP)
    parts = RunParts(e, RunOptions(as_of=AS_OF))
    parts.pool.shutdown()
    held = task("C01:call", owner="RM1")
    earlier = OutboxItem(3, "C01", "task", held.dedupe_key, {"rule": "call"}, 1, "r0", "sync")
    with e.store.begin() as conn:
        save_states(conn, e.stream, [{"customer_id": "C01", "pseudonym": "p-C01"}])
        taskbudget.record(conn, e.stream, "r0", ["C01"], {"C01": [held]}, {})
        taskbudget.record(
            conn, e.stream, "r0", ["C03"], {"C03": [task("C03:call", owner="RM2")]}, {}
        )
        mark_in_doubt(conn, e.stream, [earlier], "r0")
    with e.store.begin() as conn:
        assert _read(parts, conn, "C01", task("C01:call", owner=owner)) is sent
        assert not _read(parts, conn, "C02", task("C02:call", owner="RM1"))
        open_now = taskbudget.load_open(conn, e.stream, AS_OF, prune=False)
    assert open_now == Counter({("call", "RM1"): 1, ("call", "RM2"): 1})  # never over the cap
