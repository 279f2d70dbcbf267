"""The shared-login warning as the real commands print it: ``crmtier serve`` and ``crmtier
worker``, started as processes on the Zoho sandbox and a PostgreSQL store, count the live
workers (Procrastinate's table of them) and log one warning line above Zoho's 15 live
access tokens per refresh token ("Token Validity": "When the 16th token is requested, the
oldest token is invalidated"); crmtier/workers.py, docs/operations.md. tests/sync/
test_shared_login.py holds the count's edges; this holds the two call sites to it."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.webhooks.wh_workers import Cluster, cluster, wait_until

pytestmark = pytest.mark.postgres

#: heartbeats that stay live while the test runs, however loaded the box
WORKERS = "stalled_after_seconds = 600\n"
CROWDED = "live logins"


def _warnings(c: Cluster, name: str) -> list[str]:
    """The warning lines of a process's stderr (JSON log lines) about shared logins."""
    lines = (c.logs / f"{name}.log").read_text("utf-8").splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    return [e["msg"] for e in entries if e["level"] == "warning" and CROWDED in e["msg"]]


def _pretend_workers(c: Cluster, alive: int) -> None:
    """``alive`` worker rows beating now, as running ``crmtier worker`` processes leave."""
    engine = sa.create_engine(c.url)
    try:
        with engine.begin() as conn:
            for _ in range(alive):
                conn.execute(sa.text("INSERT INTO procrastinate_workers DEFAULT VALUES"))
    finally:
        engine.dispose()


def test_serve_and_worker_warn_in_one_line_above_zohos_fifteen_logins(tmp_path: Path) -> None:
    with cluster(tmp_path, 1, crm="zoho", workers_section=WORKERS) as c:
        c.start_serve()  # no worker yet: one process on the refresh token
        assert _warnings(c, "serve") == []
        _pretend_workers(c, 14)
        c.start_worker("w1")  # 14 + this worker + the receiver: the 16th login
        assert _warnings(c, "w1") == [
            "Zoho CRM: 16 processes on this process's credentials (14 live crmtier workers on "
            "them, this worker and the receiver), more than the 15 live logins Zoho CRM keeps "
            "on one set of credentials (each new login invalidates the oldest): they keep "
            "logging each other out, so run at most 14 workers on one set, or give a group of "
            "workers credentials of their own (docs/operations.md)"
        ]
        # w1 names its refresh token by a keyed fingerprint beside its heartbeat
        recorded = "SELECT login FROM task_worker_logins"
        wait_until(lambda: bool(c.rows(recorded)), what="w1's registration")
        [(login,)] = c.rows(recorded)
        assert len(login) == 20 and not any(login in v for v in c.env.values())
        assert c.serve is not None
        c.serve.send_signal(signal.SIGTERM)
        assert c.serve.wait(timeout=120) == 0
        c.start_serve("serve-again")  # the 14 and w1, now beating, and this receiver
        [line] = _warnings(c, "serve-again")
        assert line.startswith("Zoho CRM: 16 processes on this process's credentials (15 live")
        assert "this receiver)" in line
