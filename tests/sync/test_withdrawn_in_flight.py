"""Which writes in flight a customer's newer plan withdraws (``Dispatcher.enqueue``,
``Recorder.withdrawn``), and what becomes of one whose call then fails (``AnswerBatch``):
withdrawn, it is superseded, neither retried nor dead-lettered; wanted, it is retried as
before. A plan that wants it again, after one that did not, takes the withdrawal back.
Either way a call that went unanswered leaves the task in doubt on record (a later
sanctions hit closes it) and on its owner's cap; only a first attempt the CRM refused
frees its place. A page whose commit fails withdraws nothing: its plans are not queued.

The dispatcher and recorder of a real run (``RunParts``) on a real SQLite store; the call
in flight is put in the write pool by hand, its answer recorded by the recorder."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import NamedTuple

import pytest
import sqlalchemy as sa

from connectors.calltally import CallTally
from connectors.contract import WriteResult
from connectors.errors import UNANSWERED, AuthExpiredError, RateLimitedError
from sync import schema, taskbudget
from sync.engine import RunOptions
from sync.outbox import OutboxItem
from sync.recorder import PageRows
from sync.records import Unsent
from sync.run_parts import RunParts
from sync.state import CustomerState, load_states, save_states
from tests.sync.test_task_budget import AS_OF, TaskCrm, engine, task
from tests.sync.test_task_cap_in_doubt import CAP, _planned

MINE = task("C01:call", owner="RM1")
LOST = WriteResult("task", MINE.dedupe_key, False, UNANSWERED, "lost", retryable=True)
LOCKED = WriteResult("task", MINE.dedupe_key, False, "UNABLE_TO_LOCK_ROW", "x", retryable=True)
MADE = WriteResult("task", MINE.dedupe_key, True)


class Effect(NamedTuple):
    """The task's ``side_effects`` row."""

    active: bool  # made, on record
    in_doubt: bool  # a call of it went unanswered: the CRM may hold it


class InFlight:
    """``MINE`` of ``C01`` admitted on RM1's cap, queued and sent: in flight, its answer
    not recorded."""

    def __init__(self, tmp_path: Path) -> None:
        self.e = engine(TaskCrm(2), tmp_path, CAP)
        self.parts = RunParts(self.e, RunOptions(as_of=AS_OF))
        pool, e = self.parts.pool, self.e
        with e.store.begin() as conn:
            save_states(conn, e.stream, [{"customer_id": "C01", "pseudonym": "p-C01"}])
            self.states: dict[str, CustomerState] = load_states(conn, e.stream, ["C01"])
            taskbudget.record(conn, e.stream, self.parts.run_id, ["C01"], {"C01": [MINE]}, {})
            self.parts.dispatcher.enqueue(conn, [_planned("C01", (MINE,))], self.states, PageRows())
        (self.item,) = pool.queue.values()
        pool.queue.clear()
        call: Future[list[WriteResult]] = Future()
        pool.inflight[call] = [self.item]
        pool.calls[call] = CallTally()  # no CRM call of it left yet
        pool.inflight_by_customer["C01"] = {self.item.id}

    def read(self, want: str, rows: PageRows | None = None) -> None:
        """``C01`` read again: its newest plan ``wants`` the task, or ``drops`` it."""
        tasks = (MINE,) if want == "wants" else ()
        with self.e.store.begin() as conn:
            self.parts.dispatcher.enqueue(
                conn, [_planned("C01", tasks)], self.states, rows or PageRows()
            )

    def answer(self, result: WriteResult) -> list[OutboxItem]:
        """The call answers: out of flight, its answer recorded."""
        pool = self.parts.pool
        pool.inflight.clear()
        pool.inflight_by_customer.clear()
        return self.parts.recorder.record_results([([self.item], [result])])

    def stored(self) -> tuple[str, Effect | None, Counter[tuple[str, str]], int]:
        """The item's outbox status, its task on record (None: nothing), RM1's open
        tasks, and the dead letters."""
        e, item_id = self.e, self.item.id
        with e.store.begin() as conn:
            o, s = schema.outbox, schema.side_effects
            status = conn.execute(sa.select(o.c.status).where(o.c.id == item_id)).scalar_one()
            row = conn.execute(sa.select(s.c.active, s.c.in_doubt)).one_or_none()
            open_now = taskbudget.load_open(conn, e.stream, AS_OF, prune=False)
            letters = conn.execute(sa.select(sa.func.count()).select_from(schema.dead_letters))
            effect = None if row is None else Effect(bool(row.active), bool(row.in_doubt))
            return status, effect, open_now, letters.scalar_one()


