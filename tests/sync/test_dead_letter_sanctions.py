"""A sales task whose write call timed out on every attempt is dead-lettered, though the
CRM may have made it (the call reached the CRM; only the answer was lost). When the
customer is later sanctioned, that task must be withdrawn like any other open sales task
crmtier made (``sync.planner.closures_of``), or a restricted customer keeps sales work
(REC-C), whatever became of its letter meanwhile (resolved by a newer decision that no
longer wanted the task, acknowledged, or the retry refused): until a write of it is
answered, the CRM may hold it. A task the CRM refused on its own (a validation error) was
never made: nothing to close, no call, and its letter is superseded by the newer decision
that writes nothing. A customer not restricted keeps its task, retried as before.

The engine's real path on a real store (SQLite and PostgreSQL), over an in-memory CRM
that either makes the task and then fails the call as a timeout would
(``TransientError``), or refuses the task record as a validation rule would."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from connectors.calltally import CallCounter
from connectors.contract import Capabilities, WritePlan, WriteResult
from connectors.errors import QuotaExhaustedError, TransientError
from connectors.mapping import WritebackConfig
from sync import outbox, runs, schema, taskbudget
from sync.engine import RunOptions, SyncEngine
from sync.store import StateStore
from sync.taskbudget import TaskLimit
from tests.sync.memory_crm import OneCustomerCrm, memory_engine
from tests.sync.test_task_budget import assess as budget_assess
from tiering_core.models import AssessmentData, CustomerProfile

AS_OF = date(2026, 5, 4)
WRITEBACK = WritebackConfig(fields={"value_tier": "Tier"})


#: how the first run's task write fails: its call times out after the CRM made the task,
#: or the CRM refuses the task record (a validation rule) and makes nothing
TIMEOUT, REFUSED = "timeout", "refused"


#: the customer as the CRM holds it: an upgrade call due, sanctioned, or changed otherwise
#: (a new tier, no sales work wanted, not restricted); its deposits in the CRM say which
UPGRADE, SANCTIONED, CHANGED = 1.0, 2.0, 3.0
#: the customer as it was, but no sales work wanted: nothing to write
NOTHING = 4.0


class TimeoutCrm(OneCustomerCrm):
    """One customer; while ``failing``, each write call with tasks fails as the next of
    ``failures`` says (the last one again once they run out)."""

    capabilities = Capabilities(crm="sales", page_size=10, max_write_batch=10)

    def __init__(self, *failures: str) -> None:
        self.stamp = datetime.now(UTC) - timedelta(minutes=5)
        self.deposits = UPGRADE  # the hit is an input of the customer
        self.failures = list(failures or (TIMEOUT,))
        self.failing = True
        self.tier: str | None = None
        self.open_tasks: set[str] = set()
        self.closes: list[str] = []  # every task closure sent, in order
        self.calls = CallCounter()

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        failure = None
        if self.failing and plan.tasks:
            failure = self.failures.pop(0) if len(self.failures) > 1 else self.failures[0]
        refused = failure == REFUSED
        if not refused:
            self.open_tasks.update(upsert.task.dedupe_key for upsert in plan.tasks)
        self.closes += [close.dedupe_key for close in plan.task_closes]
        self.open_tasks.difference_update(close.dedupe_key for close in plan.task_closes)
        if failure == TIMEOUT:
            raise TransientError("read timed out")
        for update in plan.field_updates:
            self.tier = str(update.fields["value_tier"])
        return [
            *(WriteResult("field_update", u.customer_id, True) for u in plan.field_updates),
            *(
                WriteResult("task", u.task.dedupe_key, False, "FIELD_CUSTOM_VALIDATION_EXCEPTION")
                if refused
                else WriteResult("task", u.task.dedupe_key, True)
                for u in plan.tasks
            ),
            *(WriteResult("membership", m.dedupe_key, True) for m in plan.memberships),
            *(WriteResult("task_close", c.dedupe_key, True) for c in plan.task_closes),
        ]


def assess(profiles: Sequence[CustomerProfile]) -> list[AssessmentData]:
    """``UPGRADE``: an upgrade call is due; ``SANCTIONED``: a sanctions hit (prohibited,
    no sales work); ``CHANGED``: affluent, nothing else wanted. The rest of each decision
    is test_task_budget's."""
    out = []
    for p, row in zip(profiles, budget_assess(profiles), strict=True):
        deposits = p.assets.deposits if p.assets else None
        sanctioned = deposits == SANCTIONED
        tier = "affluent" if deposits == CHANGED else "mass"
        actions: list[dict[str, object]] = [
            {"kind": "set_field", "field": "value_tier", "value": tier}
        ]
        if deposits == UPGRADE:
            task = {"rule": "upgrade_call", "subject": "upgrade", "priority": "normal"}
            task |= {"due": AS_OF.isoformat(), "owner_id": None, "queue": None}
            actions.append({"kind": "task", "dedupe_key": f"{p.id}:upgrade_call", **task})
        reasons = [{"code": "AML_SANCTIONS", "text": "hit"}] if sanctioned else []
        aml = "prohibited" if sanctioned else "low"
        out.append(
            {**row, "value_tier": tier, "aml_risk": aml, "reasons": reasons, "actions": actions}
        )
    return out  # type: ignore[return-value]


