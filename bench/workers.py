"""Webhook burst through the task engine: one ``crmtier worker`` against two (issue 22).

    python bench/workers.py                     # 2,000 events, 200 ms per CRM call
    python bench/workers.py --events 500 --latency 0.05

Each side runs on a fresh PostgreSQL schema and a fresh Salesforce sandbox seeded alike:
the first full sync is done (latency 0), then the sandbox answers every API call after
``--latency`` seconds, ``crmtier serve`` (receiver, deferring jobs) and N ``crmtier
worker`` processes start, and ``--events`` customers are edited at once (one Outbound
Message notification each, batched by the sandbox as Salesforce does). Timed from the
first edit to the last event done in the inbox. Stale writes: edited customers whose CRM
tier at the end is not the one their final data gives; duplicates: edited customers with
more than one field write; API calls: the sandbox's count during the burst. Target: two
workers in <= 0.6x the time of one, 0 stale, 0 duplicates.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def side(workers: int, events: int, latency: float, batch: int) -> dict[str, object]:
    from tests.webhooks.wh_workers import PRIVATE, cluster, upgradable, wait_until

    with (
        tempfile.TemporaryDirectory() as tmp,
        cluster(
            Path(tmp),
            int(events * 1.6),
            workers_section="stalled_after_seconds = 30\n",
            webhooks_section=f"batch_size = {batch}\n",
        ) as c,
    ):
        c.sync()
        targets = upgradable(c, events)
        c.sandbox.server.latency = latency
        c.start_serve()
        for n in range(workers):
            c.start_worker(f"w{n + 1}")
        c.sandbox.server.calls.reset()
        start = time.monotonic()
        for cid in targets:
            c.sandbox.edit_customer(cid, PRIVATE)
        wait_until(lambda: c.drained(len(targets)), 3600, "the burst to drain")
        seconds = time.monotonic() - start
        calls = c.api_calls()
        state = c.crm_state(targets)
        writes = c.field_writes()
        per_worker = {
            str(r.worker): (int(r.jobs), int(r.customers))
            for r in c.rows(
                "SELECT worker, sum(jobs) AS jobs, sum(customers) AS customers"
                " FROM task_worker_stats GROUP BY worker ORDER BY worker"
            )
        }
        return {
            "events": len(targets),
            "seconds": seconds,
            "stale": sum(1 for cid in targets if state[cid].get("value_tier") != "private"),
            "duplicates": sum(1 for cid in targets if writes[cid] > 1),
            "unwritten": sum(1 for cid in targets if writes[cid] == 0),
            "api_calls": sum(v for k, v in calls.items() if k != "oauth_token"),
            "calls_by_kind": calls,
            "per_worker": per_worker,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per CRM call")
    parser.add_argument("--batch", type=int, default=200, help="[webhooks] batch_size")
    args = parser.parse_args()
    results = {n: side(n, args.events, args.latency, args.batch) for n in (1, 2)}
    print(
        f"{args.events} webhook events, {args.latency * 1000:.0f} ms per CRM call, "
        f"batch_size {args.batch}"
    )
    print(f"{'':28}{'1 worker':>14}{'2 workers':>14}")
    for key in ("events", "seconds", "stale", "duplicates", "unwritten", "api_calls"):
        one, two = results[1][key], results[2][key]
        fmt = (lambda v: f"{v:.1f}") if key == "seconds" else str
        print(f"{key:28}{fmt(one):>14}{fmt(two):>14}")
    for n in (1, 2):
        print(f"calls by kind, {n} worker(s): {results[n]['calls_by_kind']}")
        print(f"jobs, customers per worker, {n} worker(s): {results[n]['per_worker']}")
    ratio = float(results[2]["seconds"]) / float(results[1]["seconds"])  # type: ignore[arg-type]
    print(f"time ratio two/one: {ratio:.2f} (target <= 0.60)")


if __name__ == "__main__":
    main()
