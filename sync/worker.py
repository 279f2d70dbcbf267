"""The inbox worker: turns acked change notifications into re-tiered CRM records.

It drains the webhook inbox in micro-batches. A batch starts when ``batch_size`` events are
waiting or the oldest waiting event is ``window`` old, whichever comes first, so a burst of
notifications about the same customers costs one fetch and one write per customer (events
are coalesced by customer), while a lone event waits at most ``window``.

Notifications are hints, not data: they can be late, duplicated or out of order (docs/targets.md
W12). So the worker never tiers what a notification says; it re-fetches the current records with the
connector's ``fetch(ids)`` and hands them to the same processing path as the scheduled sync (assess,
plan, outbox, write, audit with ``trigger=webhook`` and the ``source_event_id``). The fetch happens
inside the stream's exclusive section, after any sync run that held it
has written: the planner diffs against what the CRM holds when the writes are made.
Two guards keep an older state from overwriting a newer one:

* a record fetched with a modstamp *older* than the version the notification announced is
  a stale read (a lagging replica): the events go back to the inbox and are retried;
* the highest modstamp admitted per customer is kept (``webhook_versions``) and a record is
  admitted only if it is not older, in the same serialised section that processes it (the
  stream's lease across processes, a lock within one): a second worker that fetched earlier
  but got the stream later finds the newer version admitted and drops its older view.

When the CRM is down, fetch or write fails; the batch's events return to the inbox with an
exponential backoff and are buried as ``dead`` only after ``max_attempts``. The receiver
keeps acking meanwhile (W7), and the backlog drains once the CRM recovers. Any other
failure is bisected down to the customer that causes it, so one poison event never costs
the rest of its batch (see ``_run_group``).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from connectors.contract import CrmRecord
from connectors.errors import AuthExpiredError, ConnectorError, RateLimitedError, TransientError
from sync.engine import SyncEngine
from sync.errortext import error_text
from sync.inbox import Inbox, InboxItem
from sync.schema import Migration, metadata, parse_utc, utc_text

log = logging.getLogger(__name__)

#: highest record modstamp the worker has processed, per customer (the monotonic guard).
webhook_versions = sa.Table(
    "webhook_versions",
    metadata,
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("modstamp", sa.String(32), nullable=False),
)

WORKER_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "per-customer processed modstamp for the webhook worker",
        lambda conn: metadata.create_all(conn, tables=[webhook_versions], checkfirst=True),
    ),
)


class ChangeProcessor(Protocol):
    """The sync layer's processing path for records a webhook named: assess, plan, write
    back and audit with ``trigger=webhook``. Returns an outcome per customer id
    (``written``, ``unchanged``, ``dead_lettered``, ...). Raises a ``ConnectorError`` when
    the CRM call itself failed, so the worker retries the whole batch later."""

    def __call__(
        self, records: Sequence[CrmRecord], source_event_ids: Mapping[str, str], /
    ) -> Mapping[str, str]: ...


Fetch = Callable[[Sequence[str]], list[CrmRecord]]

#: Failures of the CRM as a whole: splitting a batch cannot help and would only multiply
#: the calls to a CRM that is down or throttling us.
_WHOLE_CRM = (TransientError, RateLimitedError, AuthExpiredError)


class StreamBusyError(TransientError):
    """Another process is syncing this stream: the batch waits, its attempts uncounted (a
    long backfill must not bury the events that arrive meanwhile)."""


class StreamLease:
    """The worker's exclusive section over a sync engine's stream: in-process by ``lock``
    (shared with the scheduler in ``crmtier serve``), across processes by the stream's
    lease, so a sync run and the workers never write the same customer from two different
    reads, and the version guard and the writes it admits happen as one step. While
    another process holds the lease, the batch is retried later (that run is processing the
    same changes anyway)."""

    def __init__(self, engine: SyncEngine, lock: threading.Lock | None = None) -> None:
        self.engine = engine
        self.lock = lock or threading.Lock()

    @contextmanager
    def __call__(self) -> Iterator[None]:
        store, lease = self.engine.store, self.engine.lock_name
        with self.lock:
            if not store.acquire_lock(lease, ttl=self.engine.settings.lock_ttl):
                raise StreamBusyError("a sync run in another process holds this stream")
            try:
                yield
            finally:
                store.release_lock(lease)


@dataclass(frozen=True)
class WorkerOptions:
    batch_size: int = 200
    window: timedelta = timedelta(milliseconds=200)
    lease: timedelta = timedelta(minutes=5)
    max_attempts: int = 8
    backoff_base: timedelta = timedelta(seconds=2)
    backoff_cap: timedelta = timedelta(minutes=10)
    stale_read_delay: timedelta = timedelta(seconds=1)
    busy_delay: timedelta = timedelta(seconds=5)
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
        exclusive: Callable[[], AbstractContextManager[None]] | None = None,
        owner: str = "worker",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_outcome: Callable[[str, int], None] | None = None,
    ) -> None:
        self.inbox = inbox
        self.fetch = fetch
        self.process = process
        # a worker that shares its stream with nobody (one thread) needs no exclusion
        self.exclusive = exclusive or nullcontext
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
        self._run_group(by_customer, now, report)
        return self._report(report)

    def _run_group(
        self, by_customer: Mapping[str, list[InboxItem]], now: datetime, report: BatchReport
    ) -> None:
        """Fetch, admit, process and settle these customers' events.

        A failure that says the CRM as a whole cannot serve us now (``_WHOLE_CRM``: down,
        throttled, token expired) retries the whole group. Any other failure may be caused
        by one customer in it (an id the CRM refuses in the lookup, a record processing
        chokes on), so a group of several customers is split in two and each half runs on
        its own (bisection): one poison event then costs its batch about 2·log2(n) extra
        calls, and every other event is processed; only a single customer's failure is
        retried and, after ``max_attempts``, buried."""
        items = [item for group in by_customer.values() for item in group]
        try:
            with self.exclusive():
                # Fetched only now, under the stream: a record read before waiting for it
                # could predate the writes of whoever held it (the scheduled sync), and
                # planning against that older view would leave their fields in place.
                records = self.fetch(list(by_customer))
                current, stale = self._split_stale(records, by_customer)
                fresh = self._admit(current)
                outcomes = (
                    dict(self.process(fresh, _source_events(fresh, by_customer))) if fresh else {}
                )
        except StreamBusyError as exc:  # not a failure: try again soon, without counting
            self.inbox.retry_later(
                {i.id: str(exc) for i in items}, now + self.options.busy_delay, count=False
            )
            report.add("busy", len(items))
            return
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
        for customer_id, customer_items in by_customer.items():
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

    def _admit(self, records: Sequence[CrmRecord]) -> list[CrmRecord]:
        """The records not older than the newest version admitted for their customer, whose
        versions become the newest admitted. Runs inside ``exclusive`` with the processing
        it admits to, so no older view can be admitted after a newer one was. A record left
        out is superseded and must not be written."""
        if not records:
            return []
        ids = [r.profile.id for r in records]
        dialect = postgresql if self.inbox.store.engine.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(webhook_versions)
        raise_only = insert.on_conflict_do_update(
            index_elements=["customer_id"],
            set_={"modstamp": insert.excluded.modstamp},
            where=webhook_versions.c.modstamp < insert.excluded.modstamp,
        )
        with self.inbox.store.begin() as conn:
            admitted = {
                row.customer_id: parse_utc(row.modstamp)
                for row in conn.execute(
                    sa.select(webhook_versions).where(webhook_versions.c.customer_id.in_(ids))
                )
            }
            fresh = [
                r
                for r in records
                if r.profile.id not in admitted or _aware(r.modstamp) >= admitted[r.profile.id]
            ]
            if fresh:
                rows = [
                    {"customer_id": r.profile.id, "modstamp": utc_text(r.modstamp)} for r in fresh
                ]
                conn.execute(raise_only, rows)
        return fresh

    def _retry(self, items: Sequence[InboxItem], exc: Exception, report: BatchReport) -> None:
        now = self.clock()
        error = error_text(exc)
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
