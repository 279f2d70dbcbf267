"""A write plan is several CRM calls (Salesforce: a membership chunk's adds, then its
removals' delete). When its adds are made and a later call of the same plan stops the run
(the quota guard, a CRM gone read-only, a login or configuration refused), the adds'
answers are lost with the exception: the write pool once put them back as never sent, a
stopped run's write whose re-send is exact. The next run then superseded the add as
exact (its campaign switched off meanwhile), so a sanctions hit never removed the member
it made: a sanctioned customer stayed in the VIP campaign. Such a plan's items are in
doubt (``sync.call_answers``); only a plan refused before any call left is exact.

The engine's real path on a real store, over an in-memory CRM that counts its calls as a
connector does (``connectors.calltally``)."""

from __future__ import annotations

from concurrent.futures import Future

import pytest
import sqlalchemy as sa

from connectors.calltally import CallTally
from connectors.contract import WritePlan, WriteResult
from connectors.errors import (
    UNANSWERED,
    AuthExpiredError,
    ConfigError,
    ConnectorError,
    QuotaExhaustedError,
    ReadOnlyError,
)
from sync import schema
from sync.call_answers import FAILED_UNSENT, UNSENT
from sync.engine import RunOptions, SyncSettings
from sync.maybe_made import MaybeMade
from sync.outbox import OutboxItem
from sync.records import STOPPED
from sync.store import StateStore
from sync.writepool import WritePool
from tests.sync.test_dead_letter_sanctions import AS_OF, SANCTIONED
from tests.sync.test_membership_doubt import MemberCrm, _engine

STOPS = {
    "quota": (QuotaExhaustedError("Salesforce API allowance exhausted"), "paused_quota"),
    "read-only": (ReadOnlyError("org is read-only for maintenance"), "paused_quota"),
    "login": (AuthExpiredError("session expired, login refused"), "failed"),
    "config": (ConfigError("campaign member object not writable"), "failed"),
}


class StopAfterAddsCrm(MemberCrm):
    """While ``failing``, a membership plan's first call makes its adds (counted, as a
    connector counts each call), and its next call is refused with ``error`` before it
    leaves (the quota guard, a read-only org...). With ``adds_first`` off the plan's
    first call is the one refused: nothing left, nothing made."""

    def __init__(self, error: ConnectorError, *, adds_first: bool = True) -> None:
        super().__init__()
        self.error = error
        self.adds_first = adds_first

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        if self.failing and any(m.member for m in plan.memberships):
            if self.adds_first:
                self.calls.add("composite")
                self.members.update(m.campaign for m in plan.memberships if m.member)
            raise self.error
        return super().apply(plan)


def _outbox_membership(store: StateStore) -> tuple[str, bool, int]:
    """The membership write's outbox status, whether a call of it went unanswered, and
    its attempts counted."""
    with store.begin() as conn:
        o = schema.outbox
        row = conn.execute(
            sa.select(o.c.status, o.c.unanswered, o.c.attempts).where(o.c.kind == "membership")
        ).one()
    return row.status, bool(row.unanswered), int(row.attempts)


@pytest.mark.parametrize("stop", list(STOPS))
def test_a_membership_made_before_a_later_call_of_its_plan_stops_the_run_is_removed_on_a_hit(
    store: StateStore, stop: str
) -> None:
    """Stopped three times so (a maintenance window's scheduled runs, each re-sending the
    add): in doubt every time, yet never dead-lettered (two attempts allowed), as a
    stop counts no attempt of the write's own."""
    error, status = STOPS[stop]
    crm = StopAfterAddsCrm(error)
    for _ in range(3):
        stopped = _engine(crm, store).run(RunOptions(as_of=AS_OF))
        assert stopped.status == status, stopped.error
        assert stopped.counts.dead_lettered == 0, stopped.counts.as_json()
        assert crm.members == {"vip"}  # made by the plan's first call, its answer lost
        assert _outbox_membership(store) == ("pending", True, 0)  # in doubt, not unsent
    crm.failing = False
    crm.changed(SANCTIONED)  # and the admin switched campaign memberships off meanwhile
    second = _engine(crm, store, memberships=False).run(RunOptions(as_of=AS_OF))
    assert second.status == "succeeded", second.error
    assert crm.members == set(), "a sanctioned customer keeps a VIP campaign membership"
    with store.begin() as conn:
        s = schema.side_effects
        row = conn.execute(sa.select(s.c.active, s.c.in_doubt)).one()
    assert (row.active, bool(row.in_doubt)) == (False, False)  # removed, answered


def test_a_plan_that_fails_unforeseen_after_a_call_left_dead_letters_in_the_end(
    store: StateStore,
) -> None:
    """A failure nobody foresaw (a connector choking on its answer to this plan) may be
    the plan's own: in doubt, as a stop is, but with its attempt counted, so that it is
    dead-lettered once out of attempts (two here) rather than failing every run at the
    same plan, the tenant's sync stuck behind it. Before, it stayed pending with no
    attempt counted, run after failed run."""
    crm = StopAfterAddsCrm(RuntimeError("connector bug"))  # type: ignore[arg-type]
    first = _engine(crm, store).run(RunOptions(as_of=AS_OF))
    assert first.status == "failed" and first.dead_letters_open == 0
    assert _outbox_membership(store) == ("pending", True, 1)
    second = _engine(crm, store).run(RunOptions(as_of=AS_OF))
    assert second.status == "failed" and second.dead_letters_open == 1
    assert _outbox_membership(store) == ("dead", True, 2)


