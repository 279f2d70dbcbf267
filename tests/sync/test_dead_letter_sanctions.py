"""A sales task whose write call timed out on every attempt is dead-lettered, though the
CRM may have made it (the call reached the CRM; only the answer was lost). When the
customer is later sanctioned, that task must be withdrawn like any other open sales task
crmtier made (``sync.planner.closures_of``), or a restricted customer keeps sales work
(REC-C). A task the CRM refused on its own (a validation error) was never made: nothing
to close, no call. A customer not restricted keeps its task, retried as before.

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
from connectors.contract import Capabilities, CrmRecord, WritePlan, WriteResult
from connectors.errors import TransientError
from connectors.mapping import WritebackConfig
from sync import schema
from sync.engine import RunOptions
from sync.store import StateStore
from tests.sync.memory_crm import OneCustomerCrm, memory_engine
from tests.sync.test_task_budget import assess as budget_assess
from tiering_core.models import AssessmentData, Assets, CustomerProfile

AS_OF = date(2026, 5, 4)
WRITEBACK = WritebackConfig(fields={"value_tier": "Tier"})


#: how the first run's task write fails: its call times out after the CRM made the task,
#: or the CRM refuses the task record (a validation rule) and makes nothing
TIMEOUT, REFUSED = "timeout", "refused"


class TimeoutCrm(OneCustomerCrm):
    """One customer; while ``failing``, a write call with tasks fails as ``failure`` says."""

    capabilities = Capabilities(crm="sales", page_size=10, max_write_batch=10)

    def __init__(self, failure: str = TIMEOUT) -> None:
        self.stamp = datetime.now(UTC) - timedelta(minutes=5)
        self.sanctioned = False
        self.failure = failure
        self.failing = True
        self.tier: str | None = None
        self.open_tasks: set[str] = set()
        self.closes: list[str] = []  # every task closure sent, in order
        self.calls = CallCounter()

    def record(self) -> CrmRecord:
        deposits = 2.0 if self.sanctioned else 1.0  # the hit is an input of the customer
        profile = CustomerProfile(id="C00", assets=Assets(deposits=deposits))
        return CrmRecord(profile, self.stamp, {"value_tier": self.tier})

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        refused = self.failing and self.failure == REFUSED
        if not refused:
            self.open_tasks.update(upsert.task.dedupe_key for upsert in plan.tasks)
        self.closes += [close.dedupe_key for close in plan.task_closes]
        self.open_tasks.difference_update(close.dedupe_key for close in plan.task_closes)
        if self.failing and self.failure == TIMEOUT and plan.tasks:
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
    """Deposits 1: an upgrade call is due; 2: a sanctions hit (prohibited, no sales work).
    The rest of each decision is test_task_budget's."""
    out = []
    for p, row in zip(profiles, budget_assess(profiles), strict=True):
        sanctioned = bool(p.assets and p.assets.deposits == 2.0)
        actions: list[dict[str, object]] = [
            {"kind": "set_field", "field": "value_tier", "value": "mass"}
        ]
        if not sanctioned:
            task = {"rule": "upgrade_call", "subject": "upgrade", "priority": "normal"}
            task |= {"due": AS_OF.isoformat(), "owner_id": None, "queue": None}
            actions.append({"kind": "task", "dedupe_key": f"{p.id}:upgrade_call", **task})
        reasons = [{"code": "AML_SANCTIONS", "text": "hit"}] if sanctioned else []
        aml = "prohibited" if sanctioned else "low"
        out.append({**row, "aml_risk": aml, "reasons": reasons, "actions": actions})
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
        # REC2: the CRM refused it, made nothing: no closure sent
        # (the newer plan writes nothing, so nothing resolves the letter: as on main)
        (REFUSED, True, set(), [], [], "FIELD_CUSTOM_VALIDATION_EXCEPTION", "open"),
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
    e = memory_engine(crm, store, WRITEBACK, assess, stream="sales:Customer")
    e.settings = replace(e.settings, record_retry_attempts=2, record_retry_base=0.0)
    first = e.run(RunOptions(as_of=AS_OF))
    assert first.counts.dead_lettered == 1, first.counts.as_json()
    assert crm.open_tasks == ({KEY} if failure == TIMEOUT else set())  # made, answer lost
    assert _letters(store) == [(KEY, code, "open")]
    crm.failing, crm.sanctioned = False, sanctioned
    crm.stamp = datetime.now(UTC) - timedelta(seconds=30)
    second = e.run(RunOptions(as_of=AS_OF))
    assert second.status == "succeeded", second.error
    assert second.counts.dead_lettered == 0, second.counts.as_json()
    assert crm.open_tasks == open_after, "a sanctioned customer keeps a sales task"
    assert crm.closes == closes
    assert _closed_rows(store) == closed_rows
    # a newer decision of the customer that went through (the closure's among them)
    # resolves its letter, as any other does
    assert _letters(store) == [(KEY, code, letter)]
