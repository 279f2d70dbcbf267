"""Job kind ``crmtier.webhook_batch``: the webhook events of one group commit, processed.

The receiver's durable ack stays the inbox commit (``sync/inbox.py``); only then is a job
deferred naming the new events' ids (``defer_events``), and each id is linked to its job
(``task_event_jobs``). Deferring is a second step that can fail after the commit (the
database blinked, the process died): the periodic ``sweep`` then defers a job for every
unfinished event older than ``SWEEP_GRACE`` whose job is missing or no longer waiting or
running, so an acked event is never left without a unit of work.

A job claims its events (``Inbox.claim_ids``: pending ones, or ones its own earlier run
held when its worker died) and hands them to ``InboxWorker.process_claimed``, the same
fetch, admit, process and settle path as the in-process worker. What it leaves pending
(the CRM failed, a stale read) makes the job raise ``EventsPending``, and the engine
retries the job with its exponential backoff; events left untried because another
worker or a sync run holds their customers (``EventsBusy``) are retried in a second;
events a read-only CRM put back (``EventsReadOnly``) were tried and wait ``backoff_cap``
(10 minutes) whatever the job's attempts, as the in-process worker does, their attempt
given back, buried only after a day of it (``WorkerOptions.read_only_patience``): the
exponential backoff would spend the job's attempts in four minutes, and the sweep would
defer a new job at once, a read and a write call every few seconds for the hours of the
maintenance;
what the worker buried after the last attempt makes it raise ``EventsBuried``, which is
not retried: the job is the engine's dead letter, and its events stay ``dead`` in the
inbox with their reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from procrastinate import App, JobContext
from sqlalchemy.dialects import postgresql

from sync.inbox import CLAIMED, DEAD, DONE, PENDING, Inbox
from sync.migration_steps import Migration
from sync.schema import metadata, utc_text
from sync.store import StateStore
from sync.tasks.engine import Worksite, cron_every
from sync.worker import READ_ONLY, BatchReport, InboxWorker

log = logging.getLogger(__name__)

TASK = "crmtier.webhook_batch"
SWEEP = "crmtier.webhook_sweep"
QUEUE = "webhooks"
#: an event younger than this may still be between its commit and its job's link
SWEEP_GRACE = timedelta(seconds=30)

#: the job each unfinished webhook event was last handed to
task_event_jobs = sa.Table(
    "task_event_jobs",
    metadata,
    sa.Column("event_id", sa.BigInteger, primary_key=True),
    sa.Column("job_id", sa.BigInteger, nullable=False),
)

LINK_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "the task engine's job per webhook event",
        lambda conn: metadata.create_all(conn, tables=[task_event_jobs], checkfirst=True),
    ),
)


#: counts a job's run: (customers it finished, "done" | "retry" | "dead")
Record = Callable[[int, str], None]


class EventsPending(Exception):
    """Some of the job's events wait for another attempt (the engine retries the job)."""


class EventsBusy(EventsPending):
    """The job's pending events were not tried: their customers are being processed by
    another worker or a sync run right now (their attempts given back). The engine runs
    the job again in a second, not after an exponential wait."""


class EventsReadOnly(EventsPending):
    """The job's events were tried, and the CRM refuses writes for now (read-only for
    planned maintenance, hours): the engine runs the job again after ``backoff_cap``,
    whatever its attempts; the events' attempts were given back."""


class EventsBuried(Exception):
    """Some of the job's events are dead after their last attempt (not retried)."""


def defer_events(app: App, store: StateStore, ids: Sequence[int], batch_size: int) -> list[int]:
    """Defer jobs of at most ``batch_size`` events for ``ids`` (committed inbox rows) and
    link each event to its job; returns the job ids. Called after the inbox commit: if it
    fails, the sweep defers the events later."""
    jobs = []
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        job_id = app.configure_task(name=TASK, queue=QUEUE).defer(event_ids=list(chunk))
        _link(store, chunk, job_id)
        jobs.append(job_id)
    return jobs


def _link(store: StateStore, ids: Sequence[int], job_id: int) -> None:
    insert = postgresql.insert(task_event_jobs)
    with store.begin() as conn:
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["event_id"], set_={"job_id": insert.excluded.job_id}
            ),
            [{"event_id": i, "job_id": job_id} for i in ids],
        )


