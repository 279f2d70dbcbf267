"""What tier overrides cost the core (issue 20 §3): the override step and decide_batch on a
generated book with no overrides, and with a share of customers carrying an approved one.

A book without overrides pays nothing (its columns hold no override cells, and the step
returns the evaluation untouched); with overrides, one pass over the override cells and
one of numpy over the batch. Figures go to docs/operations.md.

Run: python bench/overrides.py [--customers 100000] [--share 0.01] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime, timedelta

from bench.core import median_seconds
from connectors.sandbox.generator import generate
from tiering_core.columns import Columns
from tiering_core.engine import decide_batch, evaluate
from tiering_core.models import CustomerProfile, Override
from tiering_core.policy import load_policy
from tiering_core.rules import override

AS_OF = date(2026, 11, 28)


def with_overrides(book: list[CustomerProfile], share: float) -> list[CustomerProfile]:
    """Every ``1/share``-th customer with an approved override to private, a third of them
    self-approved (refused, with a task)."""
    step = max(1, round(1 / share)) if share > 0 else 0
    out = []
    for i, p in enumerate(book):
        if step and i % step == 0:
            checker = "005RM" if (i // step) % 3 == 0 else "005HEAD"
            block = {
                "value_tier": "private",
                "expires": AS_OF + timedelta(days=60),
                "approved": True,
                "maker_id": "005RM",
                "checker_id": checker,
                "approved_at": datetime(2026, 11, 20, 9),
            }
            p = p.model_copy(update={"override": Override.model_validate(block)})
        out.append(p)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--share", type=float, default=0.01)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    policy = load_policy()
    plain = [
        CustomerProfile.model_validate({"id": c.id, **c.profile})
        for c in generate(args.customers, seed=7, dirty_share=0.0)
    ]
    lifted = with_overrides(plain, args.share)
    out: dict[str, object] = {"customers": args.customers, "override_share": args.share}
    for name, book in (("none", plain), ("with_overrides", lifted)):
        cols = Columns.from_profiles(book, policy)
        ev = evaluate(cols, policy, AS_OF)
        step, _ = median_seconds(
            lambda c=cols, e=ev: override.apply(e, c, policy, AS_OF), args.runs
        )
        full, _ = median_seconds(lambda b=book: decide_batch(b, policy, AS_OF), args.runs)
        out[f"override_step_s_{name}"] = round(step, 4)
        out[f"decide_batch_s_{name}"] = round(full, 3)
        out[f"decide_batch_per_s_{name}"] = round(args.customers / full)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
