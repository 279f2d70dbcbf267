"""``crmtier doctor``'s local set-up lines: what can be checked without the CRM.

The transport to the CRM (HTTPS, the CA file), the policy, the state store (reachable,
schema up to date, values encrypted, file private, audit key outside it), the live workers
(``doctor_workers.py``) and the webhook settings. Apart from the CRM's lines
(``doctor.py``) because none of them needs a connector: they are all printed even when the
``[crm]`` table cannot make one.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.engine import make_url

from connectors.config_text import sentence, where
from connectors.contract import SchemaCheck
from connectors.errors import ConfigError
from connectors.plugin import ConnectorPlugin
from connectors.registry import plugin
from crmtier.commands.doctor_lines import error, ok, warn
from crmtier.commands.doctor_workers import check_workers
from crmtier.config import CrmtierConfig
from crmtier.store_failures import StoreUnreachableError, opening
from sync.store import EncryptionPendingError, StateStore, StoreError, readable_by_others
from tiering_core.policy import PolicyError, load_policy
from webhooks.settings import WebhooksSettings, load_webhooks, settings_model


def check_local(
    config: CrmtierConfig, fix: bool
) -> tuple[list[SchemaCheck], WebhooksSettings | None]:
    """The local set-up's lines in the order printed, and the webhook settings when they
    load (``--fix`` renews the CRM's notification channel with them)."""
    checks = [
        check_transport(config),
        check_policy(config),
        check_state(config, fix),
        *check_state_at_rest(config),
        *check_workers(config),
    ]
    webhook_check, settings = check_webhooks(config)
    checks.append(webhook_check)
    return checks, settings


def check_policy(config: CrmtierConfig) -> SchemaCheck:
    try:
        policy = load_policy(config.policy_path())
    except (PolicyError, OSError) as exc:
        return error(
            "policy",
            str(exc).splitlines()[0],
            "fix the file, then run: crmtier policy validate FILE",
        )
    return ok("policy", policy.version)


def check_state(config: CrmtierConfig, fix: bool) -> SchemaCheck:
    """The state store answers; a missing SQLite file is created, and values are brought
    under ``[state] encryption_key``, only with ``--fix`` (or by the first sync), so a plain
    ``doctor`` does not rewrite the store."""
    try:
        url = config.state_url().get_secret_value()
        cipher = config.state_cipher()
        with opening(url):
            missing = _missing_file(url)
            if missing is not None and not fix:
                return _not_created(missing)
            store = StateStore.open(url, cipher=cipher, rewrite=fix, audit_keys=config.audit_keys())
        try:
            with store.engine.connect() as conn:
                backend = conn.dialect.name
        finally:
            store.close()
    except EncryptionPendingError as exc:
        return warn(
            "state store",
            str(exc),
            "run crmtier doctor --fix (stop other crmtier "
            "processes first: the rewrite is one transaction)",
            ok=False,
        )
    except StoreUnreachableError as exc:  # the line every command prints (store_failures)
        return error("state store", exc.detail, f"check {exc.hint}")
    except (StoreError, ConfigError) as exc:
        return error("state store", str(exc), "check [state] url and that the database is up")
    except Exception as exc:  # any other driver error: its type only (its text may quote SQL)
        return error(
            "state store", type(exc).__name__, "check [state] url, credentials and network"
        )
    at_rest = f"values encrypted (key id {cipher.key_id})" if cipher else "values not encrypted"
    made = f"created {missing}: " if missing is not None else ""  # --fix made it just now
    return ok("state store", f"{made}{backend}, schema up to date, {at_rest}")


def _missing_file(url: str) -> Path | None:
    """The SQLite store's file when it does not exist yet."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    db = Path(parsed.database)
    return None if db.exists() else db


def _not_created(db: Path) -> SchemaCheck:
    """A SQLite store not made yet: the first sync (or ``--fix``) makes it and its
    directories, unless a file stands where one of them would be (the sync would fail)."""
    blocker = next((p for p in db.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        detail = f"{db} cannot be created: {blocker} is not a directory"
        return error("state store", detail, "check [state] url")
    return warn(
        "state store",
        f"{db} does not exist yet",
        "created by the first sync, or now by crmtier doctor --fix",
    )


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
            warn(
                "state store file",
                f"{exposed} can be read or written by other users",
                f"chmod 600 {exposed} {exposed}-wal {exposed}-shm",
                ok=False,
            )
        )
    if config.state.audit_key is None:
        checks.append(
            warn(
                "audit key",
                "the audit chain is signed with a key kept in the state store: "
                "whoever can read the store could edit a row and sign the chain again",
                "set [state] audit_key to a secret reference (docs/data-handling.md)",
            )
        )
    else:
        checks.append(ok("audit key", "from [state] audit_key"))
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
        return error(
            "webhook settings",
            problem,
            f"fix [webhooks] in {config.config_file} (see docs/webhooks.md)",
        ), None
    crm = plugin(config.kind)
    if not _receives(crm, settings) and not settings.secrets:
        keys = ", ".join(crm.webhook.keys.model_fields) if crm.webhook else "secrets"
        return warn(
            "webhook settings",
            f"no {crm.title} verification value configured",
            f"set [webhooks] {keys} to receive change notifications (see docs/webhooks.md)",
        ), settings
    return ok("webhook settings", f"listen {settings.listen}"), settings


def check_transport(config: CrmtierConfig) -> SchemaCheck:
    """docs/targets.md S7: HTTPS with certificate verification to the CRM."""
    base = str(config.crm.get("base_url", ""))
    if not base.startswith("https://"):
        return error(
            "TLS to the CRM",
            f"base_url is not https: {base or '(empty)'}",
            "use the CRM's https:// URL",
        )
    bundle = str(config.crm.get("ca_bundle") or "")
    if bundle and not (config.base_dir / bundle).expanduser().exists():
        return error(
            "TLS to the CRM",
            f"ca_bundle {bundle} not found",
            "point crm.ca_bundle at the CA file, or remove it to use the system store",
        )
    return ok("TLS to the CRM", "verified against " + (bundle or "the system trust store"))


def _receives(crm: ConnectorPlugin, settings: WebhooksSettings) -> bool:
    """Whether ``[webhooks]`` configures the CRM's own notification route."""
    return (
        crm.webhook is not None and crm.webhook.endpoint(settings, settings.context()) is not None
    )
