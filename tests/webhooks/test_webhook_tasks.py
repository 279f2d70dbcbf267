"""The task engine's pieces on a real PostgreSQL store, each rule on its own: the queue's
schema applied once under the migration lock, a job's claim on its events, what a job
leaves to the engine's retries and dead letters, the sweep that gives orphaned events a
job, the deferrer that gathers ids off the ack path, and the queue in ``/metrics``.

Real processes (``crmtier serve`` + two ``crmtier worker``) are in
``test_webhook_workers.py``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from procrastinate import App, PsycopgConnector

from connectors.errors import TransientError
from connectors.webhook_events import ChangeEvent
from crmtier.config import ConfigFileError, load_config
from sync.claims import CustomerClaims
from sync.inbox import CLAIMED, DEAD, DONE, PENDING, Inbox, webhook_inbox
from sync.schema import utc_text
from sync.store import StateStore
from sync.tasks.engine import (
    RETRY_STALLED,
    TASK_MIGRATIONS,
    TaskSettings,
    Worksite,
    build_app,
    conninfo,
    cron_every,
)
from sync.tasks.kinds import KINDS
from sync.tasks.retier_page import QUEUE as RETIER_QUEUE
from sync.tasks.retier_page import TASK as RETIER_TASK
from sync.tasks.stats import QueueStats, WorkerThroughput, queue_stats, record_job
from sync.tasks.webhook_batch import (
    LINK_MIGRATIONS,
    QUEUE,
    SWEEP,
    SWEEP_GRACE,
    TASK,
    EventsBuried,
    EventsBusy,
    EventsPending,
    EventsReadOnly,
    defer_events,
    process_job,
    sweep,
    task_event_jobs,
)
from sync.worker import InboxWorker, WorkerOptions
from tests.sync.conftest import CRM_TABLE, PG_URL, pg_schema
from tests.webhooks.test_webhook_worker import T0, Clock, MemoryCrm, ReadOnlyWriter, Writer
from webhooks.deferrer import Deferrer
from webhooks.metrics import queue_lines

pytestmark = pytest.mark.postgres


def _open(schema: str) -> StateStore:
    return StateStore.open(f"{PG_URL}?options=-csearch_path%3D{schema}")


@pytest.fixture
def store() -> Iterator[StateStore]:
    with pg_schema() as name:
        opened = _open(name)
        opened.migrate("task_engine", TASK_MIGRATIONS)
        opened.migrate("task_webhook_links", LINK_MIGRATIONS)
        try:
            yield opened
        finally:
            opened.close()


@pytest.fixture
def app(store: StateStore) -> Iterator[App]:
    opened = App(connector=PsycopgConnector(conninfo=conninfo(store)))
    opened.open()
    try:
        yield opened
    finally:
        opened.close()


def _events(inbox: Inbox, *customers: str) -> list[int]:
    events = [ChangeEvent("salesforce", f"e{i}-{c}", c) for i, c in enumerate(customers)]
    return inbox.add_batch([events], T0).ids


# --- schema -------------------------------------------------------------------------


def test_two_processes_opening_a_fresh_store_at_once_apply_the_queue_schema_once() -> None:
    with pg_schema() as name:
        stores = [_open(name) for _ in range(4)]
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(stores))

        def migrate(s: StateStore) -> None:
            barrier.wait()
            try:
                s.migrate("task_engine", TASK_MIGRATIONS)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=migrate, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        try:
            assert errors == []
            with stores[0].engine.connect() as conn:
                assert (
                    conn.execute(sa.text("SELECT count(*) FROM procrastinate_jobs")).scalar() == 0
                )
            assert stores[0].migrate("task_engine", TASK_MIGRATIONS) == len(TASK_MIGRATIONS)
        finally:
            for s in stores:
                s.close()


# --- a job's claim --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "claimed_by", "lease", "taken"),
    [
        (PENDING, None, None, True),
        (CLAIMED, "job:1", timedelta(minutes=5), True),  # its own run, before a crash
        (CLAIMED, "job:2", timedelta(minutes=5), False),  # another job's live claim
        (CLAIMED, "job:2", timedelta(seconds=-1), True),  # another job's lapsed claim
        (DONE, None, None, False),
        (DEAD, None, None, False),
    ],
)
def test_a_job_claims_its_events_unless_finished_or_held_by_another(
    store: StateStore,
    status: str,
    claimed_by: str | None,
    lease: timedelta | None,
    taken: bool,
) -> None:
    inbox = Inbox(store)
    (event,) = _events(inbox, "C1")
    with store.begin() as conn:
        conn.execute(
            webhook_inbox.update()
            .where(webhook_inbox.c.id == event)
            .values(
                status=status,
                claimed_by=claimed_by,
                lease_until=utc_text(T0 + lease) if lease is not None else None,
                available_at=utc_text(T0 + timedelta(hours=1)),  # the engine's schedule rules
            )
        )
    items = inbox.claim_ids([event], "job:1", T0, timedelta(minutes=5))
    assert [i.id for i in items] == ([event] if taken else [])


# --- what a job leaves to the engine ---------------------------------------------------


def _worker(store: StateStore, crm: MemoryCrm, **options: Any) -> InboxWorker:
    return InboxWorker(
        Inbox(store), crm.fetch, Writer(), options=WorkerOptions(**options), clock=Clock()
    )


def test_a_job_finishes_its_customers_and_counts_them(store: StateStore) -> None:
    crm = MemoryCrm()
    for c in ("C1", "C2"):
        crm.set(c, 1, T0)
    worker = _worker(store, crm)
    ids = _events(worker.inbox, "C1", "C2", "C1")
    counted: list[tuple[int, str]] = []
    assert process_job(worker, "job:7", ids, lambda n, o: counted.append((n, o))) == 2
    assert counted == [(2, "done")]
    assert {s.status for s in worker.inbox.states(ids).values()} == {DONE}


def test_a_crm_failure_leaves_the_events_pending_for_the_engines_retry(store: StateStore) -> None:
    crm = MemoryCrm()
    crm.set("C1", 1, T0)
    crm.down = TransientError("503 from the CRM")
    worker = _worker(store, crm, max_attempts=3)
    ids = _events(worker.inbox, "C1")
    counted: list[tuple[int, str]] = []
    with pytest.raises(EventsPending, match="503 from the CRM"):
        process_job(worker, "job:7", ids, lambda n, o: counted.append((n, o)))
    assert worker.inbox.states(ids)[ids[0]].status == PENDING
    assert counted == [(0, "retry")]
    crm.down = None  # the engine's retry runs the same job again
    assert process_job(worker, "job:7", ids, lambda n, f: None) == 1


def test_the_last_attempt_buries_the_events_with_their_reason_and_is_final(
    store: StateStore,
) -> None:
    crm = MemoryCrm()
    crm.set("C1", 1, T0)
    crm.down = TransientError("503 from the CRM")
    worker = _worker(store, crm, max_attempts=2)
    ids = _events(worker.inbox, "C1")
    with pytest.raises(EventsPending):
        process_job(worker, "job:7", ids, lambda n, f: None)
    counted: list[tuple[int, str]] = []
    with pytest.raises(EventsBuried, match="503 from the CRM"):
        process_job(worker, "job:7", ids, lambda n, o: counted.append((n, o)))
    assert worker.inbox.states(ids)[ids[0]] == (DEAD, "TransientError: 503 from the CRM", 2)
    assert counted == [(0, "dead")]


def test_a_read_only_crm_leaves_the_events_pending_for_the_backoff_never_buried(
    store: StateStore,
) -> None:
    """A CRM read-only for maintenance (hours): the job tried its events, so it waits
    ``backoff_cap`` (``EventsReadOnly``), neither the one-second retry of events never
    tried (``EventsBusy``: a read and a write call every second for hours) nor the
    exponential backoff, whose attempts run out in minutes (and the sweep defers a new
    job at once); the attempt is given back, so no number of them buries the events."""
    crm = MemoryCrm()
    crm.set("C1", 1, T0)
    writer = ReadOnlyWriter()
    worker = InboxWorker(
        Inbox(store), crm.fetch, writer, options=WorkerOptions(max_attempts=2), clock=Clock()
    )
    ids = _events(worker.inbox, "C1")
    for _ in range(4):
        with pytest.raises(EventsReadOnly, match="read-only"):
            process_job(worker, "job:7", ids, lambda n, o: None)
        assert worker.inbox.states(ids)[ids[0]][::2] == (PENDING, 0)
    writer.read_only = False
    assert process_job(worker, "job:7", ids, lambda n, o: None) == 1


def test_events_whose_customer_another_holder_has_wait_untried_and_retry_soon(
    store: StateStore,
) -> None:
    crm = MemoryCrm()
    crm.set("C1", 1, T0)
    worker = _worker(store, crm)
    ids = _events(worker.inbox, "C1")
    other = CustomerClaims(store)
    assert other.claim(["C1"], "a sync run elsewhere") == {"C1"}
    with pytest.raises(EventsBusy, match="holds the customer"):
        process_job(worker, "job:7", ids, lambda n, o: None)
    assert worker.inbox.states(ids)[ids[0]][::2] == (PENDING, 0)  # the attempt given back
    other.release(["C1"], "a sync run elsewhere")
    assert process_job(worker, "job:7", ids, lambda n, o: None) == 1


@pytest.mark.parametrize(
    ("exception", "attempts", "retried_in"),
    [
        (EventsPending("x"), 0, 2),
        (EventsPending("x"), 2, 8),
        (EventsPending("x"), 5, None),  # out of attempts: the job is the dead letter
        (RuntimeError("store blinked"), 0, 2),
        (EventsBuried("x"), 0, None),  # final whatever the attempts
        (EventsBusy("x"), 0, 1),  # not tried: soon, and whatever the attempts
        (EventsBusy("x"), 9, 1),
        # tried against a read-only CRM: backoff_cap, whatever the attempts, never the
        # exponential waits that end the job (and its sweep's next job) within minutes
        (EventsReadOnly("x"), 0, 600),
        (EventsReadOnly("x"), 9, 600),
    ],
)
def test_retries_are_exponential_bounded_and_never_after_a_burial(
    exception: Exception, attempts: int, retried_in: int | None
) -> None:
    strategy = TaskSettings(retry_base=2).retry(
        5,
        final=(EventsBuried,),
        soon=(EventsBusy,),
        later=(EventsReadOnly,),
        later_in=WorkerOptions().backoff_cap,
    )
    job: Any = type("Job", (), {"attempts": attempts})()
    before = datetime.now(UTC)
    decision = strategy.get_retry_decision(exception=exception, job=job)
    if retried_in is None:
        assert decision is None
        return
    assert decision is not None and decision.retry_at is not None
    assert retried_in - 1 < (decision.retry_at - before).total_seconds() <= retried_in + 1


@pytest.mark.parametrize(
    ("period", "cron"),
    [
        (timedelta(seconds=2), "* * * * * */2"),
        (timedelta(seconds=30), "* * * * * */30"),
        (timedelta(minutes=5), "*/5 * * * *"),
        (timedelta(milliseconds=10), "* * * * * */1"),
    ],
)
def test_periodic_jobs_fire_at_the_configured_period(period: timedelta, cron: str) -> None:
    assert cron_every(period) == cron


# --- the sweep ---------------------------------------------------------------------


def _jobs(store: StateStore) -> list[tuple[int, str, list[int]]]:
    with store.engine.connect() as conn:
        return [
            (int(r.id), str(r.status), list(r.args["event_ids"]))
            for r in conn.execute(
                sa.text("SELECT id, status::text, args FROM procrastinate_jobs ORDER BY id")
            )
        ]


def test_the_sweep_gives_a_job_to_acked_events_whose_defer_never_happened(
    store: StateStore, app: App
) -> None:
    inbox = Inbox(store)
    orphans = _events(inbox, "C1", "C2")
    linked = defer_events(app, store, _events(inbox, "C3"), batch_size=200)
    assert sweep(app, store, T0 + SWEEP_GRACE / 2, 200) == 0  # may still be deferring
    assert sweep(app, store, T0 + SWEEP_GRACE * 2, 200) == 2
    jobs = _jobs(store)
    assert [args for _, _, args in jobs] == [[orphans[-1] + 1], orphans]
    assert jobs[0][0] == linked[0]
    assert sweep(app, store, T0 + SWEEP_GRACE * 2, 200) == 0  # both now have a live job


def test_the_sweep_defers_again_events_whose_job_is_gone_and_forgets_finished_ones(
    store: StateStore, app: App
) -> None:
    inbox = Inbox(store)
    ids = _events(inbox, "C1", "C2")
    (job,) = defer_events(app, store, ids, batch_size=200)
    with store.begin() as conn:  # the job failed with C1 still pending; C2 was finished
        conn.execute(
            sa.text("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = :j"), {"j": job}
        )
        conn.execute(webhook_inbox.update().where(webhook_inbox.c.id == ids[1]).values(status=DONE))
    assert sweep(app, store, T0 + SWEEP_GRACE * 2, 200) == 1
    assert _jobs(store)[-1][2] == [ids[0]]
    with store.engine.connect() as conn:
        links = dict(
            conn.execute(sa.select(task_event_jobs.c.event_id, task_event_jobs.c.job_id)).all()
        )
    assert set(links) == {ids[0]}
    assert links[ids[0]] != job


def test_jobs_hold_at_most_a_batch_of_events(store: StateStore, app: App) -> None:
    ids = _events(Inbox(store), *[f"C{i}" for i in range(5)])
    defer_events(app, store, ids, batch_size=2)
    assert [args for _, _, args in _jobs(store)] == [ids[:2], ids[2:4], ids[4:]]
    assert {status for _, status, _ in _jobs(store)} == {"todo"}


# --- the deferrer ---------------------------------------------------------------------


def test_the_deferrer_gathers_ids_into_batches_and_outlives_a_failed_defer() -> None:
    deferred: list[list[int]] = []
    failures = iter([True, False, False, False])

    def defer(ids: Sequence[int]) -> None:
        if next(failures):
            raise ConnectionError("queue down")
        deferred.append(list(ids))

    async def run() -> None:
        deferrer = Deferrer(defer, batch_size=3, window=0.05)
        deferrer.offer([1])
        await asyncio.sleep(0.2)  # lost: the sweep's business
        deferrer.offer([2, 3])
        deferrer.offer([4, 5])  # 2..5 exceed the batch: one defer, not split
        deferrer.offer([6])
        await deferrer.close()

    asyncio.run(run())
    assert deferred == [[2, 3, 4, 5], [6]]


# --- /metrics ------------------------------------------------------------------------


def test_the_queue_and_each_workers_throughput_are_read_from_the_store(
    store: StateStore, app: App
) -> None:
    defer_events(app, store, _events(Inbox(store), "C1", "C2", "C3"), batch_size=2)
    record_job(store, "host-a:1", TASK, 40, "done")
    record_job(store, "host-a:1", TASK, 2, "retry")  # the same job again: counted once
    record_job(store, "host-a:1", TASK, 0, "dead")
    record_job(store, "host-b:9", TASK, 7, "done")
    stats = queue_stats(store, datetime.now(UTC))
    assert stats.waiting == {TASK: 2}
    assert stats.failed == 0 and stats.running == 0
    assert stats.oldest_waiting_age_s >= 0
    assert stats.workers == [
        WorkerThroughput("host-a:1", TASK, 2, 42, 1),
        WorkerThroughput("host-b:9", TASK, 1, 7, 0),
    ]


def test_live_workers_are_counted_by_heartbeat_when_full_syncs_are_spread(
    store: StateStore,
) -> None:
    """As ``crmtier sync --full`` counts them (``sync.tasks.liveness``): a worker whose
    heartbeat is older than ``stalled_after`` is not alive; and not counted at all unless
    full syncs are spread (``alive_within`` None)."""
    with store.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO procrastinate_workers (last_heartbeat)"
                " VALUES (now()), (now() - interval '5 seconds'), (now() - interval '1 hour')"
            )
        )
    now = datetime.now(UTC)
    assert queue_stats(store, now, alive_within=timedelta(seconds=30)).live_workers == 2
    assert queue_stats(store, now).live_workers is None


def test_metrics_lines_name_the_queue_and_each_worker() -> None:
    stats = QueueStats(
        waiting={TASK: 3},
        running=1,
        oldest_waiting_age_s=12.5,
        failed=2,
        workers=[WorkerThroughput("w1", TASK, 4, 800, 1)],
        live_workers=0,
    )
    text = "\n".join(queue_lines(stats))
    assert f'crmtier_queue_depth{{task="{TASK}"}} 3' in text
    assert "crmtier_queue_oldest_waiting_age_seconds 12.5" in text
    assert "crmtier_queue_failed 2" in text
    assert f'crmtier_worker_customers_total{{kind="{TASK}",worker="w1"}} 800' in text
    assert f'crmtier_worker_jobs_total{{kind="{TASK}",worker="w1"}} 4' in text
    assert "# TYPE crmtier_workers_alive gauge\ncrmtier_workers_alive 0" in text
    unspread = "\n".join(queue_lines(replace(stats, live_workers=None)))
    assert "crmtier_workers_alive" not in unspread


# --- configuration --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "workers", "error"),
    [
        ('url = "sqlite:///x.db"', 'engine = "procrastinate"', "needs|PostgreSQL"),
        ("", 'engine = "procrastinate"', "PostgreSQL"),  # the default store is SQLite
        ('url = "sqlite:///x.db"', 'engine = "celery"', "engine"),
        (f'url = "{PG_URL}"', 'engine = "procrastinate"\nconcurrency = 0', "concurrency"),
        (f'url = "{PG_URL}"', 'engine = "procrastinate"', None),
        ('url = "sqlite:///x.db"', 'engine = "inline"', None),
    ],
)
def test_a_task_engine_without_postgresql_is_refused_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str, workers: str, error: str | None
) -> None:
    monkeypatch.setenv("SF_ID", "x")
    monkeypatch.setenv("SF_SECRET", "y")
    path = tmp_path / "crmtier.toml"
    path.write_text(f"{CRM_TABLE}\n[state]\n{state}\n\n[workers]\n{workers}\n")
    if error is None:
        assert load_config(path).workers.engine in ("inline", "procrastinate")
        return
    with pytest.raises(ConfigFileError, match=error) as caught:
        load_config(path)
    assert len(str(caught.value).splitlines()) == 1
    assert "[workers]" in str(caught.value)


def test_a_job_deferred_by_name_carries_the_events_on_the_webhooks_queue(
    store: StateStore, app: App
) -> None:
    ids = _events(Inbox(store), "C1")
    (job,) = defer_events(app, store, ids, batch_size=200)
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT task_name, queue_name FROM procrastinate_jobs WHERE id = :j"),
            {"j": job},
        ).one()
    assert (row.task_name, row.queue_name) == (TASK, QUEUE)


def test_the_registered_webhook_job_retries_pending_events_and_not_buried_ones(
    store: StateStore,
) -> None:
    crm = MemoryCrm()
    engine: Any = SimpleNamespace(
        connector=SimpleNamespace(fetch=crm.fetch),
        process_changes=Writer(),
        claims=CustomerClaims(store),
    )
    site = Worksite(store, engine, TaskSettings(), WorkerOptions(max_attempts=3), "w1")
    app = build_app(site, KINDS)
    strategy = app.tasks[TASK].retry_strategy
    assert strategy is not None
    job: Any = SimpleNamespace(attempts=0)
    assert strategy.get_retry_exception(EventsPending("x"), job) is not None
    assert strategy.get_retry_exception(EventsBuried("x"), job) is None
    assert strategy.get_retry_exception(EventsPending("x"), SimpleNamespace(attempts=3)) is None
    # a read-only CRM: the worker's backoff_cap, the job's attempts spent or not
    before = datetime.now(UTC)
    read_only = strategy.get_retry_decision(
        exception=EventsReadOnly("x"), job=SimpleNamespace(attempts=3)
    )
    assert read_only is not None and read_only.retry_at is not None
    assert 599 < (read_only.retry_at - before).total_seconds() <= 601
    assert {TASK, SWEEP, RETRY_STALLED} <= set(app.tasks)


def test_the_stalled_job_sweep_is_fetched_before_older_jobs(store: StateStore) -> None:
    """A survivor busy with older jobs that wait on a dead worker's (page units waiting
    their turn behind it, retried a second later) still reaches the sweep that frees it:
    the sweep is fetched first, whatever was deferred before it."""
    engine: Any = SimpleNamespace(  # no job runs here: only the queue's order is read
        connector=SimpleNamespace(fetch=None), process_changes=None, claims=CustomerClaims(store)
    )
    app = build_app(Worksite(store, engine, TaskSettings(), name="w1"), KINDS)

    async def fetch_order() -> list[str]:
        async with app.open_async():
            for seq in (1, 2):
                await app.configure_task(name=RETIER_TASK, queue=RETIER_QUEUE).defer_async(
                    run_id="r", seq=seq
                )
            await app.tasks[RETRY_STALLED].defer_async(timestamp=0)
            worker = await app.job_manager.register_worker()
            order = []
            while job := await app.job_manager.fetch_job(None, worker):
                order.append(job.task_name)
            return order

    assert asyncio.run(fetch_order()) == [RETRY_STALLED, RETIER_TASK, RETIER_TASK]
