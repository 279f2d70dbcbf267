"""``crmtier audit``: verify and read the hash-chained audit trail (reference S3).

``crmtier audit verify`` walks the whole chain and exits 1 naming the first row that was
edited, deleted or moved; ``crmtier audit show`` prints the newest rows (customers by
pseudonym, as stored).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from crmtier.config import ConfigFileError, load_config
from sync import audit
from sync.schema import audit as audit_table
from sync.store import StateStore, StoreError


def _open(config_path: Path) -> StateStore:
    try:
        return load_config(config_path).open_state_store()
    except (ConfigFileError, StoreError) as exc:
        click.echo(f"crmtier audit: {exc}", err=True)
        sys.exit(2)


@click.group(name="audit")
def command() -> None:
    """Inspect and verify the hash-chained audit trail."""


@command.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True)
def verify(config_path: Path) -> None:
    """Check every row's hash and link; exit 1 naming the first bad row."""
    store = _open(config_path)
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
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True)
@click.option("--customer", help="Only this customer (pseudonym, as in logs).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
def show(config_path: Path, customer: str | None, limit: int) -> None:
    """Print the newest audit rows."""
    store = _open(config_path)
    query = sa.select(audit_table).order_by(audit_table.c.seq.desc()).limit(limit)
    if customer:
        query = query.where(audit_table.c.customer_ref == customer)
    try:
        with store.begin() as conn:
            rows = list(conn.execute(query))
    finally:
        store.close()
    table = Table(title="audit trail (newest first)")
    for col in ("seq", "at", "customer", "event", "old -> new", "reasons", "trigger", "run"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r.seq),
            r.at,
            r.customer_ref,
            r.event,
            f"{r.old} -> {r.new}",
            ",".join(r.reason_codes[:4]),
            r.trigger,
            r.run_id[:8],
        )
    Console(soft_wrap=True).print(table)
