"""Writes in doubt: which outstanding outbox items may have reached the CRM without our
seeing the answer (``Dispatcher.in_doubt``), and how the planner treats the tasks among
them (``planner.closures_of``): a restricted customer's sales task that a run may have made
is closed like one on record, so no live sales follow-up outlives a sanctions hit because
the answer of the write that made it was lost.
"""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any, cast

import pytest

from connectors.contract import Connector, WriteKind
from connectors.mapping import WritebackConfig, load_default_mapping
from sync.dispatch import Dispatcher
from sync.maybe_made import MaybeMade
from sync.outbox import OutboxItem
from sync.planner import Doubt, Known, TaskClosure, closures_of, plan_customer
from sync.recorder import Recorder
from sync.records import Decision
from sync.settings import SyncSettings
from sync.state import CustomerState
from sync.writepool import WritePool
from tests.sync.test_sync_planner import _assessed
from tests.sync.test_write_pipeline import PagedCrm
from tiering_core.wants import wants_of

RUN, EARLIER, STOPPED = "run-2", "run-1", "run-0"  # run-1 died, run-0 stopped
PAYLOADS: dict[WriteKind, dict[str, Any]] = {
    "task": {"rule": "upgrade_call", "dedupe_key": "C1:upgrade_call:2026Q4"},
    "membership": {"campaign": "vip_events", "member": True},
    "field_update": {"value_tier": "private"},
    "task_close": {"rule": "upgrade_call"},
}


def _doubt_of(
    kind: WriteKind, where: str, attempts: int, run_id: str, unanswered: bool
) -> Doubt | None:
    """``in_doubt`` of a customer whose one outstanding item of ``kind`` is ``where``:
    queued, in flight (its call not answered), landed (answered, answer not recorded) or
    answered and recorded (no longer outstanding)."""
    connector = cast(Connector, SimpleNamespace(capabilities=PagedCrm.capabilities))
    pool = WritePool(
        connector,
        SyncSettings(),
        holding=bool,
        record=lambda calls: [],
        after_record=bool,
        maybe_made=MaybeMade(RUN),
    )
    try:
        item = OutboxItem(
            7, "C1", kind, f"key:{kind}", PAYLOADS[kind], attempts, run_id, "sync",
            unanswered=unanswered,
        )  # fmt: skip
        outstanding = {item.id}
        if where == "queued":
            pool.queue[item.id] = item
        elif where == "in flight":
            pool.inflight[Future()] = [item]
        elif where == "landed":
            pool.landed.append(([item], Future()))
        else:  # recorded: the decision holds it no more
            outstanding = set()
        decision = Decision("C1", None, outstanding, this_run=True, base=None)
        recorder = cast(Recorder, SimpleNamespace(decisions={"C1": decision}))
        dispatcher = Dispatcher(pool, recorder, "stream", RUN, "sync", {})
        dispatcher.maybe_made.died.add(EARLIER)  # as adopting run-1's and run-0's writes found
        return dispatcher.in_doubt("C1")
    finally:
        pool.pool.shutdown()


#: (where the item is, its attempts, the run that queued it, whether a call of it went
#: unanswered, whether it is in doubt)
STATES = [
    ("queued", 0, RUN, False, False),  # this run's, never sent: superseding it is exact
    ("queued", 1, RUN, True, True),  # sent, unanswered, waiting to be sent again
    # sent, refused retryably (a locked record: the CRM answered, made nothing): exact
    ("queued", 1, RUN, False, False),
    ("queued", 2, RUN, True, True),  # unanswered, then refused retryably: it may exist
    ("queued", 0, EARLIER, False, True),  # a run that died: it may have sent it
    ("queued", 2, EARLIER, False, True),
    ("queued", 0, STOPPED, False, False),  # a run that stopped never sent what it left
    ("queued", 1, STOPPED, True, True),
    ("in flight", 0, RUN, False, True),
    ("landed", 0, RUN, False, True),  # answered, the answer not recorded yet
    ("in flight", 0, STOPPED, False, True),  # an earlier run's, re-sent by this one
    ("recorded", 0, RUN, False, False),  # its answer is on record (side_effects)
    ("recorded", 1, EARLIER, True, False),
]


@pytest.mark.parametrize(("where", "attempts", "run_id", "unanswered", "doubt"), STATES)
@pytest.mark.parametrize("kind", ["task", "membership", "field_update", "task_close"])
def test_which_outstanding_items_are_in_doubt(
    kind: WriteKind, where: str, attempts: int, run_id: str, unanswered: bool, doubt: bool
) -> None:
    """Tasks follow the same rule as memberships and are reported with their rule (from
    the item's payload, the task itself); field updates too, with the values they carry
    (a new plan writes only the fields the CRM as read does not show: one that shows the
    new value while a write of the old is on its way must be written again,
    ``planner.countered``); closures are never in doubt (closing again is what any new
    plan of a restricted customer does anyway)."""
    found = _doubt_of(kind, where, attempts, run_id, unanswered)
    if not doubt or kind == "task_close":
        assert found is None
    elif kind == "field_update":
        assert found == Doubt({}, {}, PAYLOADS[kind])
    elif kind == "task":
        assert found == Doubt({}, {"key:task": "upgrade_call"})
    else:
        assert found == Doubt({"vip_events": "key:membership"}, {})