#: unfinished events with no live job: never linked (past the grace), or linked to a job
#: that is neither waiting nor running (lost, failed while they were pending again)
_ORPHANS = sa.text(
    "SELECT i.id FROM webhook_inbox i"
    " LEFT JOIN task_event_jobs l ON l.event_id = i.id"
    " LEFT JOIN procrastinate_jobs j ON j.id = l.job_id"
    " WHERE i.status IN (:pending, :claimed) AND i.received_at < :cutoff"
    " AND (j.id IS NULL OR j.status::text NOT IN ('todo', 'doing'))"
    " ORDER BY i.id"
)
_FORGET_FINISHED = sa.text(
    "DELETE FROM task_event_jobs l USING webhook_inbox i"
    " WHERE i.id = l.event_id AND i.status NOT IN (:pending, :claimed)"
)
_FORGET_PURGED = sa.text(
    "DELETE FROM task_event_jobs l"
    " WHERE NOT EXISTS (SELECT 1 FROM webhook_inbox i WHERE i.id = l.event_id)"
)


def sweep(app: App, store: StateStore, now: datetime, batch_size: int) -> int:
    """Defer jobs for unfinished events that have none; forget the links of finished or
    purged events. Returns how many events were given a job."""
    cutoff = utc_text(now - SWEEP_GRACE)
    states = {"pending": PENDING, "claimed": CLAIMED}
    with store.begin() as conn:
        orphans = list(conn.execute(_ORPHANS, {**states, "cutoff": cutoff}).scalars())
        conn.execute(_FORGET_FINISHED, states)
        conn.execute(_FORGET_PURGED)
    if orphans:
        log.warning("task engine: %d acked events had no job; deferring them", len(orphans))
        defer_events(app, store, orphans, batch_size)
    return len(orphans)


def process_job(worker: InboxWorker, owner: str, event_ids: Sequence[int], record: Record) -> int:
    """Run one job's events; returns how many customers it finished, as it tells
    ``record`` with how the run ended. Raises ``EventsPending`` (or its kinds) or
    ``EventsBuried`` as the module docstring says."""
    now = worker.clock()
    items = worker.inbox.claim_ids(event_ids, owner, now, worker.options.lease)
    report = worker.process_claimed(items, now) if items else BatchReport()
    states = worker.inbox.states([i.id for i in items])
    done = {i.customer_id for i in items if states[i.id].status == DONE}
    customers = len(done - {i.customer_id for i in items if states[i.id].status != DONE})
    pending = {i: s.error for i, s in states.items() if s.status in (PENDING, CLAIMED)}
    dead = {i: s.error for i, s in states.items() if s.status == DEAD}
    record(customers, "dead" if dead else "retry" if pending else "done")
    if dead:
        raise EventsBuried(f"{len(dead)} events dead: {_first(dead)}")
    if pending and READ_ONLY in report.outcomes:  # tried, their attempts given back
        raise EventsReadOnly(f"{len(pending)} events wait for the CRM: {_first(pending)}")
    # an attempt given back, not tried: the customer was held elsewhere (retry soon)
    untried = all(states[i.id].attempts < i.attempts for i in items if i.id in pending)
    if pending and untried:
        raise EventsBusy(f"{len(pending)} events wait for another holder: {_first(pending)}")
    if pending:
        raise EventsPending(f"{len(pending)} events to retry: {_first(pending)}")
    return customers


def _first(errors: dict[int, str | None]) -> str:
    return next((e for e in errors.values() if e), "no reason recorded")


def register(app: App, site: Worksite) -> None:
    """Put the webhook job and its sweep on ``app`` for this process's ``site``."""
    options = site.inbox_options
    site.store.migrate("task_webhook_links", LINK_MIGRATIONS)
    worker = InboxWorker(
        Inbox(site.store),
        site.engine.connector.fetch,  # the engine's reads: with the overrides' CRM audit
        site.engine.process_changes,
        claims=site.engine.claims,
        options=options,
        owner=site.name,
    )
    retry = site.settings.retry(
        options.max_attempts,
        final=(EventsBuried,),
        soon=(EventsBusy,),
        later=(EventsReadOnly,),
        later_in=options.backoff_cap,
    )

    @app.task(name=TASK, queue=QUEUE, pass_context=True, retry=retry)
    def webhook_batch(context: JobContext, event_ids: list[int]) -> int:
        return process_job(
            worker,
            f"job:{context.job.id}",
            event_ids,
            lambda customers, outcome: site.record(TASK, customers, outcome),
        )

    @app.periodic(cron=cron_every(site.settings.sweep_every), periodic_id="sweep")
    @app.task(name=SWEEP, queue=QUEUE, queueing_lock=SWEEP)
    def webhook_sweep(timestamp: int) -> int:
        return sweep(app, site.store, datetime.now(UTC), options.batch_size)
