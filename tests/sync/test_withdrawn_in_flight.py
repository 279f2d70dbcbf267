"""Which writes in flight a customer's newer plan withdraws (``Dispatcher.enqueue``,
``Recorder.withdrawn``), and what becomes of one whose call then fails (``AnswerBatch``):
withdrawn, it is superseded, neither retried nor dead-lettered; wanted, it is retried as
before. A plan that wants it again, after one that did not, takes the withdrawal back.

The dispatcher and recorder of a real run (``RunParts``) on a real SQLite store; the call
in flight is put in the write pool by hand, its answer recorded by the recorder."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.calltally import CallTally
from connectors.contract import WriteResult
from connectors.errors import UNANSWERED, AuthExpiredError, RateLimitedError
from sync import schema
from sync.engine import RunOptions
from sync.outbox import OutboxItem
from sync.recorder import PageRows
from sync.records import Unsent
from sync.run_parts import RunParts
from sync.state import load_states, save_states
from tests.sync.test_task_budget import AS_OF, TaskCrm, engine, task
from tests.sync.test_task_cap_in_doubt import CAP, _planned

MINE = task("C01:call", owner="RM1")
LOST = WriteResult("task", MINE.dedupe_key, False, UNANSWERED, "lost", retryable=True)
LOCKED = WriteResult("task", MINE.dedupe_key, False, "UNABLE_TO_LOCK_ROW", "x", retryable=True)


def read_again_in_flight(
    parts: RunParts, call: Future[list[WriteResult]], reads: tuple[str, ...]
) -> OutboxItem:
    """``C01``'s task planned and sent (``call`` in flight, not answered), then the
    customer read again once per ``reads``, each plan wanting the task or not."""
    e, pool, dispatcher = parts.e, parts.pool, parts.dispatcher
    with e.store.begin() as conn:
        save_states(conn, e.stream, [{"customer_id": "C01", "pseudonym": "p-C01"}])
        states = load_states(conn, e.stream, ["C01"])
        dispatcher.enqueue(conn, [_planned("C01", (MINE,))], states, PageRows())
    (item,) = pool.queue.values()
    pool.queue.clear()  # sent: in flight, its answer not recorded
    pool.inflight[call] = [item]
    pool.calls[call] = CallTally()  # refused before any CRM call left
    pool.inflight_by_customer["C01"] = {item.id}
    for read in reads:  # the customer read again meanwhile, each time
        tasks = (MINE,) if read == "wants" else ()
        with e.store.begin() as conn:
            dispatcher.enqueue(conn, [_planned("C01", tasks)], states, PageRows())
    return item


@pytest.mark.parametrize(
    ("reads", "answer", "status"),
    [
        (("wants",), LOST, "pending"),  # still wanted: retried
        (("drops",), LOST, "superseded"),
        (("drops",), LOCKED, "superseded"),  # refused, answered: superseded all the same
        (("drops", "wants"), LOST, "pending"),  # wanted again: the withdrawal taken back
        (("wants", "drops"), LOST, "superseded"),
    ],
    ids=["wanted", "dropped-lost", "dropped-refused", "dropped-then-wanted", "wanted-then-dropped"],
)
def test_a_failed_write_in_flight_is_retried_only_while_its_customer_s_plan_wants_it(
    tmp_path: Path, reads: tuple[str, ...], answer: WriteResult, status: str
) -> None:
    e = engine(TaskCrm(2), tmp_path, CAP)
    parts = RunParts(e, RunOptions(as_of=AS_OF))
    pool = parts.pool
    try:
        item = read_again_in_flight(parts, Future(), reads)
        assert (item.id in parts.recorder.withdrawn) is (status == "superseded")
        pool.inflight.clear()
        pool.inflight_by_customer.clear()
        retries = parts.recorder.record_results([([item], [answer])])
        with e.store.begin() as conn:
            o = schema.outbox
            stored = conn.execute(sa.select(o.c.status).where(o.c.id == item.id)).scalar_one()
            letters = conn.execute(sa.select(sa.func.count()).select_from(schema.dead_letters))
            assert letters.scalar_one() == 0
    finally:
        pool.shutdown()
    assert stored == status
    assert [r.id for r in retries] == ([item.id] if status == "pending" else [])
    assert item.id not in parts.recorder.withdrawn  # answered: forgotten
    # superseded, the newer decision has nothing left outstanding: it is promoted
    assert ("C01" in parts.recorder.decisions) is (status == "pending")


@pytest.mark.parametrize(
    "failure",
    [Unsent(), RateLimitedError("quota"), AuthExpiredError("login")],
    ids=["withdrawn-unsent", "refused-quota", "refused-login"],
)
@pytest.mark.parametrize(("reads", "status"), [(("wants",), "pending"), (("drops",), "superseded")])
def test_a_write_in_flight_whose_call_fails_as_a_whole_is_superseded_once_withdrawn(
    tmp_path: Path, failure: Exception, reads: tuple[str, ...], status: str
) -> None:
    """A call that never left (the pool halted, an ownership check failed: ``Unsent``) or
    was refused as a whole (quota, login) has no answer per item: its items went back in
    the queue, pending in the outbox, and the run stopped. One a newer plan withdrew was
    left pending with the rest, and the next run re-sent it as a stopped run's write,
    exact: a sanctioned customer's task made again after the closure. It is superseded;
    one still wanted goes back in the queue as before."""
    e = engine(TaskCrm(2), tmp_path, CAP)
    parts = RunParts(e, RunOptions(as_of=AS_OF))
    pool = parts.pool
    try:
        call: Future[list[WriteResult]] = Future()
        item = read_again_in_flight(parts, call, reads)
        call.set_exception(failure)
        pool.collect(block=False)
        with e.store.begin() as conn:
            o = schema.outbox
            stored = conn.execute(sa.select(o.c.status).where(o.c.id == item.id)).scalar_one()
    finally:
        pool.shutdown()
    assert stored == status
    assert (item.id in pool.queue) is (status == "pending")  # not to be sent again
    assert item.id not in parts.recorder.withdrawn
    assert ("C01" in parts.recorder.decisions) is (status == "pending")
    assert pool.tally.items["task"] == (0 if isinstance(failure, Unsent) else 1)
