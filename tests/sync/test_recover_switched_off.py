"""A stopped run's pending task creates, queued while tasks were written back, are not sent
by a later run that has tasks off (``[writeback] tasks = false`` or ``--only fields``):
recovery plans their customers again (``sync.run_outbox.recover``), the new plan makes no
task, and the create is superseded. One that may have reached the CRM (its run died after
the call) stays in doubt on record, so a later sanctions hit still closes it.

The engine's real path on a real store (SQLite and PostgreSQL), over the in-memory CRM of
``test_dead_letter_sanctions``: a quota pause stops the first run at its task call."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa

from connectors.contract import WritePlan, WriteResult
from connectors.errors import QuotaExhaustedError
from sync import schema
from sync.engine import RunOptions, SyncEngine
from sync.store import StateStore
from tests.sync.memory_crm import memory_engine
from tests.sync.test_dead_letter_sanctions import (
    AS_OF,
    KEY,
    SANCTIONED,
    WRITEBACK,
    TimeoutCrm,
    _died,
    _letters,
    assess,
)

#: the two ways a run writes no task: the config's switch, or a fields-only run
TASKS_OFF = ["config", "only-fields"]


class PausingCrm(TimeoutCrm):
    """While ``failing``, a write call with tasks pauses the run (quota) before the CRM
    makes anything, or after it made the task when ``landed``."""

    landed = False

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        if self.failing and plan.tasks:
            if self.landed:
                self.open_tasks.update(upsert.task.dedupe_key for upsert in plan.tasks)
            raise QuotaExhaustedError("quota")
        return super().apply(plan)


def _engine(crm: TimeoutCrm, store: StateStore, tasks: bool = True) -> SyncEngine:
    e = memory_engine(
        crm, store, WRITEBACK.model_copy(update={"tasks": tasks}), assess, stream="sales:Customer"
    )
    e.settings = replace(e.settings, record_retry_attempts=2, record_retry_base=0.0)
    return e


def _task_rows(store: StateStore) -> tuple[list[str], list[tuple[bool, bool]]]:
    """The task rows' outbox statuses, and the side effects' (active, in doubt)."""
    with store.begin() as conn:
        o, s = schema.outbox, schema.side_effects
        statuses = conn.execute(sa.select(o.c.status).where(o.c.kind == "task")).scalars().all()
        effects = conn.execute(sa.select(s.c.active, s.c.in_doubt)).tuples().all()
    return list(statuses), [(bool(a), bool(d)) for a, d in effects]


def _second_run(crm: TimeoutCrm, store: StateStore, how: str) -> None:
    crm.failing = False
    only_fields = how == "only-fields"
    e = _engine(crm, store, tasks=only_fields)  # a fields-only run of a config with tasks on
    done = e.run(RunOptions(as_of=AS_OF, only_fields=only_fields))
    assert done.status == "succeeded", done.error
    assert done.counts.writes.get("task", 0) == 0, done.counts.as_json()


@pytest.mark.parametrize("how", TASKS_OFF)
def test_a_stopped_runs_task_is_not_made_once_tasks_are_off(store: StateStore, how: str) -> None:
    crm = PausingCrm()
    first = _engine(crm, store).run(RunOptions(as_of=AS_OF))
    assert first.status == "paused_quota", first.error
    assert _task_rows(store) == (["pending"], [])
    _second_run(crm, store, how)
    assert crm.open_tasks == set(), "a task made while tasks are off"
    assert _task_rows(store) == (["superseded"], [])
    assert _letters(store) == []


@pytest.mark.parametrize("how", TASKS_OFF)
def test_a_superseded_task_that_may_have_landed_is_closed_on_a_sanctions_hit(
    store: StateStore, how: str
) -> None:
    crm = PausingCrm()
    crm.landed = True
    first = _engine(crm, store).run(RunOptions(as_of=AS_OF))
    _died(store, first.run_id)  # the call went out and the run died: it may be in the CRM
    _second_run(crm, store, how)
    assert crm.open_tasks == {KEY}  # not sent again, but the CRM holds it
    assert _task_rows(store) == (["superseded"], [(False, True)])  # in doubt on record
    crm.changed(SANCTIONED)
    last = _engine(crm, store, tasks=False).run(RunOptions(as_of=AS_OF))
    assert last.status == "succeeded", last.error
    assert crm.open_tasks == set(), "a sanctioned customer keeps a sales task"
    assert crm.closes == [KEY]
