"""``crmtier serve --config FILE``: webhook receiver + inbox worker + scheduled sync, one process.

Three activities share the process and one state store:

* uvicorn serves the receiver (``webhooks.app``) in the main thread: it verifies,
  persists durably and acks; it never calls the CRM;
* the inbox worker (a thread) re-fetches the customers notifications name, re-tiers them
  and writes back through the sync engine (``trigger=webhook``);
* the scheduled incremental sync (a thread) runs every ``[sync] every``: the safety net for
  notifications a CRM dropped (some drop a notification after a day of retries, some retry
  once);
* for a CRM where crmtier registers its own notification channel (its plugin's
  ``Webhook.channel``), a thread that keeps it registered and renewed.

The worker and the scheduled sync run at the same time; a customer is never written from
two different reads at once because each claims the customers it processes
(``sync.claims``): the worker leaves those the sync holds for a moment later, the sync
waits for those the worker holds, and an older read than one already processed is
never written.

With ``[workers] engine = "procrastinate"`` (PostgreSQL store) there is no worker thread:
the receiver defers a job per committed batch and ``crmtier worker`` processes, on this host
or others, run them (docs/operations.md).

Shutdown on SIGTERM or Ctrl-C: uvicorn stops accepting connections and finishes the
requests in flight (each either committed and acked, or not acked); then the worker
finishes its current batch and the scheduled sync its current run; unprocessed events stay
in the durable inbox for the next start. On start one JSON line is printed to stdout
(``{"listen": "http://HOST:PORT", "routes": [...]}``), so scripts can find a port chosen
with ``--listen 127.0.0.1:0``.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click
import uvicorn
from pydantic import ValidationError

from connectors.config_text import sentence, where
from connectors.contract import Connector
from connectors.errors import ConfigError
from connectors.registry import plugin
from crmtier.commands.options import config_errors, config_option, log_level_option
from crmtier.commands.sync import make_engine
from crmtier.config import CrmtierConfig, load_config
from sync import jsonlog
from sync.engine import AlreadyRunningError, SyncEngine
from sync.store import StateStore
from webhooks.app import configured_routes
from webhooks.connections import receiver_config
from webhooks.runtime import Realtime, TaskEngineHooks
from webhooks.settings import WebhooksSettings, load_webhooks, settings_model

if TYPE_CHECKING:
    from procrastinate import App

log = logging.getLogger("crmtier.serve")

#: how often the subscription channel is checked; it is renewed when it expires within 24 h.
CHANNEL_CHECK_EVERY = timedelta(hours=1)


@dataclass
class Parts:
    """What ``serve`` runs, opened from one config; ``close`` releases it all."""

    store: StateStore
    connector: Connector
    engine: SyncEngine
    settings: WebhooksSettings
    every: timedelta

    def close(self) -> None:
        self.connector.close()
        self.store.close()


def open_parts(config: CrmtierConfig) -> Parts:
    """State store, connector and sync engine for ``config``; raises ``ConfigError``.

    Unlike ``crmtier sync``'s ``open_engine`` (one engine per run), this engine lives as
    long as the process, so it is made without a fixed day (``make_engine``): a server
    running past midnight must not keep tiering "as of" its start day."""
    try:
        settings = load_webhooks(config.webhooks)
    except ValidationError as exc:
        err = exc.errors()[0]
        problem = sentence(err, settings_model().model_fields)
        raise ConfigError(
            f"{config.config_file}: {where(('webhooks', *err['loc']))}: {problem}"
        ) from None
    store = config.open_state_store()
    try:
        connector = config.connector()
        try:
            engine = make_engine(config, store, connector)
        except Exception:
            connector.close()
            raise
    except Exception:
        store.close()
        raise
    return Parts(store, connector, engine, settings, config.sync.interval())


class Periodic:
    """Runs ``job`` now and then every ``every`` in a daemon thread until stopped; a failing
    run is logged and the schedule goes on."""

    def __init__(self, name: str, job: Callable[[], None], every: timedelta) -> None:
        self.name = name
        self.job = job
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 300.0) -> None:
        """Let the run in progress finish, then stop."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.job()
            except Exception as exc:  # the schedule must outlive one bad run
                log.error("%s failed: %s: %s", self.name, type(exc).__name__, exc)
            self._stop.wait(self.every.total_seconds())


def scheduled_sync(engine: SyncEngine, every: timedelta) -> Periodic:
    """The incremental sync every ``[sync] every``, beside the inbox worker: the safety net
    for notifications a CRM dropped (docs/targets.md W13)."""

    def run() -> None:
        try:
            report = engine.run()
        except AlreadyRunningError:
            log.info("scheduled sync skipped: another process is syncing this stream")
            return
        log.info(
            "scheduled sync finished", extra={"run_id": report.run_id, "status": report.status}
        )

    return Periodic("scheduled-sync", run, every)


