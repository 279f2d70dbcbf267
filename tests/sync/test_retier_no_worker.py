"""A spread full sync needs a live ``crmtier worker``: ``crmtier doctor`` counts the live
workers (a heartbeat within ``stalled_after_seconds``), and ``crmtier sync --full`` with
none alive refuses at start, leaving the store as it was, instead of storing pages no one
takes and failing after its stall time (real processes on a PostgreSQL store)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from connectors.contract import AUTH_CALL_KINDS
from sync.tasks.retier_page import TASK
from tests.webhooks.wh_workers import Cluster, cluster, wait_until

pytestmark = pytest.mark.postgres

#: the smallest visibility timeout: a SIGKILLed worker's heartbeat is stale 3 s later
STALLED_AFTER = "stalled_after_seconds = 3"


def _crmtier(c: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crmtier", *args, "--config", str(c.config)],
        env={**c.env, "COLUMNS": "400"},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,  # a guard against a hang only: the old behaviour waited 600 s
    )


def _workers_line(c: Cluster) -> str:
    doctor = _crmtier(c, "doctor")
    lines = [line for line in doctor.stdout.splitlines() if " workers " in line]
    assert len(lines) == 1, doctor.stdout + doctor.stderr
    return lines[0]


def test_doctor_counts_the_workers_with_a_live_heartbeat(tmp_path: Path) -> None:
    with cluster(tmp_path, 10, workers_section=STALLED_AFTER) as c:
        line = _workers_line(c)  # no worker ever started: the queue's tables are not there
        assert "✗" in line and "none alive (heartbeat in the last 3 s)" in line, line
        assert "start crmtier worker" in line and "spread_full_sync = false" in line, line

        c.start_worker("w1")
        wait_until(lambda: c.scalar("SELECT count(*) FROM procrastinate_workers") == 1)
        line = _workers_line(c)
        assert "✓" in line and "1 alive (heartbeat in the last 3 s)" in line, line

        c.kill("w1")  # its row stays, its heartbeat goes stale
        assert c.scalar("SELECT count(*) FROM procrastinate_workers") == 1
        wait_until(lambda: "none alive" in _workers_line(c), 120, "w1's heartbeat to go stale")


def test_doctor_has_no_workers_line_when_full_syncs_run_in_one_process(tmp_path: Path) -> None:
    with cluster(tmp_path, 10, workers_section="spread_full_sync = false") as c:
        doctor = _crmtier(c, "doctor")
        assert not [line for line in doctor.stdout.splitlines() if " workers " in line]
        assert "webhook settings" in doctor.stdout, doctor.stdout + doctor.stderr


def _store_state(c: Cluster) -> list[object]:
    return [
        c.rows("SELECT * FROM bookmarks ORDER BY 1"),
        c.rows("SELECT id, status FROM runs ORDER BY 1"),
        c.rows("SELECT * FROM locks ORDER BY 1"),
        c.rows("SELECT customer_id, run_id FROM customers ORDER BY 1"),
        c.scalar("SELECT count(*) FROM outbox"),
        c.scalar("SELECT count(*) FROM audit"),
        c.scalar("SELECT to_regclass('retier_units') IS NULL"),
    ]


def test_a_spread_full_sync_with_no_live_worker_refuses_at_start(tmp_path: Path) -> None:
    with cluster(tmp_path, 30, workers_section=STALLED_AFTER) as c:
        c.sync()  # an incremental run is never spread: the store has a bookmark
        before = _store_state(c)
        c.start_worker("w1")  # registered, then SIGKILLed: a stale row is no live worker
        wait_until(lambda: c.scalar("SELECT count(*) FROM procrastinate_workers") == 1)
        c.kill("w1")
        wait_until(
            lambda: (
                c.scalar(
                    "SELECT count(*) FROM procrastinate_workers"
                    " WHERE last_heartbeat > now() - interval '3 seconds'"
                )
                == 0
            ),
            what="w1's heartbeat to go stale",
        )
        c.sandbox.server.calls.reset()

        run = _crmtier(c, "sync", "--full", "--json")

        assert run.returncode == 2, run.stdout + run.stderr
        assert run.stdout == ""
        assert run.stderr.splitlines() == [
            "crmtier sync: no crmtier worker is alive to take the pages of a spread full "
            "sync (no heartbeat in 3 s): start crmtier worker (on this or any host), or set "
            "[workers] spread_full_sync = false to run full syncs in one process"
        ]
        assert _store_state(c) == before  # no run, lease, page unit, write or bookmark move
        # no page job deferred (w1 left its periodic sweep of stalled jobs)
        page_jobs = "SELECT count(*) FROM procrastinate_jobs WHERE task_name = '{}'"
        assert c.scalar(page_jobs.format(TASK)) == 0
        data_calls = {k: v for k, v in c.api_calls().items() if v and k not in AUTH_CALL_KINDS}
        assert data_calls == {}, data_calls  # nothing read from the CRM either
