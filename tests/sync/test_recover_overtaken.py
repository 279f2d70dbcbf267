"""A run that stopped or died while a write was in flight that its customer's newer plan
had withdrawn (``Recorder.withdrawn``: a membership add, then its removal once the
customer was sanctioned) leaves both pending. The next run's recovery sends only the
newer (``run_outbox._overtaken``): re-sent, the older added the sanctioned customer to
the VIP campaign again, for the removal to take it out a moment later (a campaign's
automation may have mailed it meanwhile), and asked the CRM to write the same member
twice in one call. One that may have landed stays in doubt on record until the removal
is answered.

The engine's real path on a real store (SQLite and PostgreSQL), over an in-memory CRM
that keeps every membership change it is sent."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from connectors.contract import WritePlan, WriteResult
from sync import outbox, schema
from sync.engine import RunOptions
from sync.outbox import NewItem
from sync.store import StateStore
from tests.sync.test_dead_letter_sanctions import AS_OF
from tests.sync.test_membership_doubt import STREAM, PausingMemberCrm, _engine


class KeepingCrm(PausingMemberCrm):
    """``PausingMemberCrm`` that keeps each membership change it is sent (campaign,
    member), in order."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, bool]] = []

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        if not self.failing:
            self.sent += [(m.campaign, m.member) for m in plan.memberships]
        return super().apply(plan)


@pytest.mark.parametrize("left", ["stopped", "died"])
def test_a_withdrawn_add_left_pending_is_not_sent_again_behind_its_removal(
    store: StateStore, left: str
) -> None:
    crm = KeepingCrm()
    first = _engine(crm, store).run(RunOptions(as_of=AS_OF))
    assert first.status == "paused_quota", first.error
    with store.begin() as conn:  # the newer plan's removal, queued while the add was sent
        o = schema.outbox
        (add,) = conn.execute(sa.select(o.c.run_id, o.c.key).where(o.c.kind == "membership"))
        removal = NewItem("C00", "membership", add.key, {"campaign": "vip", "member": False})
        outbox.enqueue(conn, STREAM, add.run_id, [removal], trigger="sync")
        if left == "died":  # a SIGKILLed run's record stays ``running``: the add may be made
            conn.execute(sa.update(schema.runs).values(status="running", finished_at=None))
    crm.failing = False
    done = _engine(crm, store).run(RunOptions(as_of=AS_OF))
    assert done.status == "succeeded", done.error
    assert crm.sent == [("vip", False)], "the withdrawn add was sent again"
    assert crm.members == set()
    with store.begin() as conn:
        statuses = conn.execute(
            sa.select(o.c.status).where(o.c.kind == "membership").order_by(o.c.id)
        )
        assert list(statuses.scalars()) == ["superseded", "done"]
        s = schema.side_effects
        effects = conn.execute(sa.select(s.c.active, s.c.in_doubt)).all()
    # removed, answered: off record and out of doubt
    assert [(r.active, bool(r.in_doubt)) for r in effects] == [(False, False)]
