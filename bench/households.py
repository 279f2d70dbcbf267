"""What household tiering costs (issue 21 §1): the vectorised rules on top of ``evaluate``,
and ``HouseholdLinks.build`` (the per-link loop), on the synthetic book with its seeded
households (connectors/sandbox/households.py: about 45 % of customers in a household).

  evaluate            columns -> every decision, no households
  evaluate+households the same with the household lift and review
  links.build         a batch's links as columns

Run: python bench/households.py [--customers 200000] [--runs 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np

from connectors.sandbox.generator import generate
from connectors.sandbox.households import household_links
from tiering_core.columns import Columns
from tiering_core.engine import evaluate
from tiering_core.models import CustomerProfile
from tiering_core.policy import load_policy
from tiering_core.rules.household import HouseholdLinks, Link

AS_OF = date(2026, 11, 28)


def best_of(fn: Callable[[], Any], runs: int) -> float:
    """Fastest CPU seconds of ``runs`` calls (the least disturbed by other processes)."""
    times = []
    for _ in range(runs):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    policy = load_policy()
    synthetic = list(generate(args.customers, dirty_share=0.0))  # dirty rows fail validation
    profiles = [CustomerProfile.model_validate({**c.profile, "id": c.id}) for c in synthetic]
    ids = [p.id for p in profiles]
    individuals = [c.index for c in synthetic if c.profile.get("kind") != "corporate"]
    links = [
        Link(ids[lk.member], ids[lk.household], lk.role) for lk in household_links(individuals)
    ]
    hh = HouseholdLinks.build(ids, links, policy)
    cols = Columns.from_profiles(profiles, policy)
    n = args.customers
    plain = best_of(lambda: evaluate(cols, policy, AS_OF), args.runs)
    with_hh = best_of(lambda: evaluate(cols, policy, AS_OF, hh), args.runs)
    build = best_of(lambda: HouseholdLinks.build(ids, links, policy), args.runs)
    lifted = evaluate(cols, policy, AS_OF, hh)
    count = sum(
        int(np.count_nonzero(rc.mask)) for rc in lifted.reasons if rc.code == "HOUSEHOLD_AUM"
    )
    print(f"customers {n:,}  links {len(links):,}  households {hh.size:,}  lifted {count:,}")
    print(f"evaluate             {n / plain:12,.0f} customers/s")
    print(f"evaluate+households  {n / with_hh:12,.0f} customers/s  (+{with_hh / plain - 1:.0%})")
    print(f"links.build          {len(links) / build:12,.0f} links/s")


if __name__ == "__main__":
    main()
