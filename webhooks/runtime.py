"""The real-time path assembled: receiver app + inbox + worker over one sync engine.

``crmtier serve`` (and the end-to-end tests) build one ``Realtime`` from the parts the
composition root already has (state store, connector, sync engine, ``[webhooks]``
settings). The worker runs in a thread of the serving process, beside the scheduled sync
and any number of workers in other processes: they keep out of each other's way per
customer, through the engine's claims (``sync.claims``). The receiver is the ASGI app;
both share one ``Metrics`` so ``/metrics`` shows the receiver's and the worker's
outcomes side by side.

With a task engine (``TaskEngineHooks``) the worker runs instead in ``crmtier worker``
processes that take the jobs the receiver defers.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.applications import Starlette

from connectors.contract import Connector
from sync.engine import SyncEngine
from sync.inbox import Inbox
from sync.store import StateStore
from sync.tasks.stats import QueueStats
from sync.worker import InboxWorker, WorkerOptions
from webhooks.app import EVENTS_HELP, EVENTS_METRIC, create_app
from webhooks.deferrer import Deferrer
from webhooks.metrics import Metrics
from webhooks.settings import WebhooksSettings

log = logging.getLogger(__name__)


def worker_options(settings: WebhooksSettings) -> WorkerOptions:
    return WorkerOptions(
        batch_size=settings.batch_size,
        window=timedelta(milliseconds=settings.batch_window_ms),
        max_attempts=settings.max_attempts,
        lease=timedelta(seconds=settings.claim_lease_seconds),
        dedupe=timedelta(days=settings.dedupe_days),
    )


@dataclass(frozen=True)
class TaskEngineHooks:
    """How the receiver reaches a task engine (``[workers] engine = "procrastinate"``):
    ``defer`` gives committed events to it, ``queue`` reads its queue for ``/metrics``."""

    defer: Callable[[Sequence[int]], object]
    queue: Callable[[datetime], QueueStats]


class Realtime:
    def __init__(
        self,
        settings: WebhooksSettings,
        store: StateStore,
        connector: Connector,
        engine: SyncEngine,
        *,
        tasks: TaskEngineHooks | None = None,
    ) -> None:
        self.settings = settings
        self.tasks = tasks
        self.metrics = Metrics()
        self.inbox = Inbox(store)
        self.worker = InboxWorker(
            self.inbox,
            engine.connector.fetch,  # the engine's reads: with the overrides' CRM audit
            engine.process_changes,
            claims=engine.claims,
            options=worker_options(settings),
            owner=f"{socket.gethostname()}:{os.getpid()}:worker",
            on_outcome=self._count,
        )
        self.app: Starlette = create_app(
            settings,
            self.inbox,
            metrics=self.metrics,
            api_calls=lambda: connector.api_usage().calls,
            own_fields=frozenset(engine.writeback.fields.values()),
            crm=connector.capabilities.crm,
            deferrer=(
                Deferrer(
                    tasks.defer,
                    batch_size=settings.batch_size,
                    window=settings.batch_window_ms / 1000,
                )
                if tasks is not None
                else None
            ),
            queue=tasks.queue if tasks is not None else None,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _count(self, outcome: str, events: int) -> None:
        self.metrics.inc(EVENTS_METRIC, EVENTS_HELP, events, outcome=outcome)

    def start_worker(self) -> None:
        """Run the in-process worker, unless a task engine's workers take the events."""
        if self.tasks is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.worker.run, args=(self._stop,), name="inbox-worker", daemon=True
        )
        self._thread.start()

    def stop_worker(self, timeout: float = 60.0) -> None:
        """Finish the batch in progress; everything else stays in the inbox."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("worker did not finish its batch within %.0f s", timeout)
            self._thread = None
