"""The task engine: Procrastinate on the state store's PostgreSQL.

Why Procrastinate (docs/operations.md has the measurement): its queue is a table in the
database the state store already uses, taken with ``SELECT ... FOR UPDATE SKIP LOCKED``,
so adding workers adds no infrastructure (no broker to run, secure and back up) and a job
is deferred with one committed insert. It supplies what the issue asks of an engine:
retries with exponential backoff up to a maximum number of attempts (``RetryStrategy``),
a visibility timeout (each worker beats a heartbeat; a job whose worker stopped beating
for ``stalled_after`` is handed to another worker by the periodic ``retry_stalled`` job
registered here), and dead letters (a job out of attempts stays ``failed`` with its
error, shown in ``/metrics``).

The queue's schema is applied as the store's ``task_engine`` component, so it is created
under the same PostgreSQL advisory lock as every other table (``sync/schema.py``): two
processes starting at once on a fresh store cannot race to create it. It is Procrastinate
3.10's schema; pyproject pins the minor version, and a later version's migrations
(shipped with Procrastinate) become the next steps of this component.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import attr
import sqlalchemy as sa
from procrastinate import App, PsycopgConnector, RetryStrategy
from procrastinate.jobs import Job
from procrastinate.retry import RetryDecision
from procrastinate.schema import SchemaManager

from sync.engine import SyncEngine
from sync.migration_steps import Migration
from sync.schema import metadata
from sync.store import StateStore
from sync.tasks.logins import LoginRecordingManager, create_logins_table
from sync.tasks.stats import record_job, task_worker_stats
from sync.worker import WorkerOptions

log = logging.getLogger(__name__)


def _apply_procrastinate_schema(conn: sa.Connection) -> None:
    """Procrastinate's schema script, run in the migration's transaction on the driver's
    connection (the script holds many statements, which psycopg runs in one simple-query
    call only without bound parameters)."""
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.execute(SchemaManager.get_schema())


TASK_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "Procrastinate 3.10 job queue", _apply_procrastinate_schema),
    Migration(
        2,
        "per-worker throughput of the task engine's jobs",
        lambda conn: metadata.create_all(conn, tables=[task_worker_stats], checkfirst=True),
    ),
    Migration(3, "each worker's CRM credentials, as a keyed fingerprint", create_logins_table),
)


@dataclass(frozen=True)
class TaskSettings:
    """``[workers]`` as the engine needs it (``crmtier/config.py`` validates the file)."""

    concurrency: int = 1
    #: visibility timeout: a job whose worker sent no heartbeat for this long runs again
    stalled_after: timedelta = timedelta(seconds=30)
    #: first retry wait in seconds; attempt n waits ``retry_base ** n`` (2: 2, 4, 8, ...)
    retry_base: int = 2
    #: how often pending webhook events whose job is gone are given one (webhook_batch)
    sweep_every: timedelta = timedelta(seconds=30)

    def retry(
        self,
        max_attempts: int,
        *,
        final: tuple[type[Exception], ...] = (),
        soon: tuple[type[Exception], ...] = (),
        later: tuple[type[Exception], ...] = (),
        later_in: timedelta = timedelta(minutes=10),
    ) -> RetryStrategy:
        """Exponential retries up to ``max_attempts`` runs; none after an exception of a
        ``final`` type (the job decided itself that more attempts cannot help); after a
        ``soon`` one, a retry in a second whatever the attempts (the job was not tried:
        its work was busy elsewhere); after a ``later`` one, a retry in ``later_in``
        whatever the attempts (the CRM refuses writes for hours: the exponential waits
        would spend the attempts in minutes, and the sweep would defer the job again)."""
        return _JobRetry(
            max_attempts=max_attempts,
            exponential_wait=self.retry_base,
            final=final,
            soon=soon,
            later=later,
            later_seconds=max(int(later_in.total_seconds()), 1),
        )

    @property
    def heartbeat_every(self) -> float:
        """Three heartbeats fit in the visibility timeout, so one late beat is no death."""
        return max(self.stalled_after.total_seconds() / 3, 0.5)


@attr.dataclass(kw_only=True)
class _JobRetry(RetryStrategy):
    final: tuple[type[Exception], ...] = ()
    soon: tuple[type[Exception], ...] = ()
    later: tuple[type[Exception], ...] = ()
    later_seconds: int = 600

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, self.final):
            return None
        if isinstance(exception, self.soon):
            return RetryDecision(retry_in={"seconds": 1})
        if isinstance(exception, self.later):
            return RetryDecision(retry_in={"seconds": self.later_seconds})
        return super().get_retry_decision(exception=exception, job=job)


def cron_every(period: timedelta) -> str:
    """A Procrastinate cron line (seconds in a sixth column) firing every ``period``,
    rounded to whole seconds under a minute and whole minutes above."""
    seconds = max(int(period.total_seconds()), 1)
    if seconds < 60:
        return f"* * * * * */{seconds}"
    return f"*/{min(seconds // 60, 59)} * * * *"


@dataclass
class Worksite:
    """What a job runs against in this process: the store, the sync engine over the CRM,
    and the name its throughput is counted under (``host:pid`` unless named)."""

    store: StateStore
    engine: SyncEngine
    settings: TaskSettings
    #: the inbox worker's batch size, lease and attempts (``[webhooks]``)
    inbox_options: WorkerOptions = field(default_factory=WorkerOptions)
    name: str = ""
    #: the keyed fingerprint of the CRM credentials this process logs in with, recorded
    #: beside its worker's heartbeat (``sync.tasks.logins``); None: a CRM without a cap
    login: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            self.name = f"{socket.gethostname()}:{os.getpid()}"

    def record(self, kind: str, customers: int, outcome: str) -> None:
        """Count one run of a ``kind`` job by this worker (``/metrics``): ``outcome``
        ``done`` or ``dead`` finishes the job, ``retry`` leaves it to the engine."""
        record_job(self.store, self.name, kind, customers, outcome)


def conninfo(store: StateStore) -> str:
    """The libpq URI of the store's database, for Procrastinate's own psycopg pool (the
    same server, user, TLS settings and ``options`` such as a ``search_path``)."""
    url = store.engine.url
    if url.get_backend_name() != "postgresql":
        raise ValueError("the task engine needs a PostgreSQL state store")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


#: how a job kind puts its tasks on the app: called once per process with its worksite
Register = Callable[[App, Worksite], None]

RETRY_STALLED = "crmtier.retry_stalled"
#: the stalled-job sweep is fetched before any other job that waits (Procrastinate takes
#: the highest priority first, then the oldest): otherwise a surviving worker busy with
#: older jobs that cannot finish without the dead worker's (page units waiting their
#: turn behind it, each retried in a second) never reaches the sweep that frees it
RETRY_STALLED_PRIORITY = 100


def build_app(site: Worksite, kinds: tuple[Register, ...]) -> App:
    """The Procrastinate app over ``site``'s store with every job kind registered, the
    queue's schema brought up to date first."""
    site.store.migrate("task_engine", TASK_MIGRATIONS)
    # its own pool beside the store's: one connection to listen for new jobs, the
    # heartbeat, job fetches and results; min 1 so an idle receiver holds one
    connector = PsycopgConnector(
        conninfo=conninfo(site.store), min_size=1, max_size=site.settings.concurrency + 4
    )
    app = App(connector=connector)
    if site.login is not None:
        app.job_manager = LoginRecordingManager(connector, site.login)
    for register in kinds:
        register(app, site)
    _register_retry_stalled(app, site.settings)
    return app


