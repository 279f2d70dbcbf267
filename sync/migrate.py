"""Applying a component's migrations (``sync.schema`` defines the tables and the steps,
``sync.migration_steps`` what a step is).

Schema versions are kept per component in ``schema_version``; each step runs in the
transaction that records its version, one step per transaction, so a crash mid-upgrade
leaves the old version recorded and the upgrade is simply retried. Several processes
opening one store at once migrate it one after another (``_serialise_migrations``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from sync.crypto import StoreError
from sync.migration_steps import Migration
from sync.schema import metadata, now_text, schema_version


class SchemaTooNewError(StoreError):
    """The store was written by a newer crmtier; refusing to run rather than corrupt it
    (a store unusable as configured: every command says so in one line, exit 2)."""


#: first key of the PostgreSQL advisory lock that serialises migrations (the second is the
#: schema's name hashed, so stores in different schemas of one database don't wait on
#: each other); the value only has to be one no other application uses with this schema
_MIGRATION_LOCK = 0x63726D74  # "crmt"


def _serialise_migrations(conn: sa.Connection) -> None:
    """Make this transaction the only one migrating the store until it ends.

    Without it, two processes opening a fresh PostgreSQL store at the same moment both see
    no table and no version row, both ``CREATE TABLE`` and ``INSERT`` the version, and one
    fails with a ``UniqueViolation`` (``SELECT ... FOR UPDATE`` cannot lock a row that does
    not exist yet). ``pg_advisory_xact_lock`` waits for the other migrator to commit and is
    released with the transaction (PostgreSQL manual, "Advisory Lock Functions"), so the
    checks that follow see what it created. SQLite needs nothing: the store opens every
    transaction with ``BEGIN IMMEDIATE``, which already lets one writer in at a time."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key, hashtext(current_schema()))"),
            {"key": _MIGRATION_LOCK},
        )


def migrate(engine: sa.Engine, component: str, migrations: Sequence[Migration]) -> int:
    """Bring ``component`` up to its newest version, one step per transaction; returns it.
    Safe to run from several processes at once: each transaction holds the migration lock."""
    with engine.begin() as conn:
        _serialise_migrations(conn)
        metadata.create_all(conn, tables=[schema_version], checkfirst=True)
    newest = max((m.version for m in migrations), default=0)
    for step in sorted(migrations, key=lambda m: m.version):
        with engine.begin() as conn:
            _serialise_migrations(conn)
            current = conn.execute(
                sa.select(schema_version.c.version)
                .where(schema_version.c.component == component)
                .with_for_update()
            ).scalar()
            current = current or 0
            if current > newest:
                raise SchemaTooNewError(
                    f"state store: component {component!r} is at schema version {current}, "
                    f"this crmtier knows up to {newest}; upgrade crmtier"
                )
            if step.version <= current:
                continue
            step.apply(conn)
            values = {"version": step.version, "applied_at": now_text()}
            if current:
                conn.execute(
                    schema_version.update()
                    .where(schema_version.c.component == component)
                    .values(**values)
                )
            else:
                conn.execute(schema_version.insert().values(component=component, **values))
    with engine.connect() as conn:
        return version(conn, component)


def version(conn: sa.Connection, component: str) -> int:
    """The schema version ``component`` is at (0: none recorded)."""
    query = sa.select(schema_version.c.version).where(schema_version.c.component == component)
    return int(conn.execute(query).scalar() or 0)
