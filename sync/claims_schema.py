"""The ``customer_claims`` table (``sync.claims``) and its migrations.

Before the version guard covered every path it was the webhook worker's alone, in its own
table ``webhook_versions`` (the worker's component, step 1). ``_absorb_webhook_versions``
moves those rows into ``customer_claims`` and drops that table, in the claims component's
first step and again in the worker's second (whichever runs first on an existing store),
so no admitted version is forgotten; the worker's step 2 also makes an older crmtier
refuse the store ("upgrade crmtier") rather than guard with a table that is gone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from sync.migration_steps import Migration, add_column
from sync.schema import metadata

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

#: one row per customer ever claimed: who holds it (``owner`` NULL: nobody), until when
#: (epoch seconds of the database clock), the newest modstamp admitted for processing, and
#: the newest one a committed page decided from (``decided``: an admission whose page never
#: committed, its run killed or stopped, decided nothing)
customer_claims = sa.Table(
    "customer_claims",
    metadata,
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(120), nullable=True),
    sa.Column("expires_at", sa.Float(53), nullable=True),
    sa.Column("modstamp", sa.String(32), nullable=True),
    sa.Column("decided", sa.String(32), nullable=True),
)

#: ids per statement: well under SQLite's 32,766 bound parameters at 3 per row
CHUNK = 2000

#: the webhook worker's guard before it covered every path (its migration 1 created it)
_legacy = sa.MetaData()
webhook_versions = sa.Table(
    "webhook_versions",
    _legacy,
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("modstamp", sa.String(32), nullable=False),
)


def _absorb_webhook_versions(conn: sa.Connection) -> None:
    """Create ``customer_claims`` and move the webhook worker's admitted versions into it,
    dropping its table (safe to repeat: absent table, nothing to do; rows already here
    keep the newer of the two modstamps)."""
    metadata.create_all(conn, tables=[customer_claims], checkfirst=True)
    if not sa.inspect(conn).has_table("webhook_versions"):
        return
    rows = [dict(r._mapping) for r in conn.execute(sa.select(webhook_versions))]
    for start in range(0, len(rows), CHUNK):
        insert = upsert(conn)
        conn.execute(
            insert.values(rows[start : start + CHUNK]).on_conflict_do_update(
                index_elements=["customer_id"],
                set_={"modstamp": insert.excluded.modstamp},
                where=sa.or_(
                    customer_claims.c.modstamp.is_(None),
                    customer_claims.c.modstamp < insert.excluded.modstamp,
                ),
            )
        )
    webhook_versions.drop(conn)


#: the claims component's migrations, registered by ``CustomerClaims``. Append only.
CLAIMS_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "customer_claims: per-customer claims with a TTL and the newest modstamp admitted "
        "per customer (the webhook worker's webhook_versions rows moved here), so workers "
        "process different customers at once and an older view is never written",
        _absorb_webhook_versions,
    ),
    Migration(
        2,
        "customer_claims.decided: the modstamp a committed page decided from, so a version "
        "admitted by a run that died or stopped before its commit is not taken as decided",
        add_column(customer_claims, "decided"),  # a new store's step 1 created it already
    ),
)

#: the webhook worker's component: step 1 made its own version table, step 2 hands its
#: rows to this module's table (a store written by an older crmtier keeps every version
#: it admitted; an older crmtier refuses the store rather than miss them)
WORKER_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "per-customer processed modstamp for the webhook worker",
        lambda conn: _legacy.create_all(conn, tables=[webhook_versions], checkfirst=True),
    ),
    Migration(
        2,
        "webhook_versions moved into customer_claims: one version guard for every path",
        _absorb_webhook_versions,
    ),
)


def upsert(conn: sa.Connection) -> postgresql.Insert | sqlite.Insert:
    """An upsert-capable ``INSERT`` into ``customer_claims`` for the connection's backend.
    Each dialect is imported here, when its store asks: the engine has loaded its own, and
    a SQLite store's command never imports PostgreSQL's (~25 ms of start-up)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(customer_claims)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(customer_claims)
