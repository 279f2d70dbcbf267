"""The state store: one SQLAlchemy engine over SQLite (embedded default) or PostgreSQL.

SQLite runs in WAL mode with ``synchronous=FULL`` (a committed bookmark survives power
loss, reference R1) and every transaction starts with ``BEGIN IMMEDIATE``, so writers are
serialised up front instead of failing at commit; PostgreSQL serialises the few contended
rows (audit head, locks) with ``SELECT ... FOR UPDATE``. Everything else in ``sync/`` takes a
``Connection`` inside a transaction from here, so several facts (writes, state, audit,
bookmark) always commit together.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from sync import schema
from sync.schema import Migration, locks, meta, now_text, utc_text


class StoreError(RuntimeError):
    """The state store cannot be opened or used as configured."""


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_engine(url: str) -> sa.Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(parsed, pool_pre_ping=True)
    raise StoreError(
        f"state.url: unsupported database {parsed.get_backend_name()!r}; "
        "use sqlite:///path or postgresql+psycopg://..."
    )


class StateStore:
    """Owns the engine; opens transactions; keeps the store's meta facts and leases."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> StateStore:
        store = cls(create_engine(url))
        store.migrate("sync", schema.SYNC_MIGRATIONS)
        return store

    def migrate(self, component: str, migrations: tuple[Migration, ...]) -> int:
        """Other components (the webhook inbox) bring their own tables up to date here."""
        return schema.migrate(self.engine, component, migrations)

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()

    # --- meta -----------------------------------------------------------------------

    def meta_get(self, conn: sa.Connection, key: str, *, for_update: bool = False) -> str | None:
        query = sa.select(meta.c.value).where(meta.c.key == key)
        if for_update:
            query = query.with_for_update()
        value = conn.execute(query).scalar()
        return None if value is None else str(value)

    def meta_put(self, conn: sa.Connection, key: str, value: str) -> None:
        updated = conn.execute(meta.update().where(meta.c.key == key).values(value=value))
        if not updated.rowcount:
            conn.execute(meta.insert().values(key=key, value=value))

    def pseudonym_key(self) -> bytes:
        """The key customers are pseudonymised with when ``[privacy] pseudonym_key`` is not
        configured: generated once, kept in the store, so pseudonyms stay stable."""
        with self.begin() as conn:
            existing = self.meta_get(conn, "pseudonym_key", for_update=True)
            if existing is None:
                existing = secrets.token_hex(32)
                conn.execute(meta.insert().values(key="pseudonym_key", value=existing))
        return bytes.fromhex(existing)

    # --- leases ---------------------------------------------------------------------

    def acquire_lock(self, name: str, *, ttl: timedelta = timedelta(minutes=10)) -> bool:
        """Take the named lease unless a live holder has it. A holder on this host whose
        process is gone (SIGKILL, power cut) is taken over at once; elsewhere the lease
        expires after ``ttl`` unless renewed."""
        owner = _owner()
        host, pid = socket.gethostname(), os.getpid()
        expires = utc_text(datetime.now(UTC) + ttl)
        try:
            with self.begin() as conn:
                row = conn.execute(
                    sa.select(locks).where(locks.c.name == name).with_for_update()
                ).first()
                if row is None:
                    conn.execute(
                        locks.insert().values(
                            name=name, owner=owner, host=host, pid=pid, expires_at=expires
                        )
                    )
                    return True
                if row.owner != owner and not _lease_is_dead(row):
                    return False
                conn.execute(
                    locks.update()
                    .where(locks.c.name == name)
                    .values(owner=owner, host=host, pid=pid, expires_at=expires)
                )
                return True
        except sa.exc.IntegrityError:
            return False  # another process inserted the lease first

    def renew_lock(self, name: str, *, ttl: timedelta = timedelta(minutes=10)) -> None:
        with self.begin() as conn:
            conn.execute(
                locks.update()
                .where(locks.c.name == name, locks.c.owner == _owner())
                .values(expires_at=utc_text(datetime.now(UTC) + ttl))
            )

    def release_lock(self, name: str) -> None:
        with self.begin() as conn:
            conn.execute(locks.delete().where(locks.c.name == name, locks.c.owner == _owner()))


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _lease_is_dead(row: Any) -> bool:
    if row.expires_at < now_text():
        return True
    if row.host != socket.gethostname():
        return False
    try:
        os.kill(int(row.pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