def _closed_rows(store: StateStore) -> list[dict[str, object]]:
    """The ``task_closed`` audit rows' values, oldest first."""
    with store.begin() as conn:
        a = schema.audit
        query = sa.select(a.c.new).where(a.c.event == "task_closed").order_by(a.c.seq)
        return [dict(new) for new in conn.execute(query).scalars()]


def _letters(store: StateStore) -> list[tuple[str, str, str]]:
    """Every dead letter's (key, error code, status)."""
    with store.begin() as conn:
        d = schema.dead_letters
        query = sa.select(d.c.key, d.c.error_code, d.c.status).order_by(d.c.id)
        return [tuple(row) for row in conn.execute(query)]


KEY = "C00:upgrade_call"


def _engine(crm: TimeoutCrm, store: StateStore) -> SyncEngine:
    """Two attempts a write, retried at once."""
    e = memory_engine(crm, store, WRITEBACK, assess, stream="sales:Customer")
    e.settings = replace(e.settings, record_retry_attempts=2, record_retry_base=0.0)
    return e


@pytest.mark.parametrize(
    ("failure", "sanctioned", "open_after", "closes", "closed_rows", "code", "letter"),
    [
        # REC1: the CRM may hold the task: closed as in doubt
        (
            TIMEOUT,
            True,
            set(),
            [KEY],
            [{"rule": "upgrade_call", "key": KEY, "closed": True, "in_doubt": True}],
            "TRANSIENT",
            "resolved",
        ),
        # REC2: the CRM refused it, made nothing: no closure sent; the newer decision
        # writes nothing (the task no longer wanted), so the letter is not retried again
        (REFUSED, True, set(), [], [], "FIELD_CUSTOM_VALIDATION_EXCEPTION", "superseded"),
        # REC3: not restricted: the task is still wanted, sent again, never closed
        (TIMEOUT, False, {KEY}, [], [], "TRANSIENT", "resolved"),
    ],
    ids=["REC1-timeout-sanctioned", "REC2-refused-sanctioned", "REC3-timeout-not-restricted"],
)
def test_a_dead_lettered_sales_task_is_withdrawn_on_a_later_sanctions_hit(
    store: StateStore,
    failure: str,
    sanctioned: bool,
    open_after: set[str],
    closes: list[str],
    closed_rows: list[dict[str, object]],
    code: str,
    letter: str,
) -> None:
    crm = TimeoutCrm(failure)
    e = _engine(crm, store)
    first = e.run(RunOptions(as_of=AS_OF))
    assert first.counts.dead_lettered == 1, first.counts.as_json()
    assert crm.open_tasks == ({KEY} if failure == TIMEOUT else set())  # made, answer lost
    assert _letters(store) == [(KEY, code, "open")]
    crm.failing = False
    crm.changed(SANCTIONED if sanctioned else UPGRADE)
    second = e.run(RunOptions(as_of=AS_OF))
    assert second.status == "succeeded", second.error
    assert second.counts.dead_lettered == 0, second.counts.as_json()
    assert crm.open_tasks == open_after, "a sanctioned customer keeps a sales task"
    assert crm.closes == closes
    assert _closed_rows(store) == closed_rows
    # a newer decision of the customer that went through (the closure's among them)
    # resolves its letter, as any other does; one that writes nothing supersedes it
    assert _letters(store) == [(KEY, code, letter)]
    assert second.dead_letters_open == 0


