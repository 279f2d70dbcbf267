"""``crmtier simulate`` over a state store of a million customers, timed on one core.

Builds a SQLite state store as a sync under the default policy leaves it on one day (every
customer's assessed inputs, committed tiers, and the CRM showing what was written), then
runs the simulation the command runs (``sync.inputs.iter_chunks`` -> ``sync.simulation``)
for candidate policies of different reach, and prints CPU and wall seconds for each.

The book is ``--distinct`` generated customers, decided once, tiled under new CRM ids up to
``--customers`` (deciding a million customers only to build the store would take longer
than the figure it sets up). Building the store is not timed.

With ``--households`` every policy reads households: the store holds the sandboxes'
seeded households (each tile of the book its own families) and a full sync's links.

Run: python bench/simulate.py [--customers 1000000] [--store /tmp/simulate-bench.db]
[--households]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
import tomllib
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
from connectors.sandbox.households import household_links as seeded_links  # noqa: E402
from sync.household_store import StoredHouseholds, mark_complete  # noqa: E402
from sync.inputs import ensure_table, iter_chunks  # noqa: E402
from sync.planner import Known, plan_customer, tiers_of  # noqa: E402
from sync.schema import assessed_inputs, customers, household_links, now_text  # noqa: E402
from sync.simulation import Simulator, simulate  # noqa: E402
from sync.store import StateStore  # noqa: E402
from tiering_core.engine import decide_batch  # noqa: E402
from tiering_core.models import CustomerProfile  # noqa: E402
from tiering_core.policy import Policy, load_policy, policy_over_default  # noqa: E402
from tiering_core.rules.household import HouseholdLinks, Link  # noqa: E402

DAY = date(2026, 12, 6)
STREAM = "salesforce:Account"
WRITEBACK = load_default_mapping("salesforce").writeback
CAPS = Capabilities(crm="salesforce", page_size=2000, max_write_batch=200)
HOUSEHOLDS = "\n[households]\nenabled = true\n"
CANDIDATES = {
    "renamed (version only)": 'name = "renamed"\n',
    "ops threshold (few customers)": "[ops]\nfailed_high_from = 6\n",
    "private floor 5,000,000": "[value.tiers.private]\naum_floor = 5_000_000\n",
}


def _cid(i: int) -> str:
    return f"C{i:012d}"


def build_store(url: str, n: int, distinct: int, policy: Policy) -> None:
    book = list(generate(distinct, seed=42, dirty_share=0))
    raw = [{"id": c.id, **c.profile} for c in book]
    profiles = [CustomerProfile.model_validate(r) for r in raw]
    # the sandboxes' households, each tile of the book its own families (by tiled CRM id)
    seeds = list(seeded_links([c.index for c in book if c.profile.get("kind") != "corporate"]))
    links = [Link(raw[lk.member]["id"], raw[lk.household]["id"], lk.role) for lk in seeds]
    households = HouseholdLinks.build([r["id"] for r in raw], links, policy)
    decisions = decide_batch(profiles, policy, DAY, households=households)
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
                cid = _cid(i)
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
        if policy.households.enabled:
            tiles = range(0, n, distinct)
            with store.begin() as conn:
                conn.execute(
                    household_links.insert(),
                    [
                        {
                            "stream": STREAM,
                            "customer_id": _cid(t + lk.member),
                            "household_id": _cid(t + lk.household),
                            "role": lk.role,
                            "updated_at": now,
                        }
                        for t in tiles
                        for lk in seeds
                        if t + max(lk.member, lk.household) < n
                    ],
                )
            mark_complete(store, STREAM, True)
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
    parser.add_argument(
        "--households",
        action="store_true",
        help="households on in every policy: the store holds the seeded households' links, "
        "and each chunk is decided beside its households' other members",
    )
    args = parser.parse_args()
    on = HOUSEHOLDS if args.households else ""
    active = policy_over_default(tomllib.loads(on))
    print(
        f"{args.customers:,} customers in a SQLite state store"
        f"{' with households' if on else ''}; one process, one thread; "
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
            path.write_text(text + on, encoding="utf-8")
            candidate = load_policy(path)
            store = StateStore.open(url)
            try:
                simulator = Simulator(
                    active,
                    candidate,
                    DAY,
                    WRITEBACK,
                    CAPS,
                    lambda ids: {i: Known() for i in ids},
                    households=StoredHouseholds(store, STREAM) if on else None,
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
