"""A task crmtier closed is no longer open (``sync.taskbudget``): when the CRM confirms the
closure of a sales task (a sanctions hit withdraws the customer's sales tasks,
``sync.planner.closures_of``), the task stops counting against its owner's cap in the
transaction that records that answer, so the owner gets new work up to the cap again.
It kept counting until its due date, and the owner got one task fewer than the cap allows.

The engine's real path on a real store (SQLite and PostgreSQL), over the in-memory CRM of
tests/sync/test_task_budget.py, taught to close tasks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from connectors.contract import CrmRecord, WritePlan, WriteResult
from sync import schema, taskbudget
from sync.engine import RunOptions
from sync.planner import SALES_TASK_RULES, SANCTIONS_REASON
from sync.store import StateStore
from sync.taskbudget import TaskLimit
from tests.sync.memory_crm import memory_engine
from tests.sync.test_task_budget import AS_OF, WRITEBACK, TaskCrm, task
from tests.sync.test_task_budget import assess as budget_assess
from tiering_core.models import Aml, AssessmentData, CustomerProfile

RULE = "upgrade_call"  # a sales task: a sanctions hit closes it
OWNER = "RM0"
assert RULE in SALES_TASK_RULES


class ClosingCrm(TaskCrm):
    """Customers of one relationship manager; a sanctioned one's record says so, and the
    CRM closes the tasks it is asked to (``closed``, by key)."""

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.sanctioned: set[str] = set()
        self.closed: Counter[str] = Counter()

    def _record(self, cid: str) -> CrmRecord:
        record = super()._record(cid)
        if cid not in self.sanctioned:
            return record
        profile = record.profile.model_copy(update={"aml": Aml(sanctions_hit=True)})
        return CrmRecord(profile, record.modstamp, record.current)

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        out = super().apply(plan)
        for close in plan.task_closes:
            self.closed[close.dedupe_key] += 1
            out.append(WriteResult("task_close", close.dedupe_key, True))
        return out


def assess(profiles: Sequence[CustomerProfile]) -> list[AssessmentData]:
    """Each customer wants one sales task of ``OWNER`` (C00 high, then by due date), unless
    sanctioned: then its sanctions reason, and no sales task."""
    rows = []
    for profile, row in zip(profiles, budget_assess(profiles), strict=True):
        index = int(profile.id[1:])
        others = [a for a in row["actions"] if a["kind"] != "task"]
        if profile.aml is not None and profile.aml.sanctions_hit:
            reason = {"code": SANCTIONS_REASON, "dimension": "aml", "factor": "sanctions_hit"}
            rows.append({**row, "aml_risk": "high", "reasons": [reason], "actions": others})
            continue
        priority = "high" if index == 0 else "normal"
        wanted = task(f"{profile.id}:call", priority, owner=OWNER, rule=RULE, due=index + 1)
        rows.append({**row, "actions": [*others, wanted.model_dump()]})
    return rows  # type: ignore[return-value]


def _open_and_waiting(store: StateStore, stream: str) -> tuple[Counter[tuple[str, str]], set[str]]:
    with store.begin() as conn:
        open_now = taskbudget.load_open(conn, stream, AS_OF, prune=False)
        t = schema.task_queue.c
        waiting = conn.execute(sa.select(t.key).where(t.status == "waiting")).scalars()
        return open_now, set(waiting)


def test_a_task_closed_by_a_sanctions_hit_frees_its_owner_s_place_under_the_cap(
    store: StateStore,
) -> None:
    """The owner is at the cap of 2 (C00's and C01's tasks; C02's waits). C00 is then
    sanctioned: the run that sees it closes C00's task in the CRM; the run after admits
    C02's waiting task for the owner, who again holds 2 open tasks, not 3."""
    crm = ClosingCrm(3)
    e = memory_engine(crm, store, WRITEBACK, assess, stream="closing:Customer")
    e.task_limits = {RULE: TaskLimit(open_per_owner=2)}
    first = e.run(RunOptions(as_of=AS_OF))
    assert first.status == "succeeded", first.error
    assert set(crm.tasks) == {"C00:call", "C01:call"}
    assert _open_and_waiting(store, e.stream) == (Counter({(RULE, OWNER): 2}), {"C02:call"})

    crm.sanctioned.add("C00")
    crm.stamp = datetime.now(UTC) - timedelta(minutes=1)  # the stream reads them again
    second = e.run(RunOptions(as_of=AS_OF))
    assert second.status == "succeeded", second.error
    assert crm.closed == Counter({"C00:call": 1})
    # the closure's answer is recorded: C00's task left the owner's count with it
    assert _open_and_waiting(store, e.stream) == (Counter({(RULE, OWNER): 1}), {"C02:call"})

    third = e.run(RunOptions(as_of=AS_OF))  # revisits C02, waiting for a place
    assert third.status == "succeeded", third.error
    assert crm.tasks == Counter({"C00:call": 1, "C01:call": 1, "C02:call": 1})
    assert _open_and_waiting(store, e.stream) == (Counter({(RULE, OWNER): 2}), set())
    assert crm.closed == Counter({"C00:call": 1})  # closed once
    with store.begin() as conn:
        se = schema.side_effects.c
        closed_on_record = conn.execute(
            sa.select(se.active).where(se.kind == "task", se.key == "C00:call")
        ).scalar_one()
    assert closed_on_record is False  # it stays on record, closed


class RefusingCrm(ClosingCrm):
    """Refuses C00's task: cleanly (a validation error: the CRM holds no such task) or
    retryably every time (a timeout: it may hold it)."""

    def __init__(self, n: int, *, retryable: bool) -> None:
        super().__init__(n)
        self.retryable = retryable

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        out = super().apply(plan)
        for i, result in enumerate(out):
            if result.kind == "task" and result.key == "C00:call":
                if not self.retryable:  # refused: not made; a timeout: made, answer lost
                    self.tasks["C00:call"] -= 1
                code = "TIMEOUT" if self.retryable else "FIELD_CUSTOM_VALIDATION_EXCEPTION"
                out[i] = WriteResult("task", result.key, False, code, "refused", self.retryable)
        return out


def _run_until_dead(
    crm: RefusingCrm, store: StateStore, runs: int
) -> tuple[Counter[tuple[str, str]], set[str]]:
    e = memory_engine(crm, store, WRITEBACK, assess, stream="refusing:Customer")
    e.task_limits = {RULE: TaskLimit(open_per_owner=2)}
    # no back-off between a write's retries: since a task in doubt is sent again within its
    # own place, every run retries C00's timed-out task (7.5 s of waits each at the default)
    e.settings = replace(e.settings, record_retry_base=0.0)
    for _ in range(runs):
        run = e.run(RunOptions(as_of=AS_OF))
        assert run.status in ("succeeded", "completed_with_errors"), run.error
    with store.begin() as conn:
        o = schema.outbox.c
        statuses = conn.execute(sa.select(o.status).where(o.key == "C00:call")).scalars()
        assert "dead" in set(statuses)
    return _open_and_waiting(store, e.stream)


def test_a_task_the_crm_refused_outright_frees_its_owner_s_place(store: StateStore) -> None:
    """The owner's cap is 2: C00's and C01's tasks are admitted, C02's waits. The CRM
    refuses C00's task outright (a validation error: it holds no such task), so the run
    that records the refusal frees its place (the next run's tasks compete for it); it
    kept counting until its due date."""
    crm = RefusingCrm(3, retryable=False)
    open_now, waiting = _run_until_dead(crm, store, runs=1)
    assert open_now[RULE, OWNER] == 1  # C01's only
    assert waiting == {"C02:call"}


def test_a_task_dead_lettered_and_planned_again_never_fails_the_run(store: StateStore) -> None:
    """C00's task reaches the CRM but every answer times out, and it is dead-lettered;
    later runs plan it again (crmtier does not know it was made) and send it again within
    its own place (``Budget.placed``). Its "made" row stays, so it keeps counting: the
    owner never holds more tasks in the CRM than the cap, and C02's waits. (Recording it
    as waiting beside that row failed every run after on the key's uniqueness.)"""
    crm = RefusingCrm(3, retryable=True)
    open_now, waiting = _run_until_dead(crm, store, runs=3)
    assert open_now[RULE, OWNER] == 2  # C00's (the CRM holds it, unanswered) and C01's
    assert waiting == {"C02:call"}
    # RM0 never above the cap (C00's re-sends upsert the one task by its key)
    assert {key for key, sent in crm.tasks.items() if sent > 0} == {"C00:call", "C01:call"}
