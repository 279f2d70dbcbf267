"""``crmtier doctor``: what a CRM admin runs while installing crmtier.

One checklist from two sources: the local set-up (config, secrets, policy, state store,
webhook settings, TLS, live workers) and the CRM itself through the connector's ``check()``
(connectivity and auth, mapped fields and their types, picklist values, write-back
fields, task and campaign settings, notification channels), plus the API allowance left.
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
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import make_url

from connectors.config_text import sentence, where
from connectors.contract import HOUSEHOLDS_CHECK, RIGHTS_CHECK, RIGHTS_DOC, Connector, SchemaCheck
from connectors.errors import ConfigError, ConnectorError
from connectors.plugin import ConnectorPlugin, FixContext, FixReport
from connectors.registry import plugin
from crmtier.commands.doctor_workers import check_workers
from crmtier.commands.options import config_option
from crmtier.config import CrmtierConfig, load_config
from sync import households, jsonlog
from sync.store import EncryptionPendingError, StateStore, StoreError, readable_by_others
from tiering_core.policy import PolicyError, load_policy
from webhooks.settings import WebhooksSettings, load_webhooks, settings_model

#: the config file cannot be used: the exit status of every command for that
EXIT_CONFIG = 2


def _ok(name: str, detail: str = "") -> SchemaCheck:
    return SchemaCheck(name, True, detail)


def _error(name: str, detail: str, fix: str) -> SchemaCheck:
    return SchemaCheck(name, False, detail, fix)


def _warn(name: str, detail: str, fix: str = "", ok: bool = True) -> SchemaCheck:
    return SchemaCheck(name, ok, detail, fix, "warning")


# --- the local set-up ---------------------------------------------------------------------


def check_policy(config: CrmtierConfig) -> SchemaCheck:
    try:
        policy = load_policy(config.policy_path())
    except (PolicyError, OSError) as exc:
        return _error(
            "policy",
            str(exc).splitlines()[0],
            "fix the file, then run: crmtier policy validate FILE",
        )
    return _ok("policy", policy.version)


def check_state(config: CrmtierConfig, fix: bool) -> SchemaCheck:
    """The state store answers; a missing SQLite file is created, and values are brought
    under ``[state] encryption_key``, only with ``--fix`` (or by the first sync), so a plain
    ``doctor`` does not rewrite the store."""
    try:
        url = config.state_url().get_secret_value()
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            db = Path(parsed.database)
            if not db.exists() and not fix:
                return _warn(
                    "state store",
                    f"{db} does not exist yet",
                    "created by the first sync, or now by crmtier doctor --fix",
                )
        cipher = config.state_cipher()
        store = StateStore.open(url, cipher=cipher, rewrite=fix, audit_keys=config.audit_keys())
        try:
            with store.engine.connect() as conn:
                backend = conn.dialect.name
        finally:
            store.close()
    except EncryptionPendingError as exc:
        return _warn(
            "state store",
            str(exc),
            "run crmtier doctor --fix (stop other crmtier "
            "processes first: the rewrite is one transaction)",
            ok=False,
        )
    except (StoreError, ConfigError, OSError) as exc:
        return _error("state store", str(exc), "check [state] url and that the database is up")
    except Exception as exc:  # a driver error: name it, never print the URL (it may hold a host)
        return _error(
            "state store", type(exc).__name__, "check [state] url, credentials and network"
        )
    at_rest = f"values encrypted (key id {cipher.key_id})" if cipher else "values not encrypted"
    return _ok("state store", f"{backend}, schema up to date, {at_rest}")


def check_state_at_rest(config: CrmtierConfig) -> list[SchemaCheck]:
    """The store's file is its owner's alone (it holds amounts, AML levels and the
    pseudonym key), and the audit chain is signed with a key kept outside the store."""
    checks = []
    try:
        exposed = readable_by_others(config.state_url().get_secret_value())
    except (ConfigError, ValueError):
        exposed = None  # the state store line already says what is wrong with the URL
    if exposed:
        checks.append(
            _warn(
                "state store file",
                f"{exposed} can be read or written by other users",
                f"chmod 600 {exposed} {exposed}-wal {exposed}-shm",
                ok=False,
            )
        )
    if config.state.audit_key is None:
        checks.append(
            _warn(
                "audit key",
                "the audit chain is signed with a key kept in the state store: "
                "whoever can read the store could edit a row and sign the chain again",
                "set [state] audit_key to a secret reference (docs/data-handling.md)",
            )
        )
    else:
        checks.append(_ok("audit key", "from [state] audit_key"))
    return checks


def check_webhooks(config: CrmtierConfig) -> tuple[SchemaCheck, WebhooksSettings | None]:
    try:
        settings = load_webhooks(config.webhooks)
    except (ValidationError, ValueError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else None
        problem = (
            f"{where(('webhooks', *first['loc']))}: "
            f"{sentence(first, settings_model().model_fields)}"
            if first
            else f"[webhooks]: {exc}"
        )
        return _error(
            "webhook settings",
            problem,
            f"fix [webhooks] in {config.config_file} (see docs/webhooks.md)",
        ), None
    crm = plugin(config.kind)
    if not _receives(crm, settings) and not settings.secrets:
        keys = ", ".join(crm.webhook.keys.model_fields) if crm.webhook else "secrets"
        return _warn(
            "webhook settings",
            f"no {crm.title} verification value configured",
            f"set [webhooks] {keys} to receive change notifications (see docs/webhooks.md)",
        ), settings
    return _ok("webhook settings", f"listen {settings.listen}"), settings


def check_transport(config: CrmtierConfig) -> SchemaCheck:
    """docs/targets.md S7: HTTPS with certificate verification to the CRM."""
    base = str(config.crm.get("base_url", ""))
    if not base.startswith("https://"):
        return _error(
            "TLS to the CRM",
            f"base_url is not https: {base or '(empty)'}",
            "use the CRM's https:// URL",
        )
    bundle = str(config.crm.get("ca_bundle") or "")
    if bundle and not (config.base_dir / bundle).expanduser().exists():
        return _error(
            "TLS to the CRM",
            f"ca_bundle {bundle} not found",
            "point crm.ca_bundle at the CA file, or remove it to use the system store",
        )
    return _ok("TLS to the CRM", "verified against " + (bundle or "the system trust store"))


# --- the CRM ------------------------------------------------------------------------------


def check_allowance(connector: Connector, api_share: float) -> SchemaCheck:
    usage = connector.api_usage()
    if not usage.allowance_limit:
        return _warn(
            "API allowance",
            "the CRM did not report its allowance to this connector",
            "check the CRM's API usage page before large backfills",
        )
    used = usage.allowance_used or 0
    left = usage.allowance_limit - used
    detail = f"{left:,} of {usage.allowance_limit:,} calls left today"
    if used >= usage.allowance_limit * api_share:
        return _warn(
            "API allowance",
            detail + f"; more than api_share {api_share:.0%} used",
            "runs will pause at the quota guard; schedule backfills off-peak",
            ok=False,
        )
    return _ok("API allowance", detail)


def check_rights(crm: str, crm_checks: list[SchemaCheck]) -> SchemaCheck | None:
    """docs/targets.md S6. Where the connector itself checks the integration user's rights its
    lines already say so; otherwise say plainly that they were not verified."""
    if any(c.name.startswith(RIGHTS_CHECK) for c in crm_checks):
        return None
    return _warn(
        RIGHTS_CHECK,
        f"not verified by the {crm} connector",
        f"make sure the user can read the mapped fields and edit only the tier fields "
        f"({RIGHTS_DOC})",
    )


# --- fixes --------------------------------------------------------------------------------


def _receives(crm: ConnectorPlugin, settings: WebhooksSettings) -> bool:
    """Whether ``[webhooks]`` configures the CRM's own notification route."""
    return (
        crm.webhook is not None and crm.webhook.endpoint(settings, settings.context()) is not None
    )


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


