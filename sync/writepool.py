"""The sync run's write pool: the queue of outbox items, batching, calls in flight.

Items are sent in full batches (≤ ``max_write_batch`` per call, or a bulk job's size),
up to ``write_concurrency`` calls at once, one more queued behind each; at the end of the
run also the partial rest of each kind. A customer's items never overtake its items in
flight. Answers are handed to the recorder only between pages (``collect``), never while
a page is being processed; a call refused outright (quota, a CRM read-only for
maintenance, login, configuration) withdraws the calls queued behind it, and the pool
turns the failure into the run's ``Stop`` (the first two pause it, writes kept).
Retryable failures come back into the queue after a backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from operator import attrgetter

from connectors.calltally import CallTally, carry, counting
from connectors.contract import Connector, WritePlan, WriteResult
from sync import outbox
from sync.call_answers import REFUSED_OUTRIGHT, UNSENT, answer_of
from sync.errortext import error_text
from sync.killpoints import kill_point
from sync.maybe_made import MaybeMade
from sync.outbox import NewItem, OutboxItem
from sync.recorder import Answered
from sync.records import Stop, Unsent
from sync.settings import SyncSettings

log = logging.getLogger(__name__)

_kind_of = attrgetter("kind")

#: records the answers of the calls that landed together, each call's items with its
#: results; the items to retry later (their attempts counted)
RecordFn = Callable[[list[Answered]], list[OutboxItem]]


class SentTally:
    """What the run sends, for its minimum-calls figure (docs/targets.md P1)."""

    def __init__(self, per_customer_kinds: frozenset[str]) -> None:
        self.per_customer_kinds = per_customer_kinds
        self.items: Counter[str] = Counter()  # items first sent, by kind
        self.groups: dict[str, set[tuple[str, bool]]] = {}  # per-customer kinds

    def add(self, item: OutboxItem | NewItem) -> None:
        self.items[item.kind] += 1
        if item.kind in self.per_customer_kinds:
            group = (item.customer_id, bool(item.payload.get("member", True)))
            self.groups.setdefault(item.kind, set()).add(group)


class WritePool:
    """The queued and in-flight writes of one run."""

    def __init__(
        self,
        connector: Connector,
        settings: SyncSettings,
        *,
        holding: Callable[[], bool],
        record: RecordFn,
        after_record: Callable[[], None],
        maybe_made: MaybeMade,
        withdrawn: Collection[int] = frozenset(),
    ) -> None:
        self.connector = connector
        self.settings = settings
        self.caps = connector.capabilities
        self.holding = holding
        self.record = record
        self.after_record = after_record
        # Items per apply(): a write batch, or for one-record-per-call CRMs the plan size
        # over which the connector shares its dedupe-key look-ups.
        self.batch = max(1, self.caps.plan_batch or self.caps.max_write_batch)
        self.tally = SentTally(self.caps.per_customer_kinds)
        self.queue: dict[int, OutboxItem] = {}
        self.due: dict[int, float] = {}  # queued retries: when their backoff ends
        self.inflight: dict[Future[list[WriteResult]], list[OutboxItem]] = {}
        # the CRM calls each apply() in flight or unrecorded has made so far (``_send``)
        self.calls: dict[Future[list[WriteResult]], CallTally] = {}
        # answered, not yet recorded (see _harvest)
        self.landed: list[tuple[list[OutboxItem], Future[list[WriteResult]]]] = []
        self.inflight_by_customer: dict[str, set[int]] = {}
        # customers whose queued writes wait until the run has planned them again
        # (``sync.run_outbox.recover``): not sent meanwhile
        self.waiting: set[str] = set()
        # whether the CRM may hold an item's task already: the run's one rule, shared with
        # its recorder and dispatcher (``sync.maybe_made``)
        self.maybe_made = maybe_made
        # ids of writes sent that a newer plan of their customer no longer wants (the
        # recorder's ``Recorder.withdrawn``): never to be sent again, whatever their call
        self.withdrawn = withdrawn
        self.stop: Stop | None = None
        self.halted = threading.Event()  # set: queued write calls are not to go out
        # whether this run may still send, asked on the pool thread right before each call
        # (a re-tier's page unit: while its attempt owns the unit, ``sync.retier``); once
        # not, that call and every call after it are withdrawn, their items kept queued
        self.may_send: Callable[[], bool] = lambda: True
        # one check at a time (``_send``): a call whose check runs as another's fails is
        # withdrawn too, whichever thread it is on, never made past the failure
        self._checking = threading.Lock()
        self.pool = ThreadPoolExecutor(
            max_workers=max(1, settings.write_concurrency), thread_name_prefix="crm-write"
        )

    # --- what is outstanding ------------------------------------------------------------

    def unrecorded(self) -> Iterator[list[OutboxItem]]:
        """The item lists of the calls sent whose answers are not recorded yet."""
        yield from self.inflight.values()
        for items, _ in self.landed:
            yield items

    def sent_item(self, item_id: int) -> OutboxItem | None:
        """An item of a call sent and not yet recorded, by id."""
        return next((i for items in self.unrecorded() for i in items if i.id == item_id), None)

    def requeue(self, items: list[OutboxItem]) -> None:
        for item in items:
            self.queue[item.id] = item

    # --- sending ------------------------------------------------------------------------

    def drain(self, *, final: bool) -> None:
        """Record answers and send ready batches; with ``final``, until nothing is left.
        Without it, return at once unless the queue runs too far ahead of the writes."""
        while True:
            self.collect(block=False)
            if self.stop is not None:
                self.halted.set()  # a stopping run sends nothing new
                self.collect(block=True, until_empty=True)
                raise self.stop
            submitted = self._start_ready(final)
            if not final:
                # Back-pressure: do not read further ahead than a few full batches, nor
                # than one full bulk job that waits for a free slot.
                collecting = self._collecting()
                waiting = len(self.queue) - collecting
                ahead = waiting > self.batch * self.settings.write_concurrency * 4
                if (ahead or collecting >= self.caps.bulk_job) and self.inflight:
                    self.collect(block=True)
                    continue
                return
            if submitted:
                continue
            if self.inflight:
                self.collect(block=True)
                continue
            if not self.queue:
                return
            wake = min(self.due.get(i, 0.0) for i in self.queue)
            time.sleep(max(0.0, min(wake - time.monotonic(), self.settings.record_retry_cap)))

    def send_ready(self) -> None:
        """Start the full batches that are ready in the slots of calls that have answered,
        without recording the answers: callable while a page is being processed, where
        recording would change customer states the page has already loaded. A page takes
        a few hundred milliseconds and a call about a tenth of that; were calls started only
        between pages, the write slots would stand idle most of each page (measured: the
        read then waited a fifth of the run on back-pressure)."""
        self._harvest()
        if self.stop is None:
            self._start_ready(final=False)

    def _ready_batches(self, final: bool) -> list[list[OutboxItem]]:
        """Full batches of each kind; at the end also the partial rest of a kind, but only
        once none of its items waits for a customer's in-flight call (else the rest would
        go out in two calls instead of one). Before the run's end, most calls find no kind
        with a full batch queued (a bulk job's field updates are collected over pages):
        those skip the look at each queued item."""
        if not final and all(
            count < self._batching(kind, count, False)[0] for kind, count in self._queued().items()
        ):
            return []
        now = time.monotonic()
        by_kind: dict[str, list[OutboxItem]] = {}
        held: set[str] = set()
        busy: Collection[str] = self.inflight_by_customer
        if self.waiting:  # rarely: only while an interrupted run's customers are re-planned
            busy = self.waiting | self.inflight_by_customer.keys()
        for item in self.queue.values():
            if self.due.get(item.id, 0.0) > now:
                continue
            if item.customer_id in busy:
                held.add(item.kind)
                continue
            by_kind.setdefault(item.kind, []).append(item)
        batches = []
        for kind, items in by_kind.items():
            size, rest = self._batching(kind, len(items), final and kind not in held)
            for start in range(0, len(items), size):
                chunk = items[start : start + size]
                if len(chunk) < size and not rest:
                    break
                batches.append(chunk)
        return batches

    def _batching(self, kind: str, ready: int, last: bool) -> tuple[int, bool]:
        """(items per apply(), whether a partial last batch may go) for ``ready`` items of
        ``kind``; ``last``: nothing more of the kind will come. A CRM with a bulk path
        (``bulk_threshold``) decides by the run's field updates, not a page's: they are
        collected across pages and go in ``bulk_batch`` chunks, the rest at the end in one
        apply() when above the threshold (the connector makes it a bulk job), else in
        ordinary batches. Collected items are durable in the outbox like any queued one."""
        threshold = self.caps.bulk_threshold
        if kind != "field_update" or threshold is None:
            return self.batch, last
        bulk = self.caps.bulk_job
        if ready >= bulk or not last:
            return bulk, False
        return (ready, True) if ready > threshold else (self.batch, True)

    def _collecting(self) -> int:
        """Queued items held for a bulk call (see ``_batching``): no reason to slow the
        read down until a full job of them is ready and every slot is taken. Read on past
        that, and a run whose bulk writes lag its reads keeps every customer read since
        in memory (its decision, outbox item and state): memory in the number of
        customers, not in the calls in flight."""
        if self.caps.bulk_threshold is None:
            return 0
        return self._queued()["field_update"]

    def _queued(self) -> Counter[str]:
        """Queued items by kind, counted in one C loop (no Python per item)."""
        return Counter(map(_kind_of, self.queue.values()))

    def _start_ready(self, final: bool) -> int:
        """Submit ready batches into the free slots; how many went out. The pool makes at
        most ``write_concurrency`` calls at once; each of its threads also has one call
        queued behind the one it is making, so it starts the next the moment one answers
        instead of idling until the read loop comes round (measured: the wall time fell
        by a tenth). Queued calls count as in flight, their outcome in doubt."""
        capacity = 2 * self.settings.write_concurrency - len(self.inflight)
        ready = capacity > 0 and not self.halted.is_set() and not self.holding()
        batches = self._ready_batches(final) if ready else []
        busy: set[str] = set()
        submitted = 0
        for chunk in batches:
            if submitted >= capacity:
                break
            if any(i.customer_id in busy for i in chunk):
                continue
            self._submit(chunk)
            busy.update(i.customer_id for i in chunk)
            submitted += 1
        return submitted

    def _submit(self, items: list[OutboxItem]) -> None:
        items = outbox.plan_order(items)
        for item in items:
            self.queue.pop(item.id, None)
            self.due.pop(item.id, None)  # a retry's backoff is over once it goes out
            self.inflight_by_customer.setdefault(item.customer_id, set()).add(item.id)
        plan = outbox.to_write_plan(items, self.maybe_made)
        kill_point("before_write")
        calls = CallTally()
        future = self.pool.submit(carry(self._send), plan, calls)  # its calls are the run's
        self.inflight[future] = items
        self.calls[future] = calls

    def _send(self, plan: WritePlan, calls: CallTally) -> list[WriteResult]:
        """One write call, on a pool thread, unless the run has withdrawn its queued calls.
        A call refused outright (quota, a read-only CRM, login, configuration) withdraws
        them at once, on this thread: the calls queued behind it would be refused alike,
        and the read loop may not look at the answers for a while. ``calls`` counts the CRM
        calls the plan makes (one apply() is several: field updates, tasks, membership adds
        and removals): whether any left before a failure (``call_answers``)."""
        with self._checking:
            if self.halted.is_set() or not self._may_send():
                self.halted.set()
                raise Unsent
        try:
            with counting(calls):
                return self.connector.apply(plan)
        except REFUSED_OUTRIGHT:
            self.halted.set()
            raise

    def _may_send(self) -> bool:
        """``may_send``, a check that fails (its own database error) taken as a no: the
        call has not left, so it is withdrawn as unsent (its items kept queued, exact, not
        in doubt, not counted sent) with every call after it, never made unchecked."""
        try:
            return self.may_send()
        except Exception as exc:
            log.warning("write calls withdrawn: could not check they may go (%s)", error_text(exc))
            return False

    # --- answers ------------------------------------------------------------------------

    def _harvest(self) -> None:
        """Move the calls that have answered out of flight, freeing their slots. Their
        items stay the customers' in-flight items until the answers are recorded: no
        newer write for those customers may overtake them."""
        for future in [f for f in self.inflight if f.done()]:
            self.landed.append((self.inflight.pop(future), future))

    def collect(self, *, block: bool, until_empty: bool = False) -> None:
        """Record the answered calls; with ``block``, first wait for one to answer if none
        has; with ``until_empty``, go on until no call is in flight."""
        while True:
            if block and self.inflight and not self.landed:
                wait(list(self.inflight), return_when=FIRST_COMPLETED)
            self._harvest()
            landed, self.landed = self.landed, []
            answered = []
            for items, future in landed:
                for item in items:
                    ids = self.inflight_by_customer.get(item.customer_id)
                    if ids is not None:
                        ids.discard(item.id)
                        if not ids:
                            del self.inflight_by_customer[item.customer_id]
                answer = self._answer(items, future)
                if answer is not None:
                    answered.append(answer)
            if answered:
                self._record(answered)
            if not (until_empty and self.inflight):
                return

    def _answer(
        self, items: list[OutboxItem], future: Future[list[WriteResult]]
    ) -> Answered | None:
        """A call's items and their answers, one result per item (``answer_of``); None
        for a call with nothing to record (withdrawn unsent, or failed as a whole before
        any CRM call of it left: ``_no_answer``)."""
        kill_point("after_write")
        calls = self.calls.pop(future)
        if isinstance(future.exception(), Unsent):  # the outbox keeps them for later
            return self._no_answer(items, UNSENT, "the call was withdrawn before it left")
        for item in items:
            if item.attempts == 0:
                self.tally.add(item)
        answer = answer_of(items, future, calls.total())
        self.stop = self.stop or answer.stop
        if answer.results is None:
            return self._no_answer(items, answer.code, answer.message)
        return items, answer.results

    def _no_answer(self, items: list[OutboxItem], code: str, message: str) -> Answered | None:
        """A call with no answer per item (withdrawn unsent, or failed as a whole): its
        items go back in the queue, and the outbox keeps them for later. Not those a newer
        plan of their customer withdrew (``withdrawn``): answered ``code`` here, the
        recorder supersedes them (``AnswerBatch``); left pending, a later drain or the next
        run sent them again behind that plan (a sanctioned customer's task made after its
        closure). ``code``: ``UNSENT`` when the CRM made nothing (never sent, or refused
        outright), else ``UNANSWERED`` (the write may have landed: kept in doubt)."""
        withdrawn = self.withdrawn
        self.requeue([i for i in items if i.id not in withdrawn])
        gone = [i for i in items if i.id in withdrawn]
        if not gone:
            return None
        return gone, [WriteResult(i.kind, i.key, False, code, message) for i in gone]

    def _record(self, answered: list[Answered]) -> None:
        """Record the calls that landed together in one transaction (``Recorder.
        record_results``): one commit, not one a call, and the same rows."""
        kill_point("before_record")
        for item in self.record(answered):
            self.queue[item.id] = item
            base = self.settings.record_retry_base * 2 ** (item.attempts - 1)
            self.due[item.id] = time.monotonic() + min(base, self.settings.record_retry_cap)
        kill_point("after_record")
        self.after_record()

    def shutdown(self) -> None:
        """When the run ends, however it ends: withdraw the calls not yet sent, wait for
        those sent, record what they did; then stop the threads."""
        self.halted.set()
        try:
            self.collect(block=True, until_empty=True)
        except Exception:  # already failing; the outbox keeps the items for the next run
            log.warning("could not record in-flight writes")
        finally:
            self.pool.shutdown(wait=True)
