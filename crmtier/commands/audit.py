"""``crmtier audit``: verify and read the hash-chained audit trail (docs/targets.md S3).

``crmtier audit verify`` walks the whole chain and exits 1 naming the first row that was
edited, deleted or moved; ``crmtier audit show`` prints the newest rows, each customer by
pseudonym (as stored) and CRM record id, AML values hidden unless ``--show-restricted``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from crmtier.commands.listing import emit, format_option
from crmtier.commands.options import config_option
from crmtier.config import ConfigFileError, CrmtierConfig, load_config
from sync import audit
from sync.disclosure import Disclosure
from sync.schema import audit as audit_table
from sync.schema import customers
from sync.store import StateStore
from tiering_core.privacy import pseudonym


def _open(config_path: Path) -> tuple[CrmtierConfig, StateStore]:
    """The config and its store; a store it cannot reach or use ends the command as in
    every command (``crmtier.store_failures``), and a config it cannot use with exit 2,
    the unset variable of a ``[state] url = "env:..."`` included (found at the open)."""
    try:
        config = load_config(config_path)
        return config, config.open_state_store()
    except ConfigFileError as exc:
        click.echo(f"crmtier audit: {exc}", err=True)
        sys.exit(2)


@click.group(name="audit")
def command() -> None:
    """Inspect and verify the hash-chained audit trail."""


@command.command()
@config_option
def verify(config_path: Path) -> None:
    """Check every row's hash and link; exit 1 naming the first bad row."""
    _, store = _open(config_path)
    try:
        keys = store.audit_keys
        with store.begin() as conn:
            result = audit.verify(conn, keys)
    finally:
        store.close()
    if result.ok:
        click.echo(f"audit trail intact: {result.rows} rows")
        return
    click.echo(f"audit trail broken at row {result.first_bad_seq}: {result.problem}", err=True)
    sys.exit(1)


@command.command()
@config_option
@click.option("--customer", help="Only this customer: CRM record id or pseudonym (cust_...).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@format_option
@click.option(
    "--show-restricted",
    is_flag=True,
    help="Also show AML levels, AML reason codes and EDD tasks (compliance staff only).",
)
def show(
    config_path: Path, customer: str | None, limit: int, fmt: str, show_restricted: bool
) -> None:
    """Print the newest audit rows, each customer by pseudonym and CRM record id."""
    config, store = _open(config_path)
    disclosure = Disclosure.of(config.writeback_config().restricted, show_restricted)
    query = sa.select(audit_table).order_by(audit_table.c.seq.desc()).limit(limit)
    try:
        if customer:
            key = config.pseudonym_key() or store.pseudonym_key()
            refs = {customer, pseudonym(customer, key)}
            query = query.where(audit_table.c.customer_ref.in_(sorted(refs)))
        with store.begin() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
            crm_ids = _crm_ids(conn, {r["customer_ref"] for r in rows})
    finally:
        store.close()
    shown = [_listed(r, crm_ids, disclosure) for r in rows]
    listed = [r for r in shown if r is not None]
    emit(fmt, "audit trail (newest first)", _COLUMNS, listed)
    if len(listed) < len(shown):
        click.echo(
            f"{len(shown) - len(listed)} row(s) about EDD tasks not shown "
            "(--show-restricted shows them)",
            err=True,
        )


_COLUMNS = (
    "seq",
    "at",
    "customer",
    "crm_id",
    "event",
    "change",
    "reason_codes",
    "trigger",
    "run_id",
)


def _crm_ids(conn: sa.Connection, refs: set[str]) -> dict[str, str]:
    """Pseudonym -> CRM record id, for the customers the state store knows (an id is not
    personal data; the audit trail itself keeps only the pseudonym)."""
    if not refs:
        return {}
    query = sa.select(customers.c.pseudonym, customers.c.customer_id).where(
        customers.c.pseudonym.in_(sorted(refs))
    )
    return {str(ref): str(cid) for ref, cid in conn.execute(query)}


def _listed(
    row: dict[str, Any], crm_ids: dict[str, str], disclosure: Disclosure
) -> dict[str, Any] | None:
    """One audit row as listed, restricted values hidden; None for a row that is about a
    restricted task altogether."""
    new = row["new"]
    if isinstance(new, dict) and disclosure.hides_rule(new.get("rule")):
        return None
    old, new = disclosure.mapping(row["old"]), disclosure.mapping(new)
    return {
        "seq": row["seq"],
        "at": row["at"],
        "stream": row["stream"],
        "customer": row["customer_ref"],
        "crm_id": crm_ids.get(row["customer_ref"]),
        "event": row["event"],
        "old": old,
        "new": new,
        "change": _change(old, new),
        "reason_codes": ",".join(disclosure.reason_codes(row["reason_codes"])),
        "policy_version": row["policy_version"],
        "trigger": row["trigger"],
        "actor": row["actor"],
        "run_id": row["run_id"],
        "source_event_id": row["source_event_id"],
    }


def _change(old: Any, new: Any) -> str:
    """What changed, readably: the keys of a tier mapping whose value moved."""
    if isinstance(new, dict) and isinstance(old, dict | None):
        before = old or {}
        moved = [k for k in new if before.get(k) != new[k]]
        return "; ".join(f"{k} {before.get(k, '-')} -> {new[k]}" for k in moved)
    return f"{old} -> {new}"
