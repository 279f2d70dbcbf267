"""The task engine wired from ``crmtier.toml`` (``[workers]``), for ``crmtier serve`` (which
defers) and ``crmtier worker`` (which runs jobs). Imported only when the engine is
Procrastinate, so the embedded default never loads it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import partial

from procrastinate import App

from crmtier.config import CrmtierConfig
from sync.engine import SyncEngine
from sync.store import StateStore
from sync.tasks.engine import TaskSettings, Worksite, build_app
from sync.tasks.kinds import KINDS
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
    """The app with every job kind registered over this process's parts."""
    site = Worksite(store, engine, settings, worker_options(webhooks), name)
    return build_app(site, KINDS), site


def hooks(app: App, site: Worksite) -> TaskEngineHooks:
    """What the receiver needs of the engine: defer committed events, read the queue."""
    batch = site.inbox_options.batch_size

    def defer(ids: Sequence[int]) -> list[int]:
        return defer_events(app, site.store, ids, batch)

    return TaskEngineHooks(defer, partial(queue_stats, site.store))
