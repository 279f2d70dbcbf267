"""CPU to turn a plan's field updates into a Bulk API 2.0 job body (docs/operations.md,
"Writing a bulk job"): ``PlanWriter._write_fields_bulk`` from the updates to the CSV text
and back to results, with a stand-in client that takes the body and reports no failed row,
so no HTTP and no sandbox is timed.

The updates are shaped as a sync's: seven write-back fields (four picklists, a score, a
date, a flag) and a reasons line whose text holds commas, as the default policy's reasons
do ("AUM 32,546.72 below affluent floor 50,000"). Prints µs of CPU an update, best of
``--repeat`` runs (CPU time: the box is shared).

Run: PYTHONPATH=. python bench/bulk_body.py [--updates 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from typing import Any

from connectors.contract import FieldUpdate
from connectors.mapping import load_default_mapping
from connectors.salesforce.writes import PlanWriter


class _Client:
    """Takes each job body and answers that no row failed."""

    def __init__(self) -> None:
        self.bytes = 0

    def bulk_update(self, sobject: str, body: str, records: int) -> list[dict[str, str]]:
        self.bytes += len(body)
        return []


def updates(n: int) -> list[FieldUpdate]:
    tiers = ("mass", "affluent", "wealth", "private")
    return [
        FieldUpdate(
            f"001{i:015d}",
            {
                "value_tier": tiers[i % 4],
                "needs_tier": tiers[(i + 1) % 4],
                "credit_risk": "low",
                "ops_risk": "medium",
                "value_score": 40 + (i % 600) / 10,
                "next_review": date(2027, 1 + i % 12, 1 + i % 28),
                "edd_required": i % 7 == 0,
                "reasons": f"AUM_BELOW_FLOOR: AUM {30_000 + i:,}.72 below affluent floor 50,000",
            },
        )
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    default = load_default_mapping("salesforce")
    client = _Client()
    writer: Any = PlanWriter(client, None, default.mapping, default.writeback, None)  # type: ignore[arg-type]
    plan = updates(args.updates)
    best = float("inf")
    for _ in range(args.repeat):
        started = time.process_time()
        pending = [(i, u, f) for i, u in enumerate(plan) if (f := writer._crm_fields(u))]
        results = writer._write_fields_bulk(pending)
        best = min(best, time.process_time() - started)
        assert len(results) == len(plan) and all(r.ok for r in results.values())
    print(
        f"{args.updates} updates, plan to job body:",
        f"{best / args.updates * 1e6:.2f} µs CPU an update",
    )


if __name__ == "__main__":
    main()