#: what happens to the customer between the run whose task call went unanswered and its
#: sanctions hit: the CRM holds the task whatever became of the dead letter
CLOSED_IN_DOUBT = [{"rule": "upgrade_call", "key": KEY, "closed": True, "in_doubt": True}]


@pytest.mark.parametrize(
    ("failures", "meanwhile", "letter", "closed_rows"),
    [
        # REC4: a clean decision that no longer wants the task resolves its letter
        ((TIMEOUT,), "changed", ("TRANSIENT", "resolved"), CLOSED_IN_DOUBT),
        # REC5: the operator acknowledged the letter (stop retrying), the task stays
        ((TIMEOUT,), "acked", ("TRANSIENT", "acked"), CLOSED_IN_DOUBT),
        # REC6: a timeout, then the CRM refused the retry: the first call may have made it
        (
            (TIMEOUT, REFUSED),
            None,
            ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "resolved"),
            CLOSED_IN_DOUBT,
        ),
        # REC9: a newer decision that writes nothing at all supersedes its letter
        ((TIMEOUT,), "dropped", ("TRANSIENT", "superseded"), CLOSED_IN_DOUBT),
        # REC7: made again since (a write of it answered): closed as a task on record
        (
            (TIMEOUT,),
            "made",
            ("TRANSIENT", "resolved"),
            [{"rule": "upgrade_call", "key": KEY, "closed": True}],
        ),
    ],
    ids=[
        "REC4-timeout-clean-change",
        "REC5-acked",
        "REC6-timeout-then-refused",
        "REC9-superseded-letter",
        "REC7-made",
    ],
)
@pytest.mark.parametrize("path", ["sync", "webhook"])
def test_an_unanswered_task_is_closed_on_a_sanctions_hit_whatever_came_between(
    store: StateStore,
    failures: tuple[str, ...],
    meanwhile: str | None,
    letter: tuple[str, str],
    closed_rows: list[dict[str, object]],
    path: str,
) -> None:
    """Unanswered, the task may be in the CRM until a write of it is answered: a later
    clean decision, an ``ack`` or a refusal of the retry do not say it is not there. The
    hit is met by a sync run or by a webhook pass (``process_records``): both plan from
    the customer's state, which holds the task in doubt."""
    crm = TimeoutCrm(*failures)
    e = _engine(crm, store)
    assert e.run(RunOptions(as_of=AS_OF)).counts.dead_lettered == 1
    assert crm.open_tasks == {KEY}  # the first call made it; its answer was lost
    crm.failing = False
    if meanwhile == "acked":
        with store.begin() as conn:
            assert outbox.ack_dead_letters(conn, "sales:Customer", None) == 1
    elif meanwhile is not None:
        crm.changed({"changed": CHANGED, "dropped": NOTHING}.get(meanwhile, UPGRADE))
        between = e.run(RunOptions(as_of=AS_OF))
        assert between.status == "succeeded" and between.counts.dead_lettered == 0
    crm.changed(SANCTIONED)
    webhook = path == "webhook"
    last = e.process_records([crm.record()]) if webhook else e.run(RunOptions(as_of=AS_OF))
    assert last.status == "succeeded", last.error
    assert crm.open_tasks == set(), "a sanctioned customer keeps a sales task"
    assert crm.closes == [KEY]
    assert _closed_rows(store) == closed_rows
    assert _letters(store) == [(KEY, *letter)]
    with store.begin() as conn:  # answered now: no longer in doubt
        effects = schema.side_effects
        row = conn.execute(sa.select(effects.c.active, effects.c.in_doubt)).one()
    assert (row.active, bool(row.in_doubt)) == (False, False)


