"""``crmtier simulate`` over a state store of a million customers, timed on one core.

Builds a SQLite state store as a sync under the default policy leaves it on one day (every
customer's assessed inputs, committed tiers, and the CRM showing what was written), then
runs the simulation the command runs (``sync.inputs.iter_chunks`` -> ``sync.simulation``)
for candidate policies of different reach, and prints CPU and wall seconds for each.

The book is ``--distinct`` generated customers, decided once, tiled under new CRM ids up to
``--customers`` (deciding a million customers only to build the store would take longer
than the figure it sets up). Building the store is not timed.

Run: python bench/simulate.py [--customers 1000000] [--store /tmp/simulate-bench.db]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

# Run as a script, bench/ comes first on the path and bench/sync.py would shadow the sync
# package: import the project from the repository root instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != _HERE)]

from connectors.contract import Capabilities  # noqa: E402
from connectors.mapping import load_default_mapping  # noqa: E402
from connectors.sandbox.generator import generate  # noqa: E402
from sync.inputs import ensure_table, iter_chunks  # noqa: E402
from sync.planner import Known, plan_customer, tiers_of  # noqa: E402
from sync.schema import assessed_inputs, customers, now_text  # noqa: E402
from sync.simulation import Simulator, simulate  # noqa: E402
from sync.store import StateStore  # noqa: E402
from tiering_core.engine import decide_batch  # noqa: E402
from tiering_core.models import CustomerProfile  # noqa: E402
from tiering_core.policy import Policy, load_policy  # noqa: E402

DAY = date(2026, 12, 6)
STREAM = "salesforce:Account"
WRITEBACK = load_default_mapping("salesforce").writeback
CAPS = Capabilities(crm="salesforce", page_size=2000, max_write_batch=200)
CANDIDATES = {
    "renamed (version only)": 'name = "renamed"\n',
    "ops threshold (few customers)": "[ops]\nfailed_high_from = 6\n",
    "private floor 5,000,000": "[value.tiers.private]\naum_floor = 5_000_000\n",
}


def build_store(url: str, n: int, distinct: int, policy: Policy) -> None:
    raw = [{"id": c.id, **c.profile} for c in generate(distinct, seed=42, dirty_share=0)]
    profiles = [CustomerProfile.model_validate(r) for r in raw]
    decisions = decide_batch(profiles, policy, DAY)
    rows: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for r, decision in zip(raw, decisions, strict=True):
        plan = plan_customer(decision, {}, Known(), WRITEBACK)
        written = {k: v.isoformat() if isinstance(v, date) else v for k, v in plan.fields.items()}
        body = {k: v for k, v in r.items() if k != "id"}
        below = decision["below_floor_since"]
        state = {
            "tiers": tiers_of(decision),
            "fields": written,
            "below_floor_since": below.isoformat() if below else None,
        }
        rows.append((json.dumps(body), state, written))
    store = StateStore.open(url)
    ensure_table(store)
    now = now_text()
    batch = 20_000
    try:
        for start in range(0, n, batch):
            cust, inputs = [], []
            for i in range(start, min(n, start + batch)):
                body, state, written = rows[i % distinct]
                cid = f"C{i:012d}"
                cust.append(
                    {
                        "stream": STREAM,
                        "customer_id": cid,
                        "pseudonym": f"p{i}",
                        "tiers": state["tiers"],
                        "fields": state["fields"],
                        "assessed_at": DAY.isoformat(),
                        "below_floor_since": state["below_floor_since"],
                        "updated_at": now,
                    }
                )
                inputs.append(
                    {
                        "stream": STREAM,
                        "customer_id": cid,
                        "profile": body[:-1] + f', "id": "{cid}"}}',
                        "current": written,
                        "as_of": DAY.isoformat(),
                        "updated_at": now,
                    }
                )
            with store.begin() as conn:
                conn.execute(customers.insert(), cust)
                conn.execute(assessed_inputs.insert(), inputs)
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--distinct", type=int, default=50_000)
    parser.add_argument(
        "--store",
        type=Path,
        help="keep the built store here; reuse it if present (it must hold --customers customers)",
    )
    args = parser.parse_args()
    active = load_policy()
    print(
        f"{args.customers:,} customers in a SQLite state store; one process, one thread; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory(prefix="crmtier-bench-") as tmp:
        db = args.store or Path(tmp) / "state.db"
        url = f"sqlite:///{db}"
        if not db.exists():
            started = time.perf_counter()
            build_store(url, args.customers, args.distinct, active)
            print(f"store built in {time.perf_counter() - started:.0f} s (not timed)")
        gc.collect()
        for name, text in CANDIDATES.items():
            path = Path(tmp) / "candidate.toml"
            path.write_text(text, encoding="utf-8")
            candidate = load_policy(path)
            store = StateStore.open(url)
            try:
                simulator = Simulator(
                    active, candidate, DAY, WRITEBACK, CAPS, lambda ids: {i: Known() for i in ids}
                )
                cpu, wall = time.process_time(), time.perf_counter()
                sim = simulate(iter_chunks(store, STREAM), simulator)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            finally:
                store.close()
            moved = sim.matrices["value"].moved
            print(
                f"{name:<32} {sim.customers:>9,} customers: {cpu:6.1f} s CPU, "
                f"{wall:6.1f} s wall; {sim.decided:,} decided again, {moved:,} move "
                f"value tier, next sync {sum(sim.candidate.calls(CAPS).values()):,} calls"
            )


if __name__ == "__main__":
    main()
