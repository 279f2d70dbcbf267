"""More processes on one Zoho refresh token than Zoho keeps access tokens for: "A maximum
of 15 active access tokens can be stored per refresh token. When the 16th token is
requested, the oldest token is invalidated" (Zoho CRM API "Token Validity"). Every crmtier
process refreshes its own token, so ``crmtier worker`` and ``serve`` count the live workers
on the store (Procrastinate's own table of them) when they start and warn in one line above
the cap (crmtier/workers.py, docs/operations.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from crmtier.workers import shared_login_warning
from sync.tasks.engine import TASK_MIGRATIONS

STALLED_AFTER = timedelta(seconds=30)


def _workers(store, alive: int, stale: int = 0) -> None:
    store.migrate("task_engine", TASK_MIGRATIONS)
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM procrastinate_workers"))
        for _ in range(alive):
            conn.execute(sa.text("INSERT INTO procrastinate_workers DEFAULT VALUES"))
        for _ in range(stale):  # a killed worker's row, its heartbeat long gone
            conn.execute(
                sa.text(
                    "INSERT INTO procrastinate_workers (last_heartbeat)"
                    " VALUES (now() - interval '1 hour')"
                )
            )


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
    _workers(pg_store, alive, stale)
    line = shared_login_warning(connector, pg_store, STALLED_AFTER, worker=worker)
    assert (line is not None) is warned
    if line is not None:
        assert line.startswith("Zoho CRM: 16 processes on this store")
        assert "15 live logins" in line and "at most 14 workers" in line
        # the heartbeats name no credentials: the line promises no silence for a second set
        assert "counted here too, whatever their credentials" in line
        assert "\n" not in line


@pytest.mark.postgres
def test_a_crm_without_such_a_cap_is_never_warned_about(pg_store, sandbox_factory, connect):
    connector = connect(sandbox_factory("salesforce", customers=1))
    _workers(pg_store, 40)
    assert shared_login_warning(connector, pg_store, STALLED_AFTER, worker=True) is None
