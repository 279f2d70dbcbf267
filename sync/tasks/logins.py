"""Which set of CRM credentials each live ``crmtier worker`` logs in with, as a keyed
fingerprint, so the shared-login warning (``crmtier.workers.shared_login_warning``) counts
the processes per set of credentials, not every worker on the store.

A CRM may cap the live logins on one set of credentials (Zoho: 15 access tokens per
refresh token). A bank that gives a group of workers a refresh token of its own stays
within the cap on each, and must not be warned because the store holds more workers in
all. Each worker's heartbeat row (Procrastinate's ``procrastinate_workers``) gets a row
here when the worker registers, naming its credentials by HMAC-SHA256 under the key the
store's customers are pseudonymised with (``[privacy] pseudonym_key``, or the one kept in
the store: one key for every process on a store, or their customers' pseudonyms would
differ too), never the token or client id in clear. The row goes with its
worker's (``ON DELETE CASCADE``: a clean stop unregisters the worker, a stale one is
pruned), and liveness is the heartbeat's, as for ``sync.tasks.liveness``.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from procrastinate.manager import JobManager

#: Domain of the fingerprint's HMAC: the same key also names customers.
_DOMAIN = b"crmtier crm login\0"

_CREATE = """
CREATE TABLE IF NOT EXISTS task_worker_logins (
    worker_id bigint PRIMARY KEY REFERENCES procrastinate_workers(id) ON DELETE CASCADE,
    login text NOT NULL
)
"""
_RECORD = "INSERT INTO task_worker_logins (worker_id, login) VALUES (%(worker_id)s, %(login)s)"
#: live workers on ``login``, and those with no fingerprint (a worker of an earlier
#: crmtier, or one stopped between its registration and its row): they may share it
_ON_LOGIN = sa.text(
    "SELECT count(*) FROM procrastinate_workers w"
    " LEFT JOIN task_worker_logins l ON l.worker_id = w.id"
    " WHERE w.last_heartbeat > now() - make_interval(secs => :seconds)"
    " AND (l.login IS NULL OR l.login = :login)"
)


def create_logins_table(conn: sa.Connection) -> None:
    """The migration step (``TASK_MIGRATIONS``): after Procrastinate's schema, whose
    workers' table the rows refer to."""
    conn.execute(sa.text(_CREATE))


def login_fingerprint(secret: bytes, key: bytes) -> str:
    """The first 20 hex digits of HMAC-SHA256(key, domain + secret): equal for one set of
    credentials under one store's key, and naming no credential without the key."""
    return hmac.new(key, _DOMAIN + secret, hashlib.sha256).hexdigest()[:20]


class LoginRecordingManager(JobManager):
    """Procrastinate's job manager, which also records the worker's fingerprint when the
    worker registers its heartbeat row (the one moment its id is known)."""

    def __init__(self, connector: Any, login: str) -> None:
        super().__init__(connector)
        self.login = login

    async def register_worker(self) -> int:
        worker_id = await super().register_worker()
        await self.connector.execute_query_async(_RECORD, worker_id=worker_id, login=self.login)
        return worker_id


def live_workers_on(engine: sa.Engine, stalled_after: timedelta, login: str) -> int:
    """Live workers logging in on ``login``'s credentials (or on unknown ones); 0 on a
    store where no worker ever started."""
    with engine.connect() as conn:
        if not conn.execute(sa.text("SELECT to_regclass('task_worker_logins')")).scalar():
            return 0
        seconds = stalled_after.total_seconds()
        found = conn.execute(_ON_LOGIN, {"seconds": seconds, "login": login}).scalar()
        return int(found or 0)
