"""The inbox worker: turns acked change notifications into re-tiered CRM records.

It drains the webhook inbox in micro-batches. A batch starts when ``batch_size`` events are
waiting or the oldest waiting event is ``window`` old, whichever comes first, so a burst of
notifications about the same customers costs one fetch and one write per customer (events
are coalesced by customer), while a lone event waits at most ``window``.

Notifications are hints, not data: they can be late, duplicated or out of order (docs/targets.md
W12). So the worker never tiers what a notification says; it re-fetches the current records with the
connector's ``fetch(ids)`` and hands them to the same processing path as the scheduled sync (assess,
plan, outbox, write, audit with ``trigger=webhook`` and the ``source_event_id``).

Workers (threads, processes, hosts) run side by side; what keeps them from writing one
customer from two different reads is the customer's claim (``sync.claims``), not the
stream. A batch first claims its customers in one statement. Those another worker or a
sync run holds go back to the inbox at once, their attempt not counted, and are tried
again after ``claimed_delay`` (the holder is processing that customer right now). The
rest are fetched only now, under their claims, so the read is never older than what
the previous holder wrote; then two guards keep an older state from overwriting a newer one:

* a record fetched with a modstamp *older* than the version the notification announced is
  a stale read (a lagging replica): the events go back to the inbox and are retried;
* the record is *admitted* only if its modstamp is not older than the newest admitted for
  its customer by any worker or sync run (compare-and-set, inside the claim); an older
  view is ``superseded`` and never written.

The claims are released when the batch's events are settled.

When the CRM is down, fetch or write fails; the batch's events return to the inbox with an
exponential backoff and are buried as ``dead`` only after ``max_attempts`` (a CRM read-only
for maintenance is waited out, up to ``read_only_patience``: ``_retry``). The receiver
keeps acking meanwhile (W7), and the backlog drains once the CRM recovers. Any other
failure is bisected down to the customer that causes it, so one poison event never costs
the rest of its batch (see ``_run_group``).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from connectors.contract import CrmRecord
from connectors.errors import (
    AuthExpiredError,
    ConnectorError,
    RateLimitedError,
    ReadOnlyError,
    TransientError,
)
from sync.claims import CustomerClaims, owner_id
from sync.claims_schema import WORKER_MIGRATIONS
from sync.errortext import error_text
from sync.inbox import Inbox, InboxItem

log = logging.getLogger(__name__)


class ChangeProcessor(Protocol):
    """The sync layer's processing path for records a webhook named: assess, plan, write
    back and audit with ``trigger=webhook``. The worker calls it on the thread that holds
    the records' claims, every record admitted. Returns an outcome per customer id
    (``written``, ``unchanged``, ``dead_lettered``, ...). Raises a ``ConnectorError`` when
    the CRM call itself failed, so the worker retries the whole batch later."""

    def __call__(
        self, records: Sequence[CrmRecord], source_event_ids: Mapping[str, str], /
    ) -> Mapping[str, str]: ...


Fetch = Callable[[Sequence[str]], list[CrmRecord]]

#: Failures of the CRM as a whole: splitting a batch cannot help and would only multiply
#: the calls to a CRM that is down or throttling us.
_WHOLE_CRM = (TransientError, RateLimitedError, ReadOnlyError, AuthExpiredError)

#: The outcome of events put back because the CRM is read-only: tried (a task engine's job
#: must wait its backoff, not retry at once as for an event never tried), yet not counted.
READ_ONLY = "read_only"


@dataclass(frozen=True)
class WorkerOptions:
    batch_size: int = 200
    window: timedelta = timedelta(milliseconds=200)
    lease: timedelta = timedelta(minutes=5)
    max_attempts: int = 8
    backoff_base: timedelta = timedelta(seconds=2)
    backoff_cap: timedelta = timedelta(minutes=10)
    #: how long events wait out a CRM read-only for maintenance (every ``backoff_cap``,
    #: the attempt not counted): a window lasts hours, so a day past the oldest event's
    #: receipt the refusal counts as any failure and the events are buried after
    #: ``max_attempts`` (a dead event is an alert), not retried for ever
    read_only_patience: timedelta = timedelta(hours=24)
    stale_read_delay: timedelta = timedelta(seconds=1)
    #: a customer another worker or a sync run holds is asked for again this much later
    claimed_delay: timedelta = timedelta(milliseconds=500)
    busy_delay: timedelta = timedelta(seconds=5)  # the state store is unreachable
    dedupe: timedelta = timedelta(days=7)
    purge_every: timedelta = timedelta(hours=1)
    idle_poll: timedelta = timedelta(milliseconds=50)


@dataclass
class BatchReport:
    """What one micro-batch did, by event (for tests, logs and metrics)."""

    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str, events: int) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + events

    @property
    def events(self) -> int:
        return sum(self.outcomes.values())


class InboxWorker:
    def __init__(
        self,
        inbox: Inbox,
        fetch: Fetch,
        process: ChangeProcessor,
        *,
        options: WorkerOptions | None = None,
        claims: CustomerClaims | None = None,
        owner: str = "worker",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_outcome: Callable[[str, int], None] | None = None,
    ) -> None:
        self.inbox = inbox
        self.fetch = fetch
        self.process = process
        self.claims = claims or CustomerClaims(inbox.store)
        self.options = options or WorkerOptions()
        self.owner = owner
        self.clock = clock
        self.on_outcome = on_outcome
        self._last_purge: datetime | None = None
        inbox.store.migrate("webhook_worker", WORKER_MIGRATIONS)

    # --- loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Process batches until ``stop`` is set; the batch in progress is finished, and
        anything still claimed is handed back to the inbox."""
        try:
            while not stop.is_set():
                try:
                    self._maybe_purge()
                    wait = self.wait_before_next_batch()
                    if wait <= 0:
                        self.run_batch()
                        continue
                except Exception as exc:  # the store itself failed: keep the worker alive
                    log.error("worker: state store unavailable (%s); retrying", type(exc).__name__)
                    wait = self.options.busy_delay.total_seconds()
                stop.wait(wait)
        finally:
            released = self.inbox.release(self.owner)
            if released:
                log.info("worker stopping: %d claimed events returned to the inbox", released)

    def wait_before_next_batch(self) -> float:
        """Seconds to wait before a batch is due (0 = now): the coalescing window."""
        now = self.clock()
        count, oldest = self.inbox.ready(now)
        if count == 0:
            return self.options.idle_poll.total_seconds()
        if count >= self.options.batch_size or oldest is None:
            return 0.0
        remaining = self.options.window - (now - oldest)
        return max(remaining.total_seconds(), 0.0)

    def drain(self, *, max_batches: int = 10_000) -> BatchReport:
        """Process until nothing is claimable now (tests and one-off tools)."""
        total = BatchReport()
        for _ in range(max_batches):
            report = self.run_batch()
            if not report.events:
                break
            for outcome, n in report.outcomes.items():
                total.add(outcome, n)
        return total

    # --- one micro-batch -------------------------------------------------------------

    def run_batch(self) -> BatchReport:
        now = self.clock()
        items = self.inbox.claim(self.owner, self.options.batch_size, now, self.options.lease)
        return self.process_claimed(items, now)

    def process_claimed(self, items: Sequence[InboxItem], now: datetime) -> BatchReport:
        """Process events already claimed, by this worker's loop or by a task engine's job
        (``sync/tasks/webhook_batch.py``): fetch, admit, process and settle them, each
        event ending done, dead, or pending again with its error."""
        report = BatchReport()
        if not items:
            return report
        by_customer: dict[str, list[InboxItem]] = defaultdict(list)
        for item in items:
            by_customer[item.customer_id].append(item)
        owner = owner_id()
        got = self.claims.claim(list(by_customer), owner)
        try:
            self._busy([c for c in by_customer if c not in got], by_customer, now, report)
            self._run_group({c: by_customer[c] for c in by_customer if c in got}, now, report)
            return self._report(report)
        finally:
            self.claims.release(got, owner)

    def _busy(
        self,
        customers: Sequence[str],
        by_customer: Mapping[str, list[InboxItem]],
        now: datetime,
        report: BatchReport,
    ) -> None:
        """Customers someone else holds: their events wait, the attempt not counted (that
        holder is processing the customer; a backfill holding many must not bury them)."""
        items = [item for c in customers for item in by_customer[c]]
        if items:
            busy = "another worker or sync run holds the customer"
            self.inbox.retry_later(
                {i.id: busy for i in items}, now + self.options.claimed_delay, count=False
            )
            report.add("busy", len(items))

    def _run_group(
        self, by_customer: Mapping[str, list[InboxItem]], now: datetime, report: BatchReport
    ) -> None:
        """Fetch, admit, process and settle these customers' events (claimed by this
        thread).

        A failure that says the CRM as a whole cannot serve us now (``_WHOLE_CRM``: down,
        throttled, token expired) retries the whole group. Any other failure may be caused
        by one customer in it (an id the CRM refuses in the lookup, a record processing
        chokes on), so a group of several customers is split in two and each half runs on
        its own (bisection): one poison event then costs its batch about 2·log2(n) extra
        calls, and every other event is processed; only a single customer's failure is
        retried and, after ``max_attempts``, buried."""
        if not by_customer:
            return
        items = [item for group in by_customer.values() for item in group]
        try:
            # Fetched only now, under the claims: a record read before claiming could
            # predate the writes of whoever held them (a sync run, another worker), and
            # planning against that older view would leave their fields in place.
            records = self.fetch(list(by_customer))
            current, stale = self._split_stale(records, by_customer)
            admission = self.claims.admit(
                {r.profile.id: _aware(r.modstamp) for r in current}, owner_id()
            )
            fresh = [r for r in current if r.profile.id in admission.admitted]
            outcomes = (
                dict(self.process(fresh, _source_events(fresh, by_customer))) if fresh else {}
            )
        except Exception as exc:  # a CRM failure, or a bug: the events wait and are retried
            if len(by_customer) > 1 and not isinstance(exc, _WHOLE_CRM):
                log.warning(
                    "worker: a batch of %d customers failed (%s); splitting it to isolate it",
                    len(by_customer),
                    error_text(exc),
                )
                ids = list(by_customer)
                for half in (ids[: len(ids) // 2], ids[len(ids) // 2 :]):
                    self._run_group({c: by_customer[c] for c in half}, now, report)
                return
            if not isinstance(exc, ConnectorError):
                log.exception("worker: batch failed unexpectedly")
            self._retry(items, exc, report)
            return
        fetched = {record.profile.id for record in records}
        finished: dict[int, str] = {}
        retry: dict[int, str] = {}
        self._busy(sorted(admission.lost), by_customer, now, report)
        for customer_id, customer_items in by_customer.items():
            if customer_id in admission.lost:
                continue
            if customer_id in stale:
                retry.update({i.id: "stale read" for i in customer_items})
                report.add("stale_read", len(customer_items))
                continue
            if customer_id not in fetched:
                outcome = "not_found"  # deleted, or no longer readable by the integration user
            else:
                outcome = outcomes.get(customer_id, "superseded")
            finished.update({i.id: outcome for i in customer_items})
            report.add(outcome, len(customer_items))
        self.inbox.complete(finished, now)
        if retry:
            self.inbox.retry_later(retry, now + self.options.stale_read_delay)

    def _split_stale(
        self, records: Sequence[CrmRecord], by_customer: Mapping[str, Sequence[InboxItem]]
    ) -> tuple[list[CrmRecord], set[str]]:
        """Set aside stale reads: records older than the version a notification announced
        (after ``max_attempts`` the read is taken as it is, since a sender's clock may
        simply differ)."""
        current: list[CrmRecord] = []
        stale: set[str] = set()
        for record in records:
            items = by_customer.get(record.profile.id, ())
            announced = [i.version for i in items if i.version is not None]
            patient = max((i.attempts for i in items), default=0) < self.options.max_attempts
            if announced and _aware(record.modstamp) < max(announced) and patient:
                stale.add(record.profile.id)
            else:
                current.append(record)
        return current, stale

    def _retry(self, items: Sequence[InboxItem], exc: Exception, report: BatchReport) -> None:
        now = self.clock()
        error = error_text(exc)
        oldest = min(item.received_at for item in items)
        if isinstance(exc, ReadOnlyError) and now - oldest < self.options.read_only_patience:
            # The CRM refuses writes for hours (planned maintenance) and nothing is wrong
            # with these events: they wait, tried again every ``backoff_cap`` without the
            # attempt counting (their writes are kept in the outbox too), buried only once
            # the refusal outlasts ``read_only_patience``: no backlog grows for ever.
            self.inbox.retry_later(
                {item.id: error for item in items}, now + self.options.backoff_cap, count=False
            )
            report.add(READ_ONLY, len(items))
            log.warning("worker: the CRM is read-only; %d events wait: %s", len(items), error)
            return
        attempts = max(item.attempts for item in items)
        if attempts >= self.options.max_attempts:
            self.inbox.bury({item.id: error for item in items}, now)
            report.add("dead", len(items))
            log.error("worker: %d events dead after %d attempts: %s", len(items), attempts, error)
            return
        delay = min(self.options.backoff_base * 2 ** (attempts - 1), self.options.backoff_cap)
        if isinstance(exc, RateLimitedError) and exc.retry_after:
            delay = max(delay, timedelta(seconds=exc.retry_after))
        self.inbox.retry_later({item.id: error for item in items}, now + delay)
        report.add("retry", len(items))
        log.warning(
            "worker: %d events retried in %.0f s: %s",
            len(items),
            delay.total_seconds(),
            error,
        )

    def _report(self, report: BatchReport) -> BatchReport:
        if self.on_outcome is not None:
            for outcome, n in report.outcomes.items():
                self.on_outcome(outcome, n)
        return report

    def _maybe_purge(self) -> None:
        now = self.clock()
        if self._last_purge is not None and now - self._last_purge < self.options.purge_every:
            return
        self._last_purge = now
        purged = self.inbox.purge(now, self.options.dedupe)
        if purged:
            log.info("inbox: purged %d processed events older than the dedupe window", purged)


def _source_events(
    records: Sequence[CrmRecord], by_customer: Mapping[str, Sequence[InboxItem]]
) -> dict[str, str]:
    """The event each customer's audit rows cite: the latest notification about it."""
    return {r.profile.id: by_customer[r.profile.id][-1].event_key for r in records}


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
