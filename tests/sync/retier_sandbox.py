"""A full re-tier on the Salesforce sandbox, in one process or spread over ``crmtier
worker`` processes, for tests/sync/test_retier_sandbox.py and bench/retier.py.

Each side is a fresh sandbox seeded alike and a fresh PostgreSQL schema
(``tests.webhooks.wh_workers.cluster``). The sandbox answers every call after ``latency``
seconds; the workers (if any) start first; then ``crmtier sync --full --json`` runs as the
coordinator, timed start to exit. What a side is judged by comes from the CRM and the
store, not from the processes' reports: the CRM's write-back fields, tasks and campaign
memberships of every customer, the audit rows (pseudonyms, which each store keys itself,
run ids and chain order left out; the input hash names the customer), and the
sandbox's count of data calls by kind (token calls left out: each process logs in).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.contract import AUTH_CALL_KINDS
from tests.webhooks.wh_workers import cluster

SYNC_FULL = (sys.executable, "-m", "crmtier", "sync", "--full", "--json")


@dataclass(frozen=True)
class Side:
    wall: float
    report: dict[str, Any]
    calls: dict[str, int]  # data calls by kind, as the sandbox counted them
    crm: str  # digest of every customer's fields, the tasks and the memberships
    audit: Counter[str]


def run_side(
    tmp: Path, customers: int, workers: int | None, *, latency: float, page_size: int
) -> Side:
    """One full re-tier; ``workers`` None: in one process (``[workers] engine = "inline"``)."""
    with cluster(tmp, customers) as c:
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
            c.start_worker(f"w{n + 1}")
        c.sandbox.server.latency = latency
        c.sandbox.server.calls.reset()
        started = time.monotonic()
        done = subprocess.run(
            [*SYNC_FULL, "--config", str(c.config)],
            env=c.env,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.monotonic() - started
        c.sandbox.server.latency = 0.0
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        calls = {k: v for k, v in c.api_calls().items() if k not in AUTH_CALL_KINDS and v}
        ids = sorted(str(r.customer_id) for r in c.rows("SELECT customer_id FROM customers"))
        crm = json.dumps(
            [
                {cid: c.sandbox.written(cid) for cid in ids},
                sorted(repr(t) for t in c.sandbox.tasks()),
                sorted(c.sandbox.memberships()),
            ],
            sort_keys=True,
            default=str,
        )
        audit = Counter(
            json.dumps(
                [r.event, r.old, r.new, r.reason_codes, r.trigger, r.input_hash],
                sort_keys=True,
            )
            for r in c.rows("SELECT * FROM audit")
        )
    return Side(wall, report, calls, hashlib.sha256(crm.encode()).hexdigest(), audit)
