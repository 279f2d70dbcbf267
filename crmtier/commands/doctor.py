"""``crmtier doctor``: what a CRM admin runs while installing crmtier.

One checklist from two sources: the local set-up (``doctor_local.py``: config, secrets,
policy, state store, webhook settings, TLS, live workers) and the CRM itself through the
connector's ``check()`` (connectivity and auth, mapped fields and their types, picklist
values, write-back fields, task and campaign settings, notification channels), plus the API
allowance left.
Every failed line says how to fix it; any error makes the exit status 1, and a config it
cannot use at all (the file, or a ``[crm]`` table the connector refuses) makes it 2, as
for every command.

``--fix`` does what the CRM's API lets crmtier do, through the fixer of the CRM's connector
plugin (``connectors/plugin.py``; e.g. creating missing write-back fields through a metadata
API, registering a notification channel); locally it brings the state store's schema up to
date. The rest is printed as steps to do by hand, naming each one, with the plugin's note on
what its admins create in the CRM's own set-up pages.
The CRM checks are then run again: a "fixed" line is only printed for what the re-check
confirms, and the exit status follows the re-checked state.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from connectors.contract import HOUSEHOLDS_CHECK, RIGHTS_CHECK, RIGHTS_DOC, Connector, SchemaCheck
from connectors.errors import ConfigError, ConnectorError
from connectors.plugin import ConnectorPlugin, FixContext, FixReport
from connectors.registry import plugin
from crmtier.commands.doctor_lines import error, finish, is_error, ok, print_checklist, warn
from crmtier.commands.doctor_local import check_local
from crmtier.commands.doctor_withdrawals import check_withdrawals
from crmtier.commands.options import config_option
from crmtier.config import CrmtierConfig, load_config
from sync import households, jsonlog
from tiering_core.policy import PolicyError, load_policy
from webhooks.settings import WebhooksSettings

#: the config file cannot be used: the exit status of every command for that
EXIT_CONFIG = 2


# --- the CRM ------------------------------------------------------------------------------


def check_allowance(connector: Connector, api_share: float) -> SchemaCheck:
    usage = connector.api_usage()
    if not usage.allowance_limit:
        return warn(
            "API allowance",
            "the CRM did not report its allowance to this connector",
            "check the CRM's API usage page before large backfills",
        )
    used = usage.allowance_used or 0
    left = usage.allowance_limit - used
    detail = f"{left:,} of {usage.allowance_limit:,} calls left today"
    if used >= usage.allowance_limit * api_share:
        return warn(
            "API allowance",
            detail + f"; more than api_share {api_share:.0%} used",
            "runs will pause at the quota guard; schedule backfills off-peak",
            ok=False,
        )
    return ok("API allowance", detail)


def check_rights(crm: str, crm_checks: list[SchemaCheck]) -> SchemaCheck | None:
    """docs/targets.md S6. Where the connector itself checks the integration user's rights its
    lines already say so; otherwise say plainly that they were not verified."""
    if any(c.name.startswith(RIGHTS_CHECK) for c in crm_checks):
        return None
    return warn(
        RIGHTS_CHECK,
        f"not verified by the {crm} connector",
        f"make sure the user can read the mapped fields and edit only the tier fields "
        f"({RIGHTS_DOC})",
    )


# --- fixes --------------------------------------------------------------------------------


def run_fix(
    crm: ConnectorPlugin,
    connector: Connector,
    settings: WebhooksSettings | None,
    checks: list[SchemaCheck],
) -> FixReport:
    """The CRM plugin's fixer over this checklist; a connector or set-up error ends the
    attempt as one by-hand line."""
    if crm.fix is None:
        return FixReport()
    renewal = (
        crm.webhook.renewal(connector, settings, settings.public_url)
        if crm.webhook is not None and settings is not None
        else None
    )
    try:
        return crm.fix(FixContext(connector, checks, renewal))
    except (ConfigError, ConnectorError) as exc:
        return FixReport(by_hand=[str(exc)])


@click.command(name="doctor")
@config_option
@click.option(
    "--fix", is_flag=True, help="Create what the CRM's API allows; print what must be done by hand."
)
def command(config_path: Path, fix: bool) -> None:
    """Check (and with --fix, set up) a CRM org and the local set-up for crmtier."""
    jsonlog.configure("ERROR")  # retries and progress are noise here; failures are reported
    console = Console(soft_wrap=False)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        click.echo(f"crmtier doctor: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    local, settings = check_local(config, fix)
    print_checklist(console, f"local set-up ({config_path})", local)

    try:
        connector = config.connector()
    except (ConfigError, ConnectorError) as exc:
        crm = [
            error(
                "connector configuration",
                str(exc),
                f"fix [crm] in {config_path} and the environment it refers to",
            )
        ]
        print_checklist(console, f"{config.kind}", crm)
        code = finish(console, local + crm)
        sys.exit(EXIT_CONFIG if isinstance(exc, ConfigError) else code)
    try:
        title = f"{config.kind} ({config.crm.get('base_url', '')})"
        crm = _checks_or_unreachable(connector, config)
        print_checklist(console, title, crm)
        if fix:
            rechecked = _fix(console, config, connector, settings, crm)
            if rechecked is not None:
                crm = rechecked
                print_checklist(console, f"{title} after --fix", crm)
    finally:
        connector.close()
    sys.exit(finish(console, local + crm))


def _checks_or_unreachable(connector: Connector, config: CrmtierConfig) -> list[SchemaCheck]:
    """``crm_checks``, or one line when the CRM goes away part way through (no traceback)."""
    try:
        return crm_checks(connector, config)
    except ConnectorError as exc:
        return [error("CRM reachable", str(exc), "check the network and the CRM, then rerun")]


def crm_checks(connector: Connector, config: CrmtierConfig) -> list[SchemaCheck]:
    """The CRM's checklist: the connector's own checks, what households need when the
    policy turns them on, what withdrawing the tasks and memberships crmtier made needs
    with their kind switched off, the API allowance once the CRM answers, and the rights
    line where the connector has none."""
    crm = list(connector.check())
    reachable = not any(is_error(c) for c in crm[:1])
    if reachable:
        crm += check_households(connector, config)
        crm += check_withdrawals(connector, config)
        crm.append(check_allowance(connector, float(config.crm.get("api_share", 0.2))))
    rights = check_rights(plugin(config.kind).title, crm)
    return crm if rights is None else [*crm, rights]


def check_households(connector: Connector, config: CrmtierConfig) -> list[SchemaCheck]:
    """With ``[households] enabled`` in the policy, the connector's one-call check of what
    households need in the CRM (``sync.households.readiness``: the same line ``crmtier
    sync`` refuses to start on). A policy that does not load has its own error line."""
    try:
        policy = load_policy(config.policy_path())
    except (PolicyError, OSError):
        return []
    try:
        check = households.readiness(connector, policy)
    except ConnectorError as exc:
        return [error(HOUSEHOLDS_CHECK, f"could not check: {exc}", "run crmtier doctor again")]
    return [] if check is None else [check]


def _fix(
    console: Console,
    config: CrmtierConfig,
    connector: Connector,
    settings: WebhooksSettings | None,
    checks: list[SchemaCheck],
) -> list[SchemaCheck] | None:
    """Run the fixes and print what they did; the checklist as the CRM now answers when a
    fix changed it, else None."""
    crm = plugin(config.kind)
    report = run_fix(crm, connector, settings, checks)
    done, by_hand = list(report.fixed), list(report.by_hand)
    if done:  # say only what is still wrong, as the CRM now answers
        checks = _checks_or_unreachable(connector, config)
    schema = [
        f"{c.name}: {c.fix}" for c in checks if not c.ok and c.fix and c.name not in report.handled
    ]
    if schema and crm.by_hand:
        schema.append(crm.by_hand)
    by_hand += schema
    for line in done:
        console.print(f"[green]fixed[/green] {escape(line)}")
    for line in by_hand:
        console.print(f"[yellow]by hand[/yellow] {escape(line)}")
    if not done and not by_hand:
        console.print("nothing to fix in the CRM")  # the local lines above say what --fix made
    return checks if done else None