# --- output -------------------------------------------------------------------------------


def _glyph(check: SchemaCheck) -> str:
    if check.ok and check.severity == "warning" and (check.fix or check.detail):
        return "[yellow]![/yellow]"
    if check.ok:
        return "[green]✓[/green]"
    return "[red]✗[/red]" if check.severity == "error" else "[yellow]![/yellow]"


def print_checklist(console: Console, title: str, checks: list[SchemaCheck]) -> None:
    table = Table(title=title, title_justify="left", show_lines=False)
    for col in ("", "check", "detail", "fix"):
        table.add_column(col, overflow="fold")
    for c in checks:
        fix = "" if c.ok and not c.fix else c.fix
        table.add_row(_glyph(c), Text(c.name), Text(c.detail), Text(fix))
    console.print(table)


def is_error(check: SchemaCheck) -> bool:
    return not check.ok and check.severity == "error"


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
    local = [
        check_transport(config),
        check_policy(config),
        check_state(config, fix),
        *check_state_at_rest(config),
        *check_workers(config),
    ]
    webhook_check, settings = check_webhooks(config)
    local.append(webhook_check)
    print_checklist(console, f"local set-up ({config_path})", local)

    try:
        connector = config.connector()
    except (ConfigError, ConnectorError) as exc:
        crm = [
            _error(
                "connector configuration",
                str(exc),
                f"fix [crm] in {config_path} and the environment it refers to",
            )
        ]
        print_checklist(console, f"{config.kind}", crm)
        code = _finish(console, local + crm)
        sys.exit(EXIT_CONFIG if isinstance(exc, ConfigError) else code)
    try:
        crm = crm_checks(connector, config)
        title = f"{config.kind} ({config.crm.get('base_url', '')})"
        print_checklist(console, title, crm)
        if fix:
            rechecked = _fix(console, config, connector, settings, crm)
            if rechecked is not None:
                crm = rechecked
                print_checklist(console, f"{title} after --fix", crm)
    finally:
        connector.close()
    sys.exit(_finish(console, local + crm))


def crm_checks(connector: Connector, config: CrmtierConfig) -> list[SchemaCheck]:
    """The CRM's checklist: the connector's own checks, what households need when the
    policy turns them on, the API allowance once the CRM answers, and the rights line
    where the connector has none."""
    crm = list(connector.check())
    reachable = not any(is_error(c) for c in crm[:1])
    if reachable:
        crm += check_households(connector, config)
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
        return [_error(HOUSEHOLDS_CHECK, f"could not check: {exc}", "run crmtier doctor again")]
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
        checks = crm_checks(connector, config)
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
        console.print("nothing to fix")
    return checks if done else None


def _finish(console: Console, checks: list[SchemaCheck]) -> int:
    errors = sum(is_error(c) for c in checks)
    warnings = sum(c.severity == "warning" and (not c.ok or bool(c.fix)) for c in checks)
    verdict = "[red]not ready[/red]" if errors else "[green]ready[/green]"
    console.print(f"{verdict}: {errors} error(s), {warnings} warning(s)")
    return 1 if errors else 0
