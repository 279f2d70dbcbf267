"""The state store's database engine: SQLite (embedded default) or PostgreSQL, set up as
``sync.store`` relies on.

SQLite runs in WAL mode with ``synchronous=FULL`` (a committed bookmark survives power
loss, docs/targets.md R1) and every transaction starts with ``BEGIN IMMEDIATE``, so writers are
serialised up front instead of failing at commit; a new SQLite file is readable by its owner
alone. A PostgreSQL store on another host is reached only with ``sslmode=verify-full``
(docs/targets.md S4).
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from sync import jsontext
from sync.crypto import StoreError

#: both backends: no bound values in error messages (they can hold customer data), and the
#: JSON columns through ``sync.jsontext``
_ENGINE_OPTIONS: dict[str, Any] = {
    "hide_parameters": True,
    "json_serializer": jsontext.dumps,
    "json_deserializer": jsontext.loads,
}
_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    if url.database and url.database != ":memory:":
        _create_private(Path(url.database).expanduser())
    engine = sa.create_engine(url, connect_args={"timeout": 60}, **_ENGINE_OPTIONS)

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


def _create_private(db: Path) -> None:
    """Create a new SQLite store readable by its owner alone (0600; its directory 0700 when
    created here): it holds amounts, AML levels and the pseudonym key. SQLite gives the
    ``-wal`` and ``-shm`` files the database file's permissions. An existing file is left
    as it is; ``crmtier doctor`` flags one that others can read."""
    db.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def readable_by_others(url: str) -> str | None:
    """The SQLite store's path when its group or other users can read or write it."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    db = Path(str(parsed.database)).expanduser()
    try:
        return str(db) if db.stat().st_mode & 0o077 else None
    except (FileNotFoundError, NotADirectoryError):  # no file (yet, or ever: doctor says)
        return None


def create_engine(url: str) -> sa.Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    if parsed.get_backend_name() == "postgresql":
        _require_verified_tls(parsed)
        return sa.create_engine(parsed, pool_pre_ping=True, **_ENGINE_OPTIONS)
    raise StoreError(
        f"state.url: unsupported database {parsed.get_backend_name()!r}; "
        "use sqlite:///path or postgresql+psycopg://..."
    )


def _require_verified_tls(url: sa.URL) -> None:
    """A PostgreSQL server on another host is reached over TLS with its certificate and
    host name checked (``sslmode=verify-full``), from the URL or ``PGSSLMODE``; a Unix
    socket or the loopback needs none. The error never names the host."""
    host = url.host or _query(url, "host") or os.environ.get("PGHOST", "")
    if host.startswith("/") or host.lower() in _LOCAL_HOSTS:
        return
    sslmode = _query(url, "sslmode") or os.environ.get("PGSSLMODE", "")
    if sslmode != "verify-full":
        raise StoreError(
            "state.url: a PostgreSQL server on another host needs sslmode=verify-full "
            "(TLS with the certificate and host name checked); add "
            "?sslmode=verify-full&sslrootcert=/path/to/ca.pem to the URL"
        )


def _query(url: sa.URL, name: str) -> str:
    value = url.query.get(name, "")
    return str(value[0] if isinstance(value, tuple) else value)