SALES_KEY, CREDIT_KEY = "C1:upgrade_call:new", "C1:credit_limit_review:new"
RECORDED = Known(
    tasks=frozenset({"C1:service_recovery:old"}),
    task_rules={"C1:service_recovery:old": "service_recovery"},
)
SANCTIONED, CLEAR = _assessed(True), _assessed(False)
#: the sanctions review the restricted assessment itself wants
REVIEW = next(a["dedupe_key"] for a in SANCTIONED["actions"] if a["kind"] == "task")


@pytest.mark.parametrize(
    ("assessment", "known", "closed"),
    [
        # a sales task a run may have made (its answer never seen) is closed like one on record
        (SANCTIONED, Known(tasks_in_doubt={SALES_KEY: "upgrade_call"}), [SALES_KEY]),
        # beside one on record: both
        (
            SANCTIONED,
            Known(
                tasks=RECORDED.tasks,
                task_rules=RECORDED.task_rules,
                tasks_in_doubt={SALES_KEY: "upgrade_call"},
            ),
            ["C1:service_recovery:old", SALES_KEY],
        ),
        # in doubt and on record (a re-sent recorded task): closed once
        (
            SANCTIONED,
            Known(
                tasks=RECORDED.tasks,
                task_rules=RECORDED.task_rules,
                tasks_in_doubt=dict(RECORDED.task_rules),
            ),
            ["C1:service_recovery:old"],
        ),
        # credit work in doubt stays: the bank still owes it
        (SANCTIONED, Known(tasks_in_doubt={CREDIT_KEY: "credit_limit_review"}), []),
        # a task the restricted plan itself wants is not closed, whatever its rule
        (SANCTIONED, Known(tasks_in_doubt={REVIEW: "upgrade_call"}), []),
        # an unrestricted customer keeps what it may have been sent
        (CLEAR, Known(tasks_in_doubt={SALES_KEY: "upgrade_call"}), []),
        # nothing made, nothing in doubt: nothing to close
        (SANCTIONED, Known(), []),
    ],
    ids=["in-doubt", "with-recorded", "both", "credit", "wanted", "clear", "nothing"],
)
def test_a_restricted_customer_s_sales_tasks_in_doubt_are_closed(
    assessment: Any, known: Known, closed: list[str]
) -> None:
    assert [c.dedupe_key for c in closures_of(wants_of(assessment), known)] == closed
    wb = load_default_mapping("salesforce").writeback
    off = WritebackConfig(fields=wb.fields, queues=wb.queues, campaigns=wb.campaigns, tasks=False)
    plan = plan_customer(assessment, {}, known, off)  # tasks no longer written back: the
    assert [c.dedupe_key for c in plan.closures] == closed  # ones made are closed all the same
    assert plan.tasks == ()


def test_an_in_doubt_closure_says_so_and_carries_the_rule_of_the_task_it_closes() -> None:
    """Its audit row tells a task that was on record from one whose making was never
    answered (the CRM may never have held it)."""
    known = Known(
        tasks=RECORDED.tasks,
        task_rules=RECORDED.task_rules,
        tasks_in_doubt={SALES_KEY: "upgrade_call", **RECORDED.task_rules},
    )
    assert closures_of(wants_of(SANCTIONED), known) == (
        TaskClosure("service_recovery", "C1:service_recovery:old", in_doubt=False),
        TaskClosure("upgrade_call", SALES_KEY, in_doubt=True),
    )


@pytest.mark.parametrize(
    ("on_record", "run_id", "maybe_made"),
    [
        # a stopped run's write, never sent, of a task in doubt on record (an earlier
        # write of it went unanswered): the CRM may hold the task, so it goes out as a
        # re-send, which leaves what a relationship manager changed in it
        (True, STOPPED, True),
        (False, STOPPED, False),  # nothing says the CRM holds it: a first send
        (False, EARLIER, True),  # the run that queued it died: it may have sent it
    ],
    ids=["in-doubt-on-record", "not-in-doubt", "died"],
)
def test_an_adopted_task_in_doubt_on_record_is_re_sent_as_one_the_crm_may_hold(
    on_record: bool, run_id: str, maybe_made: bool
) -> None:
    connector = cast(Connector, SimpleNamespace(capabilities=PagedCrm.capabilities))
    pool = WritePool(
        connector,
        SyncSettings(),
        holding=bool,
        record=lambda calls: [],
        after_record=bool,
        maybe_made=MaybeMade(RUN),
    )
    try:
        key = "C1:upgrade_call:2026Q4"
        item = OutboxItem(7, "C1", "task", key, PAYLOADS["task"], 0, run_id, "sync")
        doubted = {key: "upgrade_call"} if on_record else {}
        state = CustomerState("C1", "p-C1", tasks_in_doubt=doubted)
        recorder = cast(Recorder, SimpleNamespace(decisions={}))
        dispatcher = Dispatcher(pool, recorder, "stream", RUN, "sync", {})
        dispatcher.recover([item], {"C1": state}, {EARLIER})
        assert dispatcher.maybe_made(item) is maybe_made
    finally:
        pool.pool.shutdown()
