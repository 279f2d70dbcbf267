"""The task engine wired from ``crmtier.toml`` (``[workers]``), for ``crmtier serve`` (which
defers) and ``crmtier worker`` (which runs jobs). Imported only when the engine is
Procrastinate, so the embedded default never loads it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from functools import partial

from procrastinate import App, PsycopgConnector

from connectors.contract import Connector, SharedLogin
from connectors.registry import plugin
from crmtier.config import CrmtierConfig
from sync.engine import SyncEngine
from sync.store import StateStore
from sync.tasks.engine import TASK_MIGRATIONS, TaskSettings, Worksite, build_app, conninfo
from sync.tasks.kinds import KINDS
from sync.tasks.logins import live_workers_on, login_fingerprint
from sync.tasks.retier_page import ProcrastinateUnits
from sync.tasks.stats import queue_stats
from sync.tasks.webhook_batch import defer_events
from webhooks.runtime import TaskEngineHooks, worker_options
from webhooks.settings import WebhooksSettings


def task_settings(config: CrmtierConfig, concurrency: int | None = None) -> TaskSettings:
    section = config.workers
    return TaskSettings(
        concurrency=concurrency or section.concurrency,
        stalled_after=timedelta(seconds=section.stalled_after_seconds),
        retry_base=section.retry_base_seconds,
        sweep_every=timedelta(seconds=section.sweep_every_seconds),
    )


def open_tasks(
    settings: TaskSettings,
    store: StateStore,
    engine: SyncEngine,
    webhooks: WebhooksSettings,
    name: str = "",
) -> tuple[App, Worksite]:
    """The app with every job kind registered over this process's parts; a worker it runs
    records the fingerprint of its CRM credentials with its heartbeat."""
    login = login_of(engine.connector, engine.key)  # the store's customers' pseudonym key
    site = Worksite(store, engine, settings, worker_options(webhooks), name, login)
    return build_app(site, KINDS), site


def login_of(connector: Connector, key: bytes) -> str | None:
    """The keyed fingerprint of the credentials ``connector`` logs in with, under ``key``
    (``sync.tasks.logins``); None for a CRM that caps no logins per credential."""
    if connector.capabilities.processes_per_credential is None:
        return None
    if not isinstance(connector, SharedLogin):
        return None
    return login_fingerprint(connector.login_secret(), key)


def hooks(app: App, site: Worksite, spread_full_sync: bool) -> TaskEngineHooks:
    """What the receiver needs of the engine: defer committed events, read the queue (and,
    when full syncs are spread over the workers, how many are alive to take them)."""
    batch = site.inbox_options.batch_size

    def defer(ids: Sequence[int]) -> list[int]:
        return defer_events(app, site.store, ids, batch)

    alive_within = site.settings.stalled_after if spread_full_sync else None
    return TaskEngineHooks(defer, partial(queue_stats, site.store, alive_within=alive_within))


def shared_login_warning(
    connector: Connector,
    store: StateStore,
    stalled_after: timedelta,
    *,
    worker: bool,
    login: str | None,
) -> str | None:
    """One line when this process, the live ``crmtier worker`` processes on its credentials
    and (starting a worker) the receiver exceed the processes the CRM lets share one set of
    credentials (``Capabilities.processes_per_credential``: each process logs in on its
    own, and a login past the CRM's cap invalidates the oldest; the connector's plugin
    cites the CRM's page); None within it, or for a CRM without such a limit. Workers are
    counted per set of credentials, by the keyed fingerprint ``login`` each one records
    with its heartbeat (``sync.tasks.logins``), so groups of workers given credentials of
    their own are counted apart; a worker with no fingerprint (an earlier crmtier) counts
    on every set, and a worker counts the receiver on its own set. A warning, not a
    refusal: the count is of processes alive now (a restarted worker may still be counted
    until its old heartbeat goes stale), and an invalidated login is renewed and the call
    repeated, so the processes slow each other down rather than stop. docs/operations.md."""
    cap = connector.capabilities.processes_per_credential
    if cap is None or login is None:
        return None
    alive = live_workers_on(store.engine, stalled_after, login)
    processes = alive + 1 + (1 if worker else 0)
    if processes <= cap:
        return None
    this = "this worker and the receiver" if worker else "this receiver"
    title = plugin(connector.capabilities.crm).title
    return (
        f"{title}: {processes} processes on this process's credentials ({alive} live crmtier "
        f"workers on them, {this}), more than the {cap} live logins {title} keeps on one set "
        "of credentials (each new login invalidates the oldest): they keep logging each other "
        f"out, so run at most {cap - 1} workers on one set, or give a group of workers "
        "credentials of their own (docs/operations.md)"
    )


@contextmanager
def page_units(store: StateStore) -> Iterator[ProcrastinateUnits]:
    """The coordinator's side of a re-tier spread over workers: defers a job per page
    unit into the store's queue (``crmtier worker`` processes run them)."""
    store.migrate("task_engine", TASK_MIGRATIONS)
    app = App(connector=PsycopgConnector(conninfo=conninfo(store)))
    with app.open():
        yield ProcrastinateUnits(app)
