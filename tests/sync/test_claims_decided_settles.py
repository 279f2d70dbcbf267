"""A record version a committed page decided from, read again before that decision's
writes show in it, is settled by the decision (``sync.claims.Admission.repeated``,
``PagePlanner.settled``): it is not decided again against fields the CRM already took, so
no second write goes out. The marking is the page commit's (``RunClaims.decided``); a
version only admitted by a run that died before its commit is decided again instead
(tests/sync/test_sync_crash_gaps.py).

The engine's real path on a real store (SQLite and PostgreSQL), over an in-memory CRM
whose reads lag its writes: a read returns the record as it was before crmtier wrote to
it, with the same modstamp (the view a sync holds when it read the customer before a
webhook pass's writes landed). No test failed when the page commit stopped marking its
versions decided; this one does (both cases), as it does when ``mark_decided`` marks
nothing or the planner ignores ``repeated``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from connectors.calltally import CallCounter
from connectors.contract import Capabilities, WritePlan, WriteResult
from connectors.mapping import WritebackConfig
from sync.claims import owner_id
from sync.engine import RunOptions
from sync.store import StateStore
from tests.sync.memory_crm import OneCustomerCrm, memory_engine
from tests.sync.test_task_budget import assess as budget_assess
from tiering_core.models import AssessmentData, CustomerProfile

WRITEBACK = WritebackConfig(fields={"value_tier": "Tier"})


class LaggingCrm(OneCustomerCrm):
    """One customer whose reads never show crmtier's writes (nor a newer modstamp)."""

    capabilities = Capabilities(crm="lagging", page_size=10, max_write_batch=10)

    def __init__(self) -> None:
        self.stamp = datetime.now(UTC) - timedelta(minutes=1)
        self.deposits, self.tier = 0, None  # its reads never show the writes
        self.writes = 0  # field writes
        self.calls = CallCounter()

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        self.writes += len(plan.field_updates)
        return [WriteResult("field_update", u.customer_id, True) for u in plan.field_updates]


def assess(profiles: Sequence[CustomerProfile]) -> list[AssessmentData]:
    """Every customer is mass, written to its tier field; nothing else."""
    rows = budget_assess(profiles)
    action = {"kind": "set_field", "field": "value_tier", "value": "mass"}
    return [{**row, "actions": [action]} for row in rows]


@pytest.mark.parametrize("claimed", [True, False], ids=["worker", "webhook-run"])
def test_a_version_a_webhook_pass_decided_is_settled_when_the_sync_reads_it(
    store: StateStore, claimed: bool
) -> None:
    """A webhook pass (the worker claims and admits on its thread, or the pass claims
    itself) decides the customer's current version and writes it; the scheduled sync,
    whose read of that same version does not show the write, settles it: no second write,
    the customer unchanged."""
    crm = LaggingCrm()
    e = memory_engine(crm, store, WRITEBACK, assess, stream="lagging:Customer")
    if claimed:  # as sync.worker does before it hands the records over
        owner = owner_id()
        assert e.claims.claim(["C00"], owner) == {"C00"}
        assert e.claims.admit({"C00": crm.stamp}, owner).admitted == {"C00"}
    webhook = e.process_records([crm.record()], claimed=claimed)
    assert webhook.status == "succeeded", webhook.error
    if claimed:
        e.claims.release(["C00"], owner)
    assert crm.writes == 1
    sync = e.run(RunOptions())  # its first read: the stream from the start
    assert sync.status == "succeeded", sync.error
    assert crm.writes == 1, "the sync decided the version again and wrote it twice"
    assert sync.outcomes["C00"] == "unchanged" and sync.counts.reconciles()
