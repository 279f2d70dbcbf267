"""``crmtier worker --config FILE``: run the task engine's jobs, on this host or any other.

Needs ``[workers] engine = "procrastinate"`` and a PostgreSQL state store: the receiver
(``crmtier serve``) defers a job per batch of acked webhook events, and every worker
process on the store takes jobs from the one queue (docs/operations.md shows a systemd
unit). Adding a host is starting one more of these; nothing else is configured.

On start one JSON line is printed to stdout (``{"worker": NAME, "concurrency": N,
"tasks": [...]}``), so scripts know it is up; before it, one warning line when more
processes would share the CRM's credentials than it keeps logins for on one
(``crmtier.workers.shared_login_warning``). SIGTERM (or Ctrl-C) finishes the jobs in
progress and stops; a second signal aborts them, and their jobs run again elsewhere once
this worker's heartbeat is ``stalled_after_seconds`` old, as after a crash.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from connectors.errors import ConfigError
from crmtier.commands.options import config_errors, config_option, log_level_option
from crmtier.commands.serve import open_parts
from crmtier.config import load_config
from sync import jsonlog

log = logging.getLogger("crmtier.worker")


@click.command(
    help="Run the task engine's jobs ([workers] engine = "
    '"procrastinate", PostgreSQL state store): webhook batches, and the pages of a full '
    "re-tier (crmtier sync --full) unless [workers] spread_full_sync = false. Start one "
    "per host or more; SIGTERM finishes the current job and stops. Prints one JSON line "
    "when it is up."
)
@config_option
@click.option(
    "--concurrency",
    type=click.IntRange(1, 32),
    help="Jobs run at once in this process, overriding [workers] concurrency.",
)
@click.option("--name", default="", help="Name in /metrics (default: HOST:PID).")
@log_level_option
def command(config_path: Path, concurrency: int | None, name: str, log_level: str) -> None:
    jsonlog.configure(log_level.upper())
    if log_level.upper() != "DEBUG":
        # a line per job start, end and periodic tick: failures (warning, error) are enough
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
    with config_errors():
        config = load_config(config_path)
        if config.workers.engine == "inline":
            raise ConfigError(
                f'{config_path}: [workers] engine: "inline" runs the worker inside crmtier '
                'serve; set engine = "procrastinate" (PostgreSQL state store) to run workers'
            )
        from crmtier.workers import open_tasks, shared_login_warning, task_settings
        from sync.tasks.engine import run_worker

        parts = open_parts(config)
        settings = task_settings(config, concurrency)
        app, site = open_tasks(settings, parts.store, parts.engine, parts.settings, name)
    crowded = shared_login_warning(
        parts.connector, parts.store, settings.stalled_after, worker=True, login=site.login
    )
    if crowded:
        log.warning("%s", crowded)
    click.echo(
        json.dumps(
            {
                "worker": site.name,
                "concurrency": settings.concurrency,
                "tasks": sorted(app.tasks),
            }
        )
    )
    try:
        run_worker(app, site)
    finally:
        parts.close()
