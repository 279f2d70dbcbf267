"""A membership add whose call went unanswered (a timeout: the CRM may have made it) and
whose letter is then resolved stays in doubt on record (``side_effects.in_doubt``,
``sync.state.mark_in_doubt``): the customer's state gives it to the planner
(``Known.in_doubt``), so a later sanctions hit removes it, with campaign memberships on or
off, and the start gate counts it among what a hit withdraws (``state.withdrawable``).

The engine's real path on a real store (SQLite and PostgreSQL), over an in-memory CRM
that makes the membership and then fails the call as a timeout would."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from connectors.calltally import CallCounter
from connectors.contract import Capabilities, WritePlan, WriteResult
from connectors.errors import QuotaExhaustedError, TransientError
from connectors.mapping import WritebackConfig
from sync import schema
from sync.engine import RunOptions, SyncEngine
from sync.state import withdrawable
from sync.store import StateStore
from tests.sync.memory_crm import OneCustomerCrm, memory_engine
from tests.sync.test_dead_letter_sanctions import AS_OF, SANCTIONED
from tests.sync.test_dead_letter_sanctions import assess as sales_assess
from tiering_core.models import AssessmentData, CustomerProfile

STREAM = "members:Customer"
#: the customer wants the VIP campaign, then no longer (nothing else changes), then is
#: sanctioned
VIP, PLAIN = 1.0, 3.0


def _writeback(memberships: bool) -> WritebackConfig:
    return WritebackConfig(
        fields={"value_tier": "Tier"},
        campaigns={"vip": "CAMP-VIP"},
        campaign_memberships=memberships,
    )


class MemberCrm(OneCustomerCrm):
    """One customer; while ``failing``, a call with membership adds makes them and then
    times out."""

    capabilities = Capabilities(crm="members", page_size=10, max_write_batch=10)

    def __init__(self) -> None:
        self.stamp = datetime.now(UTC) - timedelta(minutes=5)
        self.deposits = VIP
        self.failing = True
        self.tier: str | None = None
        self.members: set[str] = set()
        self.calls = CallCounter()

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        for m in plan.memberships:
            (self.members.add if m.member else self.members.discard)(m.campaign)
        if self.failing and any(m.member for m in plan.memberships):
            raise TransientError("read timed out")
        for update in plan.field_updates:
            self.tier = str(update.fields["value_tier"])
        return [
            *(WriteResult("field_update", u.customer_id, True) for u in plan.field_updates),
            *(WriteResult("membership", m.dedupe_key, True) for m in plan.memberships),
            *(WriteResult("task_close", c.dedupe_key, True) for c in plan.task_closes),
        ]


def assess(profiles: Sequence[CustomerProfile]) -> list[AssessmentData]:
    """``VIP``: a member of the VIP campaign; ``PLAIN``: of none; ``SANCTIONED``: a hit."""
    rows = sales_assess(profiles)
    for p, row in zip(profiles, rows, strict=True):
        actions = [a for a in row["actions"] if a["kind"] != "task"]  # type: ignore[index]
        if p.assets is not None and p.assets.deposits == VIP:
            actions.append(
                {"kind": "campaign", "campaign": "vip", "member": True, "dedupe_key": "C00:vip"}
            )
        row["actions"] = actions  # type: ignore[typeddict-item]
    return rows


def _engine(crm: MemberCrm, store: StateStore, memberships: bool = True) -> SyncEngine:
    e = memory_engine(crm, store, _writeback(memberships), assess, stream=STREAM)
    e.settings = replace(e.settings, record_retry_attempts=2, record_retry_base=0.0)
    return e


@pytest.mark.parametrize("memberships_then", [True, False], ids=["on", "off"])
def test_an_unanswered_membership_add_is_removed_on_a_later_sanctions_hit(
    store: StateStore, memberships_then: bool
) -> None:
    crm = MemberCrm()
    first = _engine(crm, store).run(RunOptions(as_of=AS_OF))
    assert first.counts.dead_lettered == 1, first.counts.as_json()
    assert crm.members == {"vip"}  # made, the answer lost
    crm.failing = False
    crm.changed(PLAIN)  # no longer wanted: the letter resolved by a decision without it
    between = _engine(crm, store, memberships=False).run(RunOptions(as_of=AS_OF))
    assert between.status == "succeeded", between.error
    assert crm.members == {"vip"}  # memberships off: nothing removed for a plain customer
    with store.begin() as conn:
        s = schema.side_effects
        row = conn.execute(sa.select(s.c.kind, s.c.active, s.c.in_doubt)).one()
        held = withdrawable(conn, STREAM, tasks=False)
    assert (row.kind, row.active, bool(row.in_doubt)) == ("membership", False, True)
    assert dict(held.memberships) == {"vip": 1}
    crm.changed(SANCTIONED)
    last = _engine(crm, store, memberships_then).run(RunOptions(as_of=AS_OF))
    assert last.status == "succeeded", last.error
    assert crm.members == set(), "a sanctioned customer keeps a VIP campaign membership"
    with store.begin() as conn:  # removed, answered: no longer in doubt
        row = conn.execute(sa.select(s.c.active, s.c.in_doubt)).one()
    assert (row.active, bool(row.in_doubt)) == (False, False)


class PausingMemberCrm(MemberCrm):
    """While ``failing``, a call with membership adds pauses the run (the API quota)
    before the CRM makes anything: the add stays queued (pending) for a later run."""

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        if self.failing and any(m.member for m in plan.memberships):
            raise QuotaExhaustedError("quota")
        return super().apply(plan)


@pytest.mark.parametrize(
    "vip", [{"id": "CAMP-VIP", "add": False}, False], ids=["add-false", "switched-off"]
)
def test_a_stopped_runs_add_is_not_sent_to_a_campaign_that_now_takes_no_member(
    store: StateStore, vip: object
) -> None:
    """A stopped run queued the add while the campaign took members; the next run's
    write-back gives it ``add = false`` (or switches it off): recovery supersedes the add
    instead of sending it, so crmtier adds no one to a campaign the admin closed to adds."""
    crm = PausingMemberCrm()
    first = _engine(crm, store).run(RunOptions(as_of=AS_OF))
    assert first.status == "paused_quota", first.error
    crm.failing = False
    closed = WritebackConfig.model_validate(
        {**_writeback(True).model_dump(), "campaigns": {"vip": vip}}
    )
    e = memory_engine(crm, store, closed, assess, stream=STREAM)
    done = e.run(RunOptions(as_of=AS_OF))
    assert done.status == "succeeded", done.error
    assert crm.members == set(), "a member added to a campaign that takes none"
    with store.begin() as conn:
        o = schema.outbox
        statuses = conn.execute(sa.select(o.c.status).where(o.c.kind == "membership"))
        assert list(statuses.scalars()) == ["superseded"]


@pytest.mark.parametrize("left", ["paused", "unanswered", "died"])
def test_the_gate_counts_a_stopped_runs_add_that_may_have_reached_the_crm(
    store: StateStore, left: str
) -> None:
    """What the start gate reads (``withdrawable``) before recovery marks anything: an add
    a stopped run left queued counts as a member held once its call may have reached the
    CRM (unanswered, or its run died), so a campaign switched off since refuses the start
    instead of passing it, recovery superseding the add, and a customer sanctioned in that
    run staying in the campaign. An add a run paused before sending (the quota) does not:
    the CRM cannot have it."""
    crm = PausingMemberCrm()
    first = _engine(crm, store).run(RunOptions(as_of=AS_OF))
    assert first.status == "paused_quota", first.error
    with store.begin() as conn:
        if left == "unanswered":
            conn.execute(sa.update(schema.outbox).values(unanswered=True))
        elif left == "died":  # a SIGKILLed run's record stays ``running``
            conn.execute(sa.update(schema.runs).values(status="running", finished_at=None))
        held = withdrawable(conn, STREAM, tasks=False)
    assert dict(held.memberships) == ({} if left == "paused" else {"vip": 1})