def _register_retry_stalled(app: App, settings: TaskSettings) -> None:
    """The visibility timeout: every few seconds one worker (the periodic deferrer lets
    one job per tick through, whatever the number of workers) hands the jobs of workers
    silent for ``stalled_after`` back to the queue."""

    @app.periodic(cron=cron_every(settings.stalled_after / 3), periodic_id="stalled")
    @app.task(
        name=RETRY_STALLED,
        queue="crmtier",
        queueing_lock=RETRY_STALLED,
        priority=RETRY_STALLED_PRIORITY,
    )
    async def retry_stalled(timestamp: int) -> None:
        jobs = await app.job_manager.get_stalled_jobs(
            seconds_since_heartbeat=settings.stalled_after.total_seconds()
        )
        for job in jobs:
            log.warning("task engine: job %s of a silent worker runs again", job.id)
            await app.job_manager.retry_job(job, retry_at=datetime.now(UTC))


def run_worker(app: App, site: Worksite) -> None:
    """Run one worker until SIGTERM or SIGINT, which let the jobs in progress finish
    (Procrastinate's graceful stop; a second signal aborts them)."""
    settings = site.settings

    async def work() -> None:
        async with app.open_async():
            await app.run_worker_async(
                name=site.name,
                concurrency=settings.concurrency,
                update_heartbeat_interval=settings.heartbeat_every,
                stalled_worker_timeout=settings.stalled_after.total_seconds(),
                delete_jobs="successful",
                install_signal_handlers=True,
            )

    asyncio.run(work())