#: the CRM made the task, then the call's answer was lost with the process (a run killed
#: once the call returned): the run's record says it died, its task row is still pending
DIED = "died"


class DyingCrm(TimeoutCrm):
    """The task call makes the task, then the run ends there (a quota pause stands in for
    the kill; the run's record is then marked as ``mark_interrupted`` marks a dead one)."""

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        if self.failing and plan.tasks and self.failures[0] == DIED:
            self.open_tasks.update(upsert.task.dedupe_key for upsert in plan.tasks)
            for update in plan.field_updates:
                self.tier = str(update.fields["value_tier"])
            raise QuotaExhaustedError("stands in for the kill")
        return super().apply(plan)


def _died(store: StateStore, run_id: str) -> None:
    with store.begin() as conn:
        r = schema.runs
        conn.execute(
            r.update().where(r.c.id == run_id).values(status="failed", error=runs.INTERRUPTED)
        )


def test_rec8_a_dead_run_s_task_no_longer_wanted_is_closed_on_a_later_sanctions_hit(
    store: StateStore,
) -> None:
    """A run died with a sales task's call returned: the task is in the CRM, nothing on
    record says so. The next run re-plans the customer, who no longer wants the task (not
    restricted: a new tier), and supersedes it. The task may still be open in the CRM: a
    later sanctions hit must close it, as in doubt."""
    crm = DyingCrm(DIED)
    e = _engine(crm, store)
    first = e.run(RunOptions(as_of=AS_OF))
    _died(store, first.run_id)
    assert crm.open_tasks == {KEY}
    crm.failing = False
    crm.changed(CHANGED)
    between = e.run(RunOptions(as_of=AS_OF))
    assert between.status == "succeeded", between.error
    assert crm.closes == [] and crm.open_tasks == {KEY}  # not restricted: left as it is
    assert between.counts.skipped == {}, between.counts.as_json()
    with store.begin() as conn:  # the task's write superseded, never answered
        o = schema.outbox
        query = sa.select(o.c.status).where(o.c.kind == "task")
        assert conn.execute(query).scalars().all() == ["superseded"]
    crm.changed(SANCTIONED)
    last = e.run(RunOptions(as_of=AS_OF))
    assert last.status == "succeeded", last.error
    assert crm.open_tasks == set(), "a sanctioned customer keeps a sales task"
    assert _closed_rows(store) == CLOSED_IN_DOUBT


def _owned(profiles: Sequence[CustomerProfile]) -> list[AssessmentData]:
    """``assess``, the upgrade call owned by a relationship manager (counted on a cap)."""
    rows = assess(profiles)
    for row in rows:
        for action in row["actions"]:
            if action["kind"] == "task":
                action["owner_id"] = "RM0"  # type: ignore[index]
    return rows


def test_rec10_a_task_in_doubt_refused_when_re_sent_keeps_counting_on_its_owner_s_cap(
    store: StateStore,
) -> None:
    """The first call made the task, its answer lost (dead-lettered unanswered); the next
    run sends it again, and the CRM refuses that first attempt of the new write. The task
    may be open in the CRM (it is): it keeps counting against its owner's cap, as the
    write that made it did, not freed as a task the CRM never made."""
    crm = TimeoutCrm(TIMEOUT, TIMEOUT, REFUSED)
    e = memory_engine(crm, store, WRITEBACK, _owned, stream="sales:Customer")
    e.settings = replace(e.settings, record_retry_attempts=2, record_retry_base=0.0)
    e.task_limits = {"upgrade_call": TaskLimit(open_per_owner=2)}
    assert e.run(RunOptions(as_of=AS_OF)).counts.dead_lettered == 1
    crm.changed(UPGRADE)  # still wanted: sent again
    second = e.run(RunOptions(as_of=AS_OF))
    assert second.counts.write_failures == {"task": 1}, second.counts.as_json()
    assert crm.open_tasks == {KEY}
    with store.begin() as conn:
        open_now = taskbudget.load_open(conn, "sales:Customer", AS_OF, prune=False)
    assert open_now == {("upgrade_call", "RM0"): 1}
