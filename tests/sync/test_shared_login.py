"""More processes on one Zoho refresh token than Zoho keeps access tokens for: "A maximum
of 15 active access tokens can be stored per refresh token. When the 16th token is
requested, the oldest token is invalidated" (Zoho CRM API "Token Validity"). Every crmtier
process refreshes its own token, so ``crmtier worker`` and ``serve`` count the live workers
on their credentials when they start and warn in one line above the cap: each worker
records a keyed fingerprint of its credentials beside its heartbeat (sync/tasks/logins.py),
so groups of workers on refresh tokens of their own are counted apart
(crmtier/workers.py, docs/operations.md)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa
from procrastinate import PsycopgConnector

from crmtier.workers import login_of, shared_login_warning
from sync.tasks.engine import TASK_MIGRATIONS, conninfo
from sync.tasks.logins import LoginRecordingManager, login_fingerprint

STALLED_AFTER = timedelta(seconds=30)
KEY = bytes(range(32))
MINE, OTHER = login_fingerprint(b"refresh-A", KEY), login_fingerprint(b"refresh-B", KEY)


def _workers(store, groups: dict[str | None, int], stale: int = 0) -> None:
    """Live workers per fingerprint (None: a worker that recorded none), and stale ones."""
    store.migrate("task_engine", TASK_MIGRATIONS)
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM procrastinate_workers"))
        for login, alive in groups.items():
            for _ in range(alive):
                wid = conn.execute(
                    sa.text("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id")
                ).scalar()
                if login is not None:
                    conn.execute(
                        sa.text("INSERT INTO task_worker_logins VALUES (:w, :l)"),
                        {"w": wid, "l": login},
                    )
        for _ in range(stale):  # a killed worker's row, its heartbeat long gone
            conn.execute(
                sa.text(
                    "INSERT INTO procrastinate_workers (last_heartbeat)"
                    " VALUES (now() - interval '1 hour')"
                )
            )


def _warning(store, connector, worker: bool) -> str | None:
    return shared_login_warning(connector, store, STALLED_AFTER, worker=worker, login=MINE)


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("alive", "stale", "worker", "warned"),
    [
        (13, 5, True, False),  # 13 + this worker + the receiver: 15, Zoho's cap
        (14, 0, True, True),  # the 16th would invalidate the oldest token
        (14, 0, False, False),  # a receiver starting beside 14 workers: 15
        (15, 0, False, True),
    ],
)
def test_zoho_warns_once_more_processes_share_a_refresh_token_than_it_keeps_tokens_for(
    pg_store, sandbox_factory, connect, alive, stale, worker, warned
):
    connector = connect(sandbox_factory("zoho", customers=1))
    _workers(pg_store, {MINE: alive}, stale)
    line = _warning(pg_store, connector, worker)
    assert (line is not None) is warned
    if line is not None:
        assert line.startswith("Zoho CRM: 16 processes on this process's credentials")
        assert "15 live logins" in line and "at most 14 workers on one set" in line
        assert "\n" not in line


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("groups", "warned"),
    [
        ({MINE: 10, OTHER: 10}, False),  # 20 workers on the store, 12 processes on each set
        ({MINE: 13, OTHER: 14}, False),  # 15 on this set: at the cap, not over
        ({MINE: 14, OTHER: 5}, True),  # 16 on this set
        ({MINE: 10, None: 4, OTHER: 9}, True),  # a worker with no fingerprint may share it
    ],
)
def test_workers_on_other_credentials_are_counted_apart(
    pg_store, sandbox_factory, connect, groups, warned
):
    """A bank that gives a group of workers a refresh token of its own is within Zoho's
    cap on each: the workers are counted per fingerprint, not all on the store."""
    connector = connect(sandbox_factory("zoho", customers=1))
    _workers(pg_store, groups)
    assert (_warning(pg_store, connector, worker=True) is not None) is warned


@pytest.mark.postgres
def test_a_registering_worker_records_its_fingerprint_and_its_stop_removes_it(
    pg_store, sandbox_factory, connect
):
    """The worker's row is written as Procrastinate registers its heartbeat, with the
    connector's keyed fingerprint (never the refresh token), and goes with the worker."""
    connector = connect(sandbox_factory("zoho", customers=1))
    login = login_of(connector, KEY)
    secret = connector.login_secret().decode()
    assert login == login_fingerprint(secret.encode(), KEY) and secret not in (login or "")
    assert login_of(connector, bytes(32)) != login  # keyed: another store, another name
    _workers(pg_store, {})

    async def register_then_stop() -> list[tuple[int, str]]:
        pool = PsycopgConnector(conninfo=conninfo(pg_store))
        await pool.open_async()
        try:
            manager = LoginRecordingManager(pool, str(login))
            worker_id = await manager.register_worker()
            with pg_store.engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT * FROM task_worker_logins")).all()
            await manager.unregister_worker(worker_id)
            return [(r[0], r[1]) for r in rows] + [(worker_id, "")]
        finally:
            await pool.close_async()

    *rows, (worker_id, _) = asyncio.run(register_then_stop())
    assert rows == [(worker_id, login)]
    with pg_store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM task_worker_logins")).scalar() == 0


@pytest.mark.postgres
def test_a_crm_without_such_a_cap_is_never_warned_about(pg_store, sandbox_factory, connect):
    connector = connect(sandbox_factory("salesforce", customers=1))
    _workers(pg_store, {None: 40})
    assert login_of(connector, KEY) is None
    assert shared_login_warning(connector, pg_store, STALLED_AFTER, worker=True, login=None) is None
