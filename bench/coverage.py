"""Advisor-coverage planning throughput (issue 21 §2): ``tiering_core.coverage.plan`` on a
book of private and wealth clients, most with an RM, some without, under capacity.

Run: python bench/coverage.py [--clients 100000] [--advisors 700] [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from tiering_core.coverage import Advisor, Client, plan
from tiering_core.policy_relations import CoveragePolicy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--advisors", type=int, default=700)
    parser.add_argument("--uncovered", type=float, default=0.1, help="share without an RM")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(7)
    advisors = [Advisor(f"RM{k:05d}") for k in range(args.advisors)]
    clients = [
        Client(
            f"C{k:09d}",
            "private" if rng.random() < 0.2 else "wealth",
            None if rng.random() < args.uncovered else f"RM{rng.randrange(args.advisors):05d}",
        )
        for k in range(args.clients)
    ]
    policy = CoveragePolicy()
    times = []
    for _ in range(args.runs):
        start = time.process_time()
        result = plan(clients, advisors, policy)
        times.append(time.process_time() - start)
    cpu = statistics.median(times)
    print(
        f"coverage.plan {args.clients:,} clients, {args.advisors} RMs: "
        f"{args.clients / cpu:,.0f} clients/s CPU ({cpu:.3f} s, median of {args.runs}); "
        f"{len(result.proposals):,} proposed, {len(result.waiting):,} waiting"
    )


if __name__ == "__main__":
    main()
