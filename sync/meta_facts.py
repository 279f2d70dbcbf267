"""The store's small key/value facts (the ``meta`` table: the generated pseudonym key, the
audit chain head), each written once by whichever process gets there first.

Apart from ``sync/schema.py``, which declares the tables and their migrations: writing a
fact once has to stay race-free when several processes open a fresh store at the same
moment, on both backends.
"""

from __future__ import annotations

import sqlalchemy as sa

from sync.schema import meta

#: a ``meta`` row written only if absent (SQLite >= 3.24 and PostgreSQL); PostgreSQL waits
#: for a concurrent insert of the same key to commit, then leaves it be
_INSERT_META_ONCE = sa.text(
    "INSERT INTO meta (key, value) VALUES (:key, :value) ON CONFLICT (key) DO NOTHING"
)


def meta_once(conn: sa.Connection, key: str, offered: str) -> str:
    """The ``meta`` value of ``key``, set to ``offered`` if it had none. Processes starting
    on a fresh store at once all get the value stored first: ``SELECT ... FOR UPDATE``
    cannot lock a row that is not there yet, and a plain insert made the later ones fail
    with a ``UniqueViolation``."""
    conn.execute(_INSERT_META_ONCE, {"key": key, "value": offered})
    return str(conn.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar_one())
