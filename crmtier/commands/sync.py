"""``crmtier sync``: pull changed customers, re-tier, write back; once or on a schedule.

Exit status (for cron and schedulers): 0 succeeded, 1 failed, 2 bad configuration (or a
spread full sync with no ``crmtier worker`` alive to take its pages), 3 completed with
errors (dead letters), 4 paused by the CRM's quota or a CRM read-only for maintenance
(resumes next run), 5 another process is already syncing this stream.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from connectors.calltally import CallTally, counting
from connectors.contract import Connector
from connectors.errors import ConnectorError
from connectors.override_audit import OverrideAuditReads
from crmtier.commands.listing import format_option, stdout_console
from crmtier.commands.options import LOG_LEVELS, config_option
from crmtier.commands.sync_dead_letters import dead_letters
from crmtier.commands.sync_gc import OldestGeneration, fewer_collections
from crmtier.commands.sync_output import ProgressView, report_json, summary
from crmtier.commands.sync_schedule import EXIT_CONFIG, EXIT_RUNNING, refused, schedule
from crmtier.config import CrmtierConfig, load_config
from crmtier.config_sections import parse_interval
from sync import households, jsonlog, write_readiness
from sync.disclosure import Disclosure
from sync.engine import (
    AlreadyRunningError,
    RunOptions,
    RunReport,
    SyncEngine,
    SyncSettings,
)
from sync.planner import action_kinds
from sync.retier import retier
from sync.state import Withdrawable, withdrawable
from sync.store import StateStore
from sync.taskbudget import task_limits
from sync.tasks.liveness import START_A_WORKER, live_workers
from tiering_core.models import AssessmentData, CustomerProfile
from tiering_core.policy import PolicyError
from tiering_core.rules.household import HouseholdLinks

if TYPE_CHECKING:
    from rich.console import Console


EXIT = {
    "succeeded": 0,
    "failed": 1,
    "completed_with_errors": 3,
    "paused_quota": 4,
}


def sync_settings(config: CrmtierConfig) -> SyncSettings:
    s = config.sync
    return SyncSettings(
        overlap=timedelta(seconds=s.overlap_seconds),
        tie_max=s.tie_set_max,
        record_retry_attempts=s.record_retry_attempts,
        record_retry_base=s.record_retry_base_seconds,
        write_concurrency=s.write_concurrency,
        lock_ttl=timedelta(seconds=s.lock_ttl_seconds),
    )


def make_engine(
    config: CrmtierConfig,
    store: StateStore,
    connector: Connector,
    *,
    as_of: date | None = None,
    on_progress: Any = None,
    only_fields: bool = False,
) -> SyncEngine:
    """The sync engine ``config`` describes, over an opened store and connector. With
    ``as_of`` every assessment is as of that day (one run); without it the day is taken at
    each assessment, so a long-lived ``crmtier serve`` past midnight tiers as of today.
    A CRM prerequisite of households or of an enabled write kind that is missing refuses
    the start (``ConfigError``: exit 2), before any read or write; ``only_fields`` (a run
    that writes tier fields only) asks none of the write kinds', except what closing the
    sales tasks and removing the memberships crmtier made needs while the store holds any
    (``write_readiness.require_withdrawals``: a sanctions hit withdraws them in any run)."""
    from tiering_core.engine import decide_batch
    from tiering_core.policy import load_policy

    policy = load_policy(config.policy_path())
    writeback = config.writeback_config()
    with counting(CallTally()) as start:  # reported with the engine's first run
        households.require(connector, policy)  # a missing CRM prerequisite: refuse to start
        write_readiness.require(
            connector, writeback, only_fields=only_fields, held=_held(store, config.stream)
        )
    kinds = action_kinds(writeback)

    def assess(
        profiles: Sequence[CustomerProfile], households: HouseholdLinks | None = None
    ) -> Sequence[AssessmentData]:
        day = as_of or datetime.now(UTC).date()
        return decide_batch(profiles, policy, day, kinds=kinds, households=households)

    return SyncEngine(
        store,
        OverrideAuditReads(connector),  # overrides' maker and checker (docs/overrides.md)
        writeback,
        assess,
        stream=config.stream,
        pseudonym_key=config.pseudonym_key() or store.pseudonym_key(),
        settings=sync_settings(config),
        on_progress=on_progress,
        policy_version=policy.version,
        task_limits=task_limits(policy),
        policy=policy,  # households (sync.households)
        start_calls=start.counts(),
    )


def _held(store: StateStore, stream: str) -> write_readiness.HeldReader:
    """What the store holds that a sanctions hit withdraws, read when the gate asks."""

    def read(tasks: bool) -> Withdrawable:
        with store.begin() as conn:
            return withdrawable(conn, stream, tasks=tasks)

    return read


@contextmanager
def open_engine(
    config: CrmtierConfig,
    *,
    as_of: date | None = None,
    on_progress: Any = None,
    only_fields: bool = False,
) -> Iterator[SyncEngine]:
    """Everything one sync run needs, built from the config: state store, connector,
    policy, the day it assesses as of (``as_of`` or today)."""
    store = config.open_state_store()
    try:
        connector = config.connector()
        try:
            day = as_of or datetime.now(UTC).date()
            yield make_engine(
                config,
                store,
                connector,
                as_of=day,
                on_progress=on_progress,
                only_fields=only_fields,
            )
        finally:
            connector.close()
    finally:
        store.close()


def _run_once(
    config: CrmtierConfig, options: RunOptions, as_json: bool, quiet: bool, show_restricted: bool
) -> int:
    view = None if (as_json or quiet) else _progress_view()
    try:
        if _spreads(config, options):  # refused before the start checks' CRM calls
            _require_live_worker(config)
        with (
            fewer_collections(),
            open_engine(
                config,
                as_of=options.as_of,
                on_progress=OldestGeneration(view.update if view else None),
                only_fields=options.only_fields,
            ) as engine,
        ):
            if view:
                with view.progress:
                    report = _run(config, engine, options)
            else:
                report = _run(config, engine, options)
    except AlreadyRunningError as exc:
        _stderr_console().print(f"crmtier sync: {exc}")
        return EXIT_RUNNING
    except NoLiveWorkerError as exc:  # a schedule tries again at its next tick
        click.echo(f"crmtier sync: {exc}", err=True)
        return EXIT_CONFIG
    disclosure = Disclosure.of(config.writeback_config().restricted, show_restricted)
    if as_json:
        click.echo(report_json(report, disclosure))
    elif not quiet:
        summary(stdout_console(), report, options.dry_run, disclosure, options.only_fields)
    return EXIT_CONFIG if report.config_error else EXIT[report.status]


def _stderr_console() -> Console:
    """rich on stderr, made (and rich imported) only when a run draws on it: a ``--json``
    or ``--quiet`` run never does."""
    from rich.console import Console

    return Console(file=sys.stderr)


def _progress_view() -> ProgressView | None:
    """The progress bar, when stderr is a terminal to draw it on."""
    err = _stderr_console()
    return ProgressView(err) if err.is_terminal else None


class NoLiveWorkerError(Exception):
    """A spread full sync would wait for workers that are not there: refused at start."""


def _run(config: CrmtierConfig, engine: SyncEngine, options: RunOptions) -> RunReport:
    """One run: a full re-tier goes to the task engine's workers a page a job when
    ``[workers] engine = "procrastinate"`` and ``spread_full_sync`` is not switched off
    (``sync.retier``), else it runs here."""
    if not _spreads(config, options):
        return engine.run(options)
    from crmtier.workers import page_units

    with page_units(engine.store) as executor:
        return retier(engine, executor, options)


def _spreads(config: CrmtierConfig, options: RunOptions) -> bool:
    """Whether this run is a full re-tier spread over workers: a full sync that writes and
    reads everyone, with ``spread_full_sync`` on (which holds only with engine =
    "procrastinate": the config refuses it else)."""
    full = options.full and not options.dry_run and options.limit is None
    return full and config.workers.spread_full_sync


def _require_live_worker(config: CrmtierConfig) -> None:
    """Refuse a spread full sync before it calls the CRM, takes the stream or stores a
    page when no worker is alive (``sync.tasks.liveness``): it would otherwise wait out the
    stall time (``sync.retier``) and fail with the bookmark where it was. Workers that die
    after this are met by that stall time, as before."""
    stalled_after = timedelta(seconds=config.workers.stalled_after_seconds)
    store = config.open_state_store()
    try:
        alive = live_workers(store.engine, stalled_after)
    finally:
        store.close()
    if alive == 0:
        raise NoLiveWorkerError(
            "no crmtier worker is alive to take the pages of a spread full sync "
            f"(no heartbeat in {stalled_after.total_seconds():.0f} s): {START_A_WORKER}"
        )


def _interval(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """``--every`` read as it is parsed: a value that is no interval is a usage error
    naming the option (exit 2), as ``--limit 0`` is, not a ``ValueError`` for the command
    to guess at. A bare ``--every`` ("") stays "": ``[sync] every`` (read with the config)."""
    if not value:
        return value
    try:
        return parse_interval(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command(
    name="sync",
    epilog="Exit status: 0 done, 1 failed, 2 a configuration to fix, 3 done with dead "
    "letters, 4 paused by the CRM's quota or a CRM read-only for maintenance (resumes "
    "next run), 5 another run of this "
    "stream holds its lease (nothing done: try next time).",
)
@config_option
@click.option("--dry-run", is_flag=True, help="Read and plan; write nothing, show the plan.")
@click.option("--full", is_flag=True, help="Ignore the bookmark: re-tier every customer.")
@click.option("--limit", type=click.IntRange(min=1), help="Stop after reading N customers.")
@click.option(
    "--only",
    type=click.Choice(["fields"]),
    help="Stage a first sync: write tier fields and reasons only; the next run makes "
    "the tasks and campaign memberships.",
)
@click.option(
    "--every",
    help="Run on a schedule (e.g. 15m); default from [sync] every.",
    is_flag=False,
    flag_value="",
    default=None,
    callback=_interval,
)
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), help="Assessment date (default today).")
@click.option(
    "--trigger",
    type=click.Choice(["sync", "manual", "backfill"]),
    default="sync",
    show_default=True,
    help="Recorded in the run and the audit trail.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run report as one JSON line.")
@format_option
@click.option(
    "--show-restricted",
    is_flag=True,
    help="Show AML levels and EDD tasks in a dry run's plan (compliance staff only).",
)
@click.option("--quiet", is_flag=True, help="No progress or summary (logs only).")
@click.option(
    "--log-level",
    default="WARNING",
    show_default=True,
    type=LOG_LEVELS,
)
@click.option("--dead-letters", "show_dead", is_flag=True, help="List open dead letters and exit.")
@click.option(
    "--customer", help="With --dead-letters: only this customer (CRM record id or pseudonym)."
)
@click.option(
    "--ack",
    "ack",
    multiple=True,
    help="Acknowledge a dead letter by id (or 'all'): stop retrying it.",
)
def command(
    config_path: Path,
    dry_run: bool,
    full: bool,
    limit: int | None,
    only: str | None,
    every: timedelta | str | None,
    as_of: datetime | None,
    trigger: str,
    as_json: bool,
    fmt: str,
    show_restricted: bool,
    quiet: bool,
    log_level: str,
    show_dead: bool,
    customer: str | None,
    ack: tuple[str, ...],
) -> None:
    """Pull changed customers from the CRM, re-tier them, write back what changed."""
    jsonlog.configure(log_level)
    as_json = as_json or fmt == "json"
    try:
        config = load_config(config_path)
        if show_dead or ack:
            sys.exit(dead_letters(config, ack, customer, "json" if as_json else "table"))
        options = RunOptions(
            trigger=trigger,  # type: ignore[arg-type]
            dry_run=dry_run,
            full=full,
            limit=limit,
            actor=f"crmtier-{trigger}",
            as_of=as_of.date() if as_of else None,
            only_fields=only == "fields",
            keep_outcomes=False,  # the command shows counts, not a line per customer
        )
        if every is None:
            sys.exit(_run_once(config, options, as_json, quiet, show_restricted))
        interval = every if isinstance(every, timedelta) else config.sync.interval()
        seconds = interval.total_seconds()
        tick = partial(_run_once, config, options, as_json, quiet, show_restricted)
        sys.exit(schedule(tick, seconds))
    except PolicyError as exc:  # the policy file, read again by each run (make_engine)
        click.echo(f"crmtier sync: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    except ConnectorError as exc:  # ConfigError too: crmtier.toml or the CRM's set-up (2)
        sys.exit(refused(exc))
    # a state store it cannot reach (1) or use (2): one line, as every command (crmtier.cli);
    # anything else (a ValueError included: a bug, an answer the CRM gave that crmtier could
    # not read) is no configuration problem and keeps its traceback (exit 1)
