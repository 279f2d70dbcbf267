"""The demo's run: sandbox → full sync → CRM edits via webhooks → incremental sync → report.

Everything is the product's real path: the sandbox speaks its CRM's wire format over
HTTPS on loopback, the connector is the one a bank would configure, the sync engine and
the webhook receiver + inbox worker are those of ``crmtier sync`` and ``crmtier serve``
(built by ``crmtier.commands.serve.open_parts`` from the ``crmtier.toml`` the sandbox
writes). Nothing reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from connectors.registry import default_mapping
from connectors.sandbox.base import Sandbox, open_sandbox
from crmtier.commands.serve import Parts, open_parts
from crmtier.config import load_config
from crmtier.demo.changes import CHANGES, UPGRADE, Change, pick
from crmtier.demo.households import (
    LiftedHousehold,
    households_on,
    lifted_household,
    primaries,
    read_links,
)
from crmtier.demo.loopback import LoopbackServer
from crmtier.demo.outcomes import Outcome, outcome, snapshot
from crmtier.report.build import build_report, write_report
from crmtier.report.collect import load_runs, stored_tiers
from crmtier.report.model import ReportData
from sync.engine import RunOptions, RunReport
from sync.inbox import DONE, webhook_inbox
from sync.schema import utc_text
from tiering_core.policy import load_policy
from tiering_core.rules.household import Link
from webhooks.runtime import Realtime

Say = Callable[[str], None]


class DemoError(RuntimeError):
    """The demo could not finish; the message is the one-line reason."""


@dataclass(frozen=True)
class Phase:
    """One step of the demo: the runs it made and its API calls against the minimum."""

    name: str
    runs: int
    read: int
    written: int
    api_used: int
    api_minimum: int
    status: str


@dataclass
class DemoResult:
    crm: str
    customers: int
    workdir: Path
    report_path: Path
    report: ReportData | None = None
    report_bytes: int = 0
    seconds: float = 0.0
    phases: list[Phase] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    webhook_events: int = 0
    tasks: int = 0
    memberships: int = 0
    writes: dict[str, int] = field(default_factory=dict)
    tasks_waiting: dict[str, int] = field(default_factory=dict)  # after the first sync
    # the first sync's tasks and memberships by rule and campaign: planned, and written
    planned: dict[str, int] = field(default_factory=dict)
    effects: dict[str, int] = field(default_factory=dict)
    #: a household lifting a member into private banking (crmtier/demo/households.py)
    household: LiftedHousehold | None = None


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set the secret values the sandbox's config refers to (``env:``), then restore."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _phase(name: str, report: RunReport) -> Phase:
    return Phase(
        name,
        1,
        report.counts.read,
        report.counts.written,
        report.api_total,
        sum(report.min_calls.values()),
        report.status,
    )


def _processed(realtime: Realtime, ids: set[str]) -> set[str]:
    """Which of ``ids`` the inbox worker has re-tiered (an event about them is done)."""
    query = sa.select(webhook_inbox.c.customer_id).where(
        webhook_inbox.c.customer_id.in_(sorted(ids)), webhook_inbox.c.status == DONE
    )
    with realtime.inbox.store.engine.connect() as conn:
        return set(conn.execute(query).scalars())


def _wait_processed(realtime: Realtime, ids: set[str], timeout: float) -> int:
    """Wait until the worker has re-tiered every edited customer and the inbox is drained
    and stays drained for a second (our own writes come back as notifications too, and are
    processed, as no-ops, before the next step). Returns the events received."""
    inbox = realtime.inbox
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        stats = inbox.stats(datetime.now(UTC))
        if stats.depth == 0 and _processed(realtime, ids) == ids:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 1.0:
                if stats.dead:
                    raise DemoError(f"{stats.dead} webhook event(s) could not be processed")
                return len(inbox.event_keys())
        else:
            quiet_since = None
        time.sleep(0.05)
    raise DemoError(
        f"webhook path: {len(_processed(realtime, ids))} of {len(ids)} edited customers "
        f"re-tiered and {inbox.stats(datetime.now(UTC)).depth} event(s) still queued after "
        f"{timeout:.0f} s"
    )


def _webhook_phase(
    sandbox: Sandbox, parts: Parts, say: Say, timeout: float, links: Sequence[Link]
) -> tuple[Phase, list[Outcome], int]:
    tiers_before = stored_tiers(parts.store, parts.engine.stream)
    mapped = set(default_mapping(sandbox.crm).mapping.fields)
    picked = pick(CHANGES, tiers_before, mapped, primaries(links))
    if not picked:
        raise DemoError("too few customers to make the demo's changes; use --customers 50 or more")
    realtime = Realtime(parts.settings, parts.store, parts.connector, parts.engine)
    server = LoopbackServer(realtime.app).start()
    realtime.start_worker()
    started_calls = parts.connector.api_usage().total
    first_run = datetime.now(UTC)
    try:
        sandbox.set_notification_target(
            f"{server.url}/webhooks/{sandbox.crm}", ca_bundle=sandbox.info().ca_bundle
        )
        before = snapshot(sandbox, [cid for _, cid in picked])
        say(f"editing {len(picked)} customers in the CRM; notifications go to {server.url}")
        for change, cid in picked:
            sandbox.edit_customer(cid, change.edit)
        received = _wait_processed(realtime, {cid for _, cid in picked}, timeout)
    finally:
        realtime.stop_worker()
        server.stop()
    used = parts.connector.api_usage().total - started_calls
    with parts.store.engine.connect() as conn:
        runs = [
            r
            for r in load_runs(conn, parts.engine.stream)
            if r.row["trigger"] == "webhook" and str(r.row["started_at"]) >= utc_text(first_run)
        ]
    phase = Phase(
        "webhooks",
        len(runs),
        sum(int(r.counts.get("read", 0)) for r in runs),
        sum(int(r.counts.get("written", 0)) for r in runs),
        used,
        sum(r.minimum_calls or 0 for r in runs),
        "succeeded" if all(r.row["status"] == "succeeded" for r in runs) else "with errors",
    )
    after = snapshot(sandbox, [cid for _, cid in picked])
    outcomes = [outcome(change, cid, before, after) for change, cid in picked]
    _check_upgrades(outcomes)
    return phase, outcomes, received


def _check_upgrades(outcomes: list[Outcome]) -> None:
    """The demo's own end-to-end assertion: every large deposit reached the CRM as the
    private tier through the webhook path."""
    missed = [o for o in outcomes if o.label == UPGRADE and o.value_after != "private"]
    if missed:
        raise DemoError(
            f"webhook path: {len(missed)} upgraded customer(s) still show "
            f"{missed[0].value_after!r} in the CRM instead of 'private'"
        )


def run_demo(
    crm: str,
    customers: int,
    output_dir: Path | None,
    *,
    report_path: Path,
    say: Say,
    webhook_timeout: float = 60.0,
) -> DemoResult:
    started = time.monotonic()
    # absolute: the sandbox writes its data dir into crmtier.toml, whose relative paths are
    # taken relative to the file itself
    workdir = (
        Path(output_dir).resolve() if output_dir else Path(tempfile.mkdtemp(prefix="crmtier-demo-"))
    )
    workdir.mkdir(parents=True, exist_ok=True)
    result = DemoResult(crm, customers, workdir, report_path)
    sandbox: Sandbox | None = None
    try:
        say(f"starting the {crm} sandbox with {customers:,} synthetic bank customers")
        sandbox = open_sandbox(crm, data_dir=workdir / "sandbox")
        sandbox.seed(customers)
        sandbox.start()
        text, env = sandbox.crmtier_config()
        config_path = workdir / "crmtier.toml"
        config_path.write_text(text, encoding="utf-8")
        with _environment(env):
            config = load_config(config_path)
            parts = open_parts(config)
            try:
                say("full sync: read every customer, tier, write back")
                full = parts.engine.run(RunOptions(full=True, actor="crmtier-demo"))
                if full.status not in ("succeeded", "completed_with_errors"):
                    raise DemoError(f"full sync {full.status}: {full.error or 'no detail'}")
                result.phases.append(_phase("full sync", full))
                result.writes = dict(full.counts.writes)
                result.tasks_waiting = dict(full.counts.tasks_waiting)
                result.planned = dict(full.counts.planned)
                result.effects = dict(full.counts.effects)
                policy = households_on(load_policy(config.policy_path()))
                ids = sorted(stored_tiers(parts.store, parts.engine.stream))
                links = read_links(parts.connector, ids, policy)  # before the phase's calls
                phase, result.outcomes, result.webhook_events = _webhook_phase(
                    sandbox, parts, say, webhook_timeout, links
                )
                result.phases.append(phase)
                say("incremental sync: the scheduled safety net")
                incremental = parts.engine.run(RunOptions(actor="crmtier-demo"))
                if incremental.status not in ("succeeded", "completed_with_errors"):
                    raise DemoError(
                        f"incremental sync {incremental.status}: {incremental.error or ''}"
                    )
                result.phases.append(_phase("incremental sync", incremental))
                result.household = lifted_household(
                    parts.connector,
                    links,
                    policy,
                    datetime.now(UTC).date(),
                    parts.engine.key,
                )
                with parts.store.engine.connect() as conn:
                    later = [
                        r.id for r in load_runs(conn, parts.engine.stream) if r.id != full.run_id
                    ]
            finally:
                parts.close()
            result.tasks = len(sandbox.tasks())
            result.memberships = len(sandbox.memberships())
            say("writing the report")
            result.report = build_report(
                config,
                run_id=full.run_id,
                migration_runs=later,
                with_feedback=True,
                notes=[
                    f"Demo on synthetic customers in a local {crm} sandbox. Migration shows "
                    "the changes made after the first sync (webhooks + incremental sync); DQ "
                    "issues and API usage are those of the first, full sync."
                ],
            )
            result.report_bytes = write_report(result.report, report_path)
    finally:
        if sandbox is not None:
            sandbox.stop()
        if output_dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    result.seconds = time.monotonic() - started
    return result


__all__ = ["Change", "DemoError", "DemoResult", "run_demo"]