@pytest.mark.parametrize("stop", list(STOPS))
def test_a_plan_refused_before_any_call_left_stays_exact_unsent(
    store: StateStore, stop: str
) -> None:
    """The refused call was the plan's first: nothing reached the CRM, so its items go
    back as never sent (no look-up on their re-send, nothing in doubt on record)."""
    error, status = STOPS[stop]
    crm = StopAfterAddsCrm(error, adds_first=False)
    first = _engine(crm, store).run(RunOptions(as_of=AS_OF))
    assert first.status == status, first.error
    assert crm.members == set()
    assert _outbox_membership(store) == ("pending", False, 0)
    with store.begin() as conn:
        effects = conn.execute(sa.select(sa.func.count()).select_from(schema.side_effects))
        assert effects.scalar_one() == 0


def test_a_plan_that_fails_unforeseen_before_any_call_left_dead_letters_in_the_end(
    store: StateStore,
) -> None:
    """A failure nobody foresaw before any CRM call of the plan left (a connector's bug
    while building its rows): the CRM made nothing, so nothing is in doubt, but the plan
    may be its cause, so its attempt counts and it is dead-lettered once out of attempts
    (two here). Before, it went back in the queue with no attempt counted, and every run
    failed at the same plan for ever."""
    crm = StopAfterAddsCrm(RuntimeError("connector bug"), adds_first=False)  # type: ignore[arg-type]
    first = _engine(crm, store).run(RunOptions(as_of=AS_OF))
    assert first.status == "failed" and first.dead_letters_open == 0
    assert crm.members == set()
    assert _outbox_membership(store) == ("pending", False, 1)
    second = _engine(crm, store).run(RunOptions(as_of=AS_OF))
    assert second.status == "failed" and second.dead_letters_open == 1
    assert _outbox_membership(store) == ("dead", False, 2)
    with store.begin() as conn:
        effects = conn.execute(sa.select(sa.func.count()).select_from(schema.side_effects))
        assert effects.scalar_one() == 0  # nothing on record as possibly made


#: the stops above, and a failure nobody foresaw (a connector's bug): the run fails
ANSWERED_STOPS = {**STOPS, "unforeseen": (RuntimeError("connector bug"), "failed")}


@pytest.mark.parametrize("stop", list(ANSWERED_STOPS))
@pytest.mark.parametrize(
    ("calls", "withdrawn", "answer"),
    [
        (0, False, None),  # refused before anything left: back in the queue, exact
        (0, True, "unsent"),  # withdrawn by a newer plan meanwhile: superseded unsent
        (1, False, STOPPED),  # a call left: every item answered, in doubt
        (3, True, STOPPED),
    ],
    ids=["none-left", "none-left-withdrawn", "one-left", "calls-left-withdrawn"],
)
def test_how_the_pool_answers_a_plan_that_stopped_the_run(
    stop: str, calls: int, withdrawn: bool, answer: str | None
) -> None:
    """The pool's answer to a call that failed as a whole (``WritePool._answer``,
    ``sync.call_answers``), by the CRM calls its plan made before the stop, and how the
    run stops. A refusal outright (quota, read-only, login, configuration) before any
    call left made nothing: unsent; an unforeseen failure may have made something."""
    error, status = ANSWERED_STOPS[stop]
    item = OutboxItem(1, "C00", "membership", "C00:vip", {"campaign": "vip", "member": True},
                      0, "run-1", "sync")  # fmt: skip
    pool = WritePool(
        MemberCrm(),
        SyncSettings(),
        holding=bool,
        record=lambda answered: [],
        after_record=bool,
        maybe_made=MaybeMade("run-1"),
        withdrawn={1} if withdrawn else frozenset(),
    )
    call: Future[list[WriteResult]] = Future()
    call.set_exception(error)
    tally = CallTally()
    tally.add("composite", calls)
    pool.inflight[call], pool.calls[call] = [item], tally
    try:
        got = pool._answer([item], call)
    finally:
        pool.pool.shutdown()
    assert pool.stop is not None and pool.stop.status == status
    unforeseen = isinstance(error, RuntimeError)
    if answer is None and unforeseen:  # made nothing, yet may be the plan's own failure
        assert got is not None and got[0] == [item] and not pool.queue
        (result,) = got[1]
        assert (result.ok, result.error_code, result.retryable) == (False, FAILED_UNSENT, True)
        return
    if answer is None:
        assert got is None and pool.queue == {1: item}
        return
    assert got is not None and got[0] == [item] and not pool.queue
    (result,) = got[1]
    assert not result.ok
    if answer == STOPPED:  # an unforeseen failure: unanswered, its attempt counted
        code = UNANSWERED if isinstance(error, RuntimeError) else STOPPED
        assert (result.error_code, result.retryable) == (code, True)
    else:  # nothing left, so the CRM made nothing: unsent, or failed with an attempt
        assert result.error_code == (FAILED_UNSENT if unforeseen else UNSENT)
