"""The task engine with real processes on PostgreSQL and the Salesforce sandbox: ``crmtier
serve`` acks and defers, two ``crmtier worker`` processes drain the jobs (issue 22).

Judged by the store and the CRM, never by the processes' own reports: every edited
customer ends with the tier its final data gives (no older view written over a newer
one), with one field write each (no duplicate), and no event lost. The SIGKILL test
compares a run where one of two workers is killed mid-job, with no traffic after the
kill, against a fault-free run of the same edits: same CRM end state, same reason texts,
same webhook audit rows per customer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.sync.conftest import CRM_TABLE
from tests.webhooks.wh_workers import PRIVATE, Cluster, cluster, upgradable, wait_until

pytestmark = pytest.mark.postgres

#: small jobs, so a burst is many units for two workers to share
WEBHOOKS = "batch_size = 10\n"
#: the visibility timeout of these tests (a SIGKILLed worker's job runs again after it)
WORKERS = "stalled_after_seconds = 6\nsweep_every_seconds = 5\n"
#: generous hang guards, not performance limits: a loaded 2-core box is slow
DRAIN = 240.0


def _burst(c: Cluster, customers: int) -> list[str]:
    targets = upgradable(c, customers)
    assert len(targets) >= customers * 0.8, "the seed has fewer upgradable customers than needed"
    for cid in targets:
        c.sandbox.edit_customer(cid, PRIVATE)
    return targets


def _judge(c: Cluster, targets: list[str]) -> dict[str, Any]:
    state = c.crm_state(targets)
    writes = c.field_writes()
    return {
        "stale": sorted(cid for cid in targets if state[cid].get("value_tier") != "private"),
        "duplicates": sorted(cid for cid in targets if writes[cid] > 1),
        "unwritten": sorted(cid for cid in targets if writes[cid] == 0),
        "dead": c.scalar("SELECT count(*) FROM webhook_inbox WHERE status = 'dead'"),
        "state": state,
        "audit": c.audit_by_customer(targets),
        "tasks": c.task_decisions(targets),
    }


def test_a_burst_is_drained_by_two_workers_each_customer_written_once(tmp_path: Path) -> None:
    with cluster(tmp_path, 80, workers_section=WORKERS, webhooks_section=WEBHOOKS) as c:
        c.sync()
        c.start_serve()
        c.start_worker("w1")
        c.start_worker("w2")
        targets = _burst(c, 50)
        wait_until(lambda: c.drained(len(targets)), DRAIN, "the two workers to drain the burst")
        verdict = _judge(c, targets)
        assert verdict["stale"] == []
        assert verdict["duplicates"] == []
        assert verdict["unwritten"] == []
        assert verdict["dead"] == 0
        done = c.rows("SELECT worker, sum(jobs) AS jobs FROM task_worker_stats GROUP BY worker")
        assert sum(int(r.jobs) for r in done) >= len(targets) // 10
        metrics = httpx.get(f"{c.receiver}/metrics", timeout=30).text
        for row in done:
            line = (
                f'crmtier_worker_jobs_total{{kind="crmtier.webhook_batch",worker="{row.worker}"}}'
            )
            assert f"{line} {row.jobs}" in metrics
        assert "crmtier_queue_failed 0" in metrics
        assert "crmtier_queue_oldest_waiting_age_seconds" in metrics
        assert "crmtier_workers_alive 2" in metrics  # full syncs spread: the default


def _run(tmp_path: Path, *, kill: bool) -> tuple[list[str], dict[str, Any], float]:
    """One burst through two workers; with ``kill``, the first worker is SIGKILLed while a
    job of its own is running and no event arrives after. Returns the targets, the verdict
    and the seconds from the kill (or the burst) to the drain."""
    with cluster(tmp_path, 120, workers_section=WORKERS, webhooks_section=WEBHOOKS) as c:
        c.sync()
        c.sandbox.server.latency = 0.1  # jobs long enough to be caught mid-run
        c.start_serve()
        c.start_worker("w1")
        wait_until(
            lambda: c.scalar("SELECT count(*) FROM procrastinate_workers") == 1,
            60,
            "the first worker to register",
        )
        first = int(c.scalar("SELECT min(id) FROM procrastinate_workers"))
        c.start_worker("w2")
        targets = _burst(c, 80)
        started = time.monotonic()
        if kill:
            wait_until(
                lambda: bool(
                    c.scalar(
                        "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'"
                        f" AND task_name = 'crmtier.webhook_batch' AND worker_id = {first}"
                    )
                ),
                DRAIN,
                "the first worker to run a job",
            )
            wait_until(
                lambda: c.scalar("SELECT count(*) FROM webhook_inbox") >= len(targets),
                DRAIN,
                "every edit's notification to be acked",
            )
            c.sandbox.outbound.set_target(None)  # type: ignore[attr-defined]  # no new traffic
            c.kill("w1", signal.SIGKILL)
            started = time.monotonic()
        wait_until(lambda: c.drained(len(targets)), DRAIN, "the surviving worker to drain")
        return targets, _judge(c, targets), time.monotonic() - started


@pytest.mark.slow
def test_sigkill_of_one_worker_loses_duplicates_and_stales_nothing(tmp_path: Path) -> None:
    targets, clean, _ = _run(tmp_path / "clean", kill=False)
    killed_targets, killed, _ = _run(tmp_path / "killed", kill=True)
    assert killed_targets == targets
    for verdict in (clean, killed):
        assert verdict["stale"] == []
        assert verdict["duplicates"] == []
        assert verdict["unwritten"] == []
        assert verdict["dead"] == 0
    assert killed["state"] == clean["state"]  # CRM end state, reason texts included
    assert killed["tasks"] == clean["tasks"]
    # each customer's webhook audit rows, as a multiset: a customer's task and membership
    # rows are recorded as its writes finish, in an order no run fixes
    differing = {
        cid: (sorted(killed["audit"][cid]), sorted(rows))
        for cid, rows in clean["audit"].items()
        if sorted(killed["audit"][cid]) != sorted(rows)
    }
    assert not differing, {
        cid: (Counter(r[0] for r in k), Counter(r[0] for r in c))
        for cid, (k, c) in sorted(differing.items())[:5]
    }


def test_sigterm_lets_the_job_in_progress_finish(tmp_path: Path) -> None:
    with cluster(tmp_path, 40, workers_section=WORKERS, webhooks_section=WEBHOOKS) as c:
        c.sync()
        c.sandbox.server.latency = 0.2  # a job takes a second or more: SIGTERM lands inside one
        c.start_serve()
        c.start_worker("w1")
        _burst(c, 20)
        wait_until(
            lambda: bool(
                c.scalar(
                    "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'"
                    " AND task_name = 'crmtier.webhook_batch'"
                )
            ),
            DRAIN,
            "a job to start",
        )
        (running,) = c.rows(
            "SELECT id, args FROM procrastinate_jobs WHERE status = 'doing'"
            " AND task_name = 'crmtier.webhook_batch'"
        )
        c.workers["w1"].send_signal(signal.SIGTERM)
        assert c.workers["w1"].wait(timeout=DRAIN) == 0
        ids = ",".join(str(i) for i in running.args["event_ids"])
        statuses = c.rows(f"SELECT DISTINCT status FROM webhook_inbox WHERE id IN ({ids})")
        assert [r.status for r in statuses] == ["done"]
        assert c.scalar(f"SELECT count(*) FROM procrastinate_jobs WHERE id = {running.id}") == 0


def test_worker_refuses_the_inline_engine_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "crmtier.toml"
    config.write_text(CRM_TABLE + '\n[workers]\nengine = "inline"\n')
    done = subprocess.run(
        [sys.executable, "-m", "crmtier", "worker", "--config", str(config)],
        env={**os.environ, "SF_ID": "x", "SF_SECRET": "y"},
        capture_output=True,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "[workers] engine" in lines[0], lines