def channel_keeper(parts: Parts) -> Periodic | None:
    """For a CRM with subscription channels, keep ours registered and renewed before it
    expires (W11), pointing at ``[webhooks] public_url``; None when not applicable (the CRM
    has none, or the set-up lacks what it needs: ``doctor`` says what)."""
    settings, connector = parts.settings, parts.connector
    webhook = plugin(connector.capabilities.crm).webhook
    renewal = webhook.renewal(connector, settings, settings.public_url) if webhook else None
    if renewal is None or isinstance(renewal, str):
        return None

    def renew() -> None:
        log.info("%s", renewal())

    return Periodic("notification-channel", renew, CHANNEL_CHECK_EVERY)


@dataclass
class TaskEngine:
    """The task engine as ``serve`` uses it: an app opened to defer jobs, never to run
    them (``crmtier worker`` processes do, so a worker's crash or CPU never touches the
    receiver's acks)."""

    app: App
    hooks: TaskEngineHooks

    def close(self) -> None:
        self.app.close()


def task_engine(config: CrmtierConfig, parts: Parts) -> TaskEngine | None:
    """With ``[workers] engine = "procrastinate"``, the receiver defers a job for every
    committed batch of events instead of running the in-process worker."""
    if config.workers.engine == "inline":
        return None
    from crmtier.workers import hooks, open_tasks, shared_login_warning, task_settings

    settings = task_settings(config)
    app, site = open_tasks(settings, parts.store, parts.engine, parts.settings)
    crowded = shared_login_warning(
        parts.connector, parts.store, settings.stalled_after, worker=False, login=site.login
    )
    if crowded:
        log.warning("%s", crowded)
    app.open()
    return TaskEngine(app, hooks(app, site, config.workers.spread_full_sync))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    return sock


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@click.command(
    help="Webhook receiver + inbox worker + scheduled sync in one process. Prints one JSON "
    "line with the address it listens on; SIGTERM stops it cleanly, leaving unprocessed "
    "events in the inbox. Setup per CRM: docs/webhooks.md."
)
@config_option
@click.option(
    "--listen", help="HOST:PORT to listen on, overriding [webhooks] listen (port 0: any)."
)
@click.option(
    "--sync/--no-sync",
    "scheduled",
    default=True,
    show_default=True,
    help="Also run the scheduled incremental sync ([sync] every).",
)
@log_level_option
def command(config_path: Path, listen: str | None, scheduled: bool, log_level: str) -> None:
    jsonlog.configure(log_level.upper())
    with config_errors():
        config = load_config(config_path)
        parts = open_parts(config)
        tasks = task_engine(config, parts)
    settings = parts.settings
    if listen is not None:
        try:
            settings = settings.model_copy(update={"listen": listen})
            host, port = settings.host, int(listen.rpartition(":")[2])
        except ValueError:
            raise click.UsageError("--listen must be HOST:PORT") from None
    else:
        host, port = settings.host, settings.port
    sock = _bind(host, port)
    realtime = Realtime(
        settings,
        parts.store,
        parts.connector,
        parts.engine,
        tasks=tasks.hooks if tasks is not None else None,
    )
    background = [channel_keeper(parts)]
    if scheduled:
        background.append(scheduled_sync(parts.engine, parts.every))
    jobs = [job for job in background if job is not None]
    stopping = threading.Event()
    serving: list[uvicorn.Server] = []  # the server, once made

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # uvicorn installs its own handlers while serving and re-raises the signal after a
        # graceful shutdown; this handler then makes sure the process does not die before
        # the worker and the scheduled sync have stopped. A signal met after the check
        # below and before uvicorn's handlers are in place would otherwise be lost (the
        # receiver served on until killed): it asks the server to exit as uvicorn would.
        stopping.set()
        for server in serving:
            server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    bound = sock.getsockname()
    click.echo(
        json.dumps(
            {
                "listen": f"http://{_address(host, bound[1])}",
                "routes": list(configured_routes(settings)),
                "scheduled_sync": parts.every.total_seconds() if scheduled else None,
                "workers": config.workers.engine,
            }
        ),
        nl=True,
    )
    realtime.start_worker()
    for job in jobs:
        job.start()
    server = uvicorn.Server(
        receiver_config(
            realtime.app,
            settings,
            realtime.metrics,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=30,
            server_header=False,
        )
    )
    serving.append(server)
    try:
        if not stopping.is_set():
            server.run(sockets=[sock])
    finally:
        log.info("shutting down: receiver stopped; finishing the worker's batch")
        realtime.stop_worker()
        for job in jobs:
            job.stop()
        sock.close()
        if tasks is not None:
            tasks.close()
        parts.close()
        log.info("stopped")
