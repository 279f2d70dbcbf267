"""A full re-tier spread over ``crmtier worker`` processes: one worker against two (issue 22).

    python bench/retier.py                          # 100,000 customers, 200 ms per call
    python bench/retier.py --customers 20000 --latency 0.05

Three sides, each on a fresh Salesforce sandbox seeded alike and a fresh PostgreSQL schema
(``tests/sync/retier_sandbox.py``): ``crmtier sync --full`` in one process, then as the
coordinator of one and of two ``crmtier worker`` processes (a page of ``--page-size``
customers a job). The sandbox answers every call after ``--latency`` seconds, so the CRM,
not this box's cores, is what the run waits on. Printed per side: wall time of the sync
process (start to exit; the workers are up before it starts), the data calls by kind as
the sandbox counted them, and a digest of the CRM's end state (every customer's fields,
the tasks, the memberships). Target: two workers in <= 0.6x the wall time of one, the
same calls and the same end state as one process.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    from tests.sync.retier_sandbox import run_side

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per CRM call")
    parser.add_argument("--page-size", type=int, default=2000, help="customers per unit")
    args = parser.parse_args()
    print(
        f"{args.customers:,} customers, {args.latency * 1000:.0f} ms a call, "
        f"pages of {args.page_size}"
    )
    sides = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, workers in (("one process", None), ("1 worker", 1), ("2 workers", 2)):
            side = run_side(
                Path(tmp) / name.replace(" ", "_"),
                args.customers,
                workers,
                latency=args.latency,
                page_size=args.page_size,
            )
            sides[name] = side
            calls = sum(side.calls.values())
            print(
                f"{name:12} wall {side.wall:7.1f} s  status {side.report['status']}  "
                f"read {side.report['counts']['read']:,}  data calls {calls} "
                f"{dict(sorted(side.calls.items()))}  CRM state {side.crm[:12]}",
                flush=True,
            )
    one, two, alone = sides["1 worker"], sides["2 workers"], sides["one process"]
    print(f"wall ratio       2 workers / 1 worker = {two.wall / one.wall:.2f}  (target <= 0.6)")
    print(f"                 2 workers / one process = {two.wall / alone.wall:.2f}")
    same_calls = one.calls == two.calls == alone.calls
    same_state = one.crm == two.crm == alone.crm
    print(f"API calls equal  {same_calls}   CRM end state equal  {same_state}")


if __name__ == "__main__":
    main()
