"""What a schema migration step is, and the reusable DDL steps a component's migrations are
made of (create tables, add a column, widen a column to text).

Apart from ``sync/schema.py`` so that every component that keeps its own migrations (the
sync state, the webhook inbox, the task queue, the claims) and ``sync/migrate.py``, which
applies them, share one definition without importing the sync component's tables. Each
step looks before it changes anything, so running it again on a store that already has the
change is harmless (``sync/schema.py`` says why a step must be safe to repeat).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa


@dataclass(frozen=True)
class Migration:
    """One schema step of a component: ``apply`` runs in the transaction recording it."""

    version: int
    description: str
    apply: Callable[[sa.Connection], None]


def create_tables(*tables: sa.Table) -> Callable[[sa.Connection], None]:
    """``CREATE TABLE`` of each of ``tables`` that is not there yet."""

    def apply(conn: sa.Connection) -> None:
        tables[0].metadata.create_all(conn, tables=list(tables), checkfirst=True)

    return apply


def add_column(table: sa.Table, name: str) -> Callable[[sa.Connection], None]:
    """``ALTER TABLE ... ADD COLUMN`` unless it is there (a fresh store already has it)."""

    def apply(conn: sa.Connection) -> None:
        present = {c["name"] for c in sa.inspect(conn).get_columns(table.name)}
        if name not in present:
            column = table.c[name]
            ddl = column.type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{name}" {ddl}'))

    return apply


def widen_to_text(table: sa.Table, name: str) -> Callable[[sa.Connection], None]:
    """``varchar(n)`` -> ``text`` on PostgreSQL (idempotent); SQLite enforces no length."""

    def apply(conn: sa.Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text(f'ALTER TABLE {table.name} ALTER COLUMN "{name}" TYPE TEXT'))

    return apply