@pytest.fixture
def in_flight(tmp_path: Path) -> Iterator[InFlight]:
    run = InFlight(tmp_path)
    try:
        yield run
    finally:  # a call never answered would keep the pool's shutdown waiting on it
        run.parts.pool.inflight.clear()
        run.parts.pool.shutdown()


OPEN = Counter({("call", "RM1"): 1})
DOUBT, ACTIVE = Effect(False, True), Effect(True, False)


@pytest.mark.parametrize(
    ("reads", "answer", "status", "effect", "open_now"),
    [
        (("wants",), LOST, "pending", DOUBT, OPEN),  # still wanted: retried
        (("drops",), LOST, "superseded", DOUBT, OPEN),  # may be made: in doubt, on the cap
        (("drops",), LOCKED, "superseded", None, Counter()),  # refused: made nothing
        (("drops",), MADE, "done", ACTIVE, OPEN),  # made: the newer plan's closure finds it
        (("drops", "wants"), LOST, "pending", DOUBT, OPEN),  # the withdrawal taken back
        (("wants", "drops"), LOST, "superseded", DOUBT, OPEN),
    ],
    ids=[
        "wanted",
        "dropped-lost",
        "dropped-refused",
        "dropped-made",
        "dropped-then-wanted",
        "wanted-then-dropped",
    ],
)
def test_a_failed_write_in_flight_is_retried_only_while_its_customer_s_plan_wants_it(
    in_flight: InFlight,
    reads: tuple[str, ...],
    answer: WriteResult,
    status: str,
    effect: Effect | None,
    open_now: Counter[tuple[str, str]],
) -> None:
    item, recorder = in_flight.item, in_flight.parts.recorder
    for read in reads:  # the customer read again meanwhile, each time
        in_flight.read(read)
    assert (item.id in recorder.withdrawn) is (reads[-1] == "drops")
    retries = in_flight.answer(answer)
    assert in_flight.stored() == (status, effect, open_now, 0)
    assert [r.id for r in retries] == ([item.id] if status == "pending" else [])
    assert item.id not in recorder.withdrawn  # answered: forgotten
    # superseded or made, the newer decision has nothing left outstanding: it is promoted
    assert ("C01" in recorder.decisions) is (status == "pending")


@pytest.mark.parametrize(
    ("committed", "failed", "status"),
    [
        ((), "drops", "pending"),  # the failed page's withdrawal does not stand
        (("drops",), "wants", "superseded"),  # nor its taking back of a committed one's
    ],
    ids=["failed-drop", "failed-take-back"],
)
def test_a_page_whose_commit_fails_leaves_the_withdrawals_as_they_were(
    in_flight: InFlight, committed: tuple[str, ...], failed: str, status: str
) -> None:
    """The failed page's newer plan (a closure, say) never reached the outbox: its
    withdrawal of the write in flight would leave that write superseded with nothing
    queued in its place, the customer's decision parked until it is read again."""
    for read in committed:
        in_flight.read(read)
    with (
        pytest.raises(RuntimeError, match="commit failed"),
        in_flight.parts.recorder.page() as rows,
    ):
        in_flight.read(failed, rows)
        raise RuntimeError("commit failed")
    in_flight.answer(LOST)
    assert in_flight.stored()[0] == status


@pytest.mark.parametrize(
    "failure",
    [Unsent(), RateLimitedError("quota"), AuthExpiredError("login")],
    ids=["withdrawn-unsent", "refused-quota", "refused-login"],
)
@pytest.mark.parametrize(("reads", "status"), [(("wants",), "pending"), (("drops",), "superseded")])
def test_a_write_in_flight_whose_call_fails_as_a_whole_is_superseded_once_withdrawn(
    in_flight: InFlight, failure: Exception, reads: tuple[str, ...], status: str
) -> None:
    """A call that never left (the pool halted, an ownership check failed: ``Unsent``) or
    was refused as a whole (quota, login) has no answer per item: its items went back in
    the queue, pending in the outbox, and the run stopped. One a newer plan withdrew was
    left pending with the rest, and the next run re-sent it as a stopped run's write,
    exact: a sanctioned customer's task made again after the closure. It is superseded;
    one still wanted goes back in the queue as before."""
    pool, recorder, item = in_flight.parts.pool, in_flight.parts.recorder, in_flight.item
    (call,) = pool.inflight
    for read in reads:
        in_flight.read(read)
    call.set_exception(failure)
    pool.collect(block=False)
    assert in_flight.stored()[0] == status
    assert (item.id in pool.queue) is (status == "pending")  # not to be sent again
    assert item.id not in recorder.withdrawn
    assert ("C01" in recorder.decisions) is (status == "pending")
    assert pool.tally.items["task"] == (0 if isinstance(failure, Unsent) else 1)
