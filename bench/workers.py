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
more than one field write; API calls: the sandbox's count during the burst (token calls
left out). Target: two workers in <= 0.6x the time of one, 0 stale, 0 duplicates. A third
run kills one of the two workers with SIGKILL a third of the way through, with no
notification sent after: the other must finish, nothing lost, duplicated or stale.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: the visibility timeout of these runs, seconds ([workers] stalled_after_seconds)
STALLED_AFTER = 10


def side(
    workers: int, events: int, latency: float, batch: int, *, kill: bool = False
) -> dict[str, object]:
    """One run; with ``kill``, worker w1 is SIGKILLed once a third of the events are done
    and the sandbox sends nothing after (no new traffic): ``after_kill`` is then the time
    from the kill to the drain, against the visibility timeout ``STALLED_AFTER``."""
    from tests.webhooks.wh_workers import PRIVATE, cluster, upgradable, wait_until

    with (
        tempfile.TemporaryDirectory() as tmp,
        cluster(
            Path(tmp),
            int(events * 1.6),
            workers_section=f"stalled_after_seconds = {STALLED_AFTER}\n",
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
        killed_at = None
        if kill:
            wait_until(lambda: c.events_done() >= len(targets) // 3, 3600, "a third done")
            c.sandbox.outbound.set_target(None)  # type: ignore[attr-defined]
            c.kill("w1", signal.SIGKILL)
            killed_at = time.monotonic()
        wait_until(lambda: c.drained(len(targets)), 3600, "the burst to drain")
        seconds = time.monotonic() - start
        after_kill = time.monotonic() - killed_at if killed_at is not None else None
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
            "after_kill": after_kill,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per CRM call")
    parser.add_argument("--batch", type=int, default=200, help="[webhooks] batch_size")
    parser.add_argument("--no-kill", action="store_true", help="skip the SIGKILL run")
    args = parser.parse_args()
    runs = {"1 worker": side(1, args.events, args.latency, args.batch)}
    runs["2 workers"] = side(2, args.events, args.latency, args.batch)
    if not args.no_kill:
        runs["2, w1 killed"] = side(2, args.events, args.latency, args.batch, kill=True)
    print(
        f"{args.events} webhook events, {args.latency * 1000:.0f} ms per CRM call, "
        f"batch_size {args.batch}, visibility timeout {STALLED_AFTER} s"
    )
    print(f"{'':20}" + "".join(f"{name:>16}" for name in runs))
    for key in ("events", "seconds", "after_kill", "stale", "duplicates", "unwritten"):
        cells = [runs[name][key] for name in runs]
        text = [f"{v:.1f}" if isinstance(v, float) else "-" if v is None else str(v) for v in cells]
        print(f"{key:20}" + "".join(f"{t:>16}" for t in text))
    print(f"{'api_calls':20}" + "".join(f"{runs[n]['api_calls']!s:>16}" for n in runs))
    for name, run in runs.items():
        print(f"{name}: calls by kind {run['calls_by_kind']}")
        print(f"{name}: jobs, customers per worker {run['per_worker']}")
    one, two = (float(runs[n]["seconds"]) for n in ("1 worker", "2 workers"))  # type: ignore[arg-type]
    print(f"time ratio two/one: {two / one:.2f} (target <= 0.60)")


if __name__ == "__main__":
    main()
