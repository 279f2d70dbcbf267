"""A full re-tier on the Salesforce sandbox, in one process or spread over ``crmtier
worker`` processes, for tests/sync/test_retier_sandbox.py and bench/retier.py.

Each side is a fresh sandbox seeded alike and a fresh PostgreSQL schema
(``tests.webhooks.wh_workers.cluster``). The sandbox answers every call after ``latency``
seconds; the workers (if any) start first; then ``crmtier sync --full --json`` runs as the
coordinator, timed start to exit. What a side is judged by comes from the CRM and the
store, not from the processes' reports: the CRM's write-back fields, tasks and campaign
memberships of every customer, the audit rows (pseudonyms, which each store keys itself,
run ids and chain order left out; the input hash names the customer), and the
sandbox's count of data calls by kind (token calls left out: each process logs in), and
the status of each page unit. A test may act on the cluster before the coordinator starts
while it runs, and after it (tests/sync/test_retier_kill.py kills a worker).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.contract import AUTH_CALL_KINDS
from tests.webhooks.wh_workers import Cluster, cluster, wait_until

SYNC_FULL = (sys.executable, "-m", "crmtier", "sync", "--full", "--json")


@dataclass(frozen=True)
class Side:
    wall: float
    report: dict[str, Any]
    calls: dict[str, int]  # data calls by kind, as the sandbox counted them
    crm: str  # digest of ``state``
    audit: Counter[str]
    #: every customer's fields, the tasks (closed ones too) and the memberships
    state: list[Any]
    #: the run's page units, in order: (seq, status); none in one process
    units: list[tuple[int, str]]
    #: the outbox's items (customer, kind, key, status): a write queued twice shows
    outbox: Counter[tuple[str, str, str, str]]


#: called with the cluster before the coordinator starts (the workers are up), and after
#: it has exited (before anything is read)
Hook = Callable[[Cluster], None]
#: called with the cluster and the running coordinator, before it is waited for
During = Callable[[Cluster, "subprocess.Popen[str]"], None]


def run_side(
    tmp: Path,
    customers: int,
    workers: int | None,
    *,
    latency: float,
    page_size: int,
    workers_section: str = "",
    worker_env: dict[str, dict[str, str]] | None = None,
    before: Hook | None = None,
    during: During | None = None,
    after: Hook | None = None,
) -> Side:
    """One full re-tier; ``workers`` None: in one process (``[workers] engine = "inline"``).
    The workers start in name order, each registered before the next starts (``w1`` has
    the lowest ``procrastinate_workers`` id); ``worker_env``: more environment for a worker,
    by name."""
    with cluster(tmp, customers, workers_section=workers_section) as c:
        text = c.config.read_text()
        assert text.count("[crm]\n") == 1
        text = text.replace("[crm]\n", f"[crm]\npage_size = {page_size}\n")
        if workers is None:
            text = text.replace('engine = "procrastinate"', 'engine = "inline"')
        else:
            text = text.replace(
                'engine = "procrastinate"', 'engine = "procrastinate"\nspread_full_sync = true'
            )
        c.config.write_text(text)
        for n in range(workers or 0):
            c.start_worker(f"w{n + 1}", (worker_env or {}).get(f"w{n + 1}"))
            wait_until(
                lambda n=n: c.scalar("SELECT count(*) FROM procrastinate_workers") == n + 1,
                60,
                f"worker w{n + 1} to register",
            )
        if before:
            before(c)
        c.sandbox.server.latency = latency
        c.sandbox.server.calls.reset()
        started = time.monotonic()
        coordinator = subprocess.Popen(
            [*SYNC_FULL, "--config", str(c.config)],
            env=c.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            if during:
                during(c, coordinator)
            stdout, stderr = coordinator.communicate()
        finally:
            if coordinator.poll() is None:
                coordinator.kill()
                coordinator.wait()
        wall = time.monotonic() - started
        c.sandbox.server.latency = 0.0
        assert coordinator.returncode == 0, stderr[-3000:]
        if after:
            after(c)
        report = json.loads(stdout.strip().splitlines()[-1])
        calls = {k: v for k, v in c.api_calls().items() if k not in AUTH_CALL_KINDS and v}
        ids = sorted(str(r.customer_id) for r in c.rows("SELECT customer_id FROM customers"))
        state = [
            {cid: c.sandbox.written(cid) for cid in ids},
            sorted(repr(t) for t in c.sandbox.tasks()),
            sorted(c.sandbox.memberships()),
        ]
        crm = json.dumps(state, sort_keys=True, default=str)
        audit = Counter(
            json.dumps(
                [r.event, r.old, r.new, r.reason_codes, r.trigger, r.input_hash],
                sort_keys=True,
            )
            for r in c.rows("SELECT * FROM audit")
        )
        query = "SELECT seq, status FROM retier_units WHERE seq > 0 ORDER BY seq"
        units = [(int(r.seq), str(r.status)) for r in c.rows(query)] if workers else []
        outbox = Counter(
            (str(r.customer_id), str(r.kind), str(r.key), str(r.status))
            for r in c.rows("SELECT customer_id, kind, key, status FROM outbox")
        )
    digest = hashlib.sha256(crm.encode()).hexdigest()
    return Side(wall, report, calls, digest, audit, state, units, outbox)
