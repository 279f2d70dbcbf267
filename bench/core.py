"""Tiering-core throughput (docs/targets.md P3), measured stage by stage.

Targets on one core: validated ingest >= 100,000 records/s; vectorised tiering >=
1,000,000 customers/s; single-customer re-tier p99 <= 1 ms. The stages are reported
separately because they cost very different amounts:

  ingest        -> CustomerProfile (pydantic validation), per record, through the code
                crmtier tier runs (tiering_core/ingest.py): from a JSON Lines file; from
                dicts (as CSV rows become); and all kept alive (where Python's garbage
                collector, scanning a growing heap, costs more than validation)
  columnarise   profiles -> numpy columns (the one per-record loop of the batch path)
  evaluate      columns -> every tier, score, risk level, reason and DQ mask (vectorised)
  materialise   evaluation -> Assessment objects with reasons, DQ issues and CRM actions
  assess_batch  columnarise + evaluate + materialise, end to end
  decide_batch  the same decisions as plain data, unvalidated (what the sync layer plans
                from): the difference to assess_batch is what the models cost
  assess        one customer, end to end (the webhook path)

Run: python bench/core.py [--customers 1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from connectors.sandbox.generator import generate
from crmtier.commands.tier import open_input, read_jsonl
from tiering_core import ingest
from tiering_core.columns import Columns
from tiering_core.engine import assess, assess_batch, decide_batch, evaluate, materialise
from tiering_core.models import CustomerProfile
from tiering_core.policy import load_policy

AS_OF = date(2026, 11, 28)


def median_seconds(fn: Callable[[], Any], runs: int) -> tuple[float, float]:
    """Median (CPU seconds, wall seconds) of ``runs`` calls. CPU time is this process's
    own: on a shared machine it is the honest "one core" figure; wall time is shown too."""
    cpu, wall = [], []
    for _ in range(runs):
        gc.collect()
        c, w = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return statistics.median(cpu), statistics.median(wall)


def rate(label: str, n: int, seconds: tuple[float, float], target: str = "") -> None:
    cpu, wall = seconds
    print(
        f"{label:<44} {n:>9,}: {n / cpu:>12,.0f} /s CPU ({cpu:7.3f} s), "
        f"{n / wall:>12,.0f} /s wall  {target}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--customers", type=int, default=1_000_000, help="batch size for the vectorised evaluation"
    )
    parser.add_argument(
        "--distinct",
        type=int,
        default=100_000,
        help="distinct generated customers (tiled up to --customers)",
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--materialise",
        type=int,
        default=20_000,
        help="customers for the Assessment-building stages",
    )
    parser.add_argument("--single", type=int, default=5_000, help="single-customer calls")
    args = parser.parse_args()
    policy = load_policy()
    print(
        f"policy {policy.version}; median of {args.runs} runs; one process, one thread; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs\n"
    )

    raw = [{"id": c.id, **c.profile} for c in generate(args.distinct, seed=42)]
    # The input set is long-lived: keep it out of the garbage collector's scans (as a
    # service holding its working set would), so the figures measure validation, not GC
    # passes over a million generator-made dicts.
    gc.freeze()

    def ingest_jsonl(jsonl: Path) -> None:
        """Exactly as ``crmtier tier`` reads, minus the assessing: numbered lines of the file
        opened as the command opens it, each parsed and validated in one step by
        pydantic-core, through ``ingest.in_chunks`` (chunks of ``ingest.CHUNK``, the
        collector paused over each)."""
        with open_input(jsonl) as lines:
            ingest.in_chunks(read_jsonl(lines), ingest.from_json_lines, lambda chunk: None)

    def ingest_streamed() -> None:
        """Python dicts already in memory (as crmtier tier's CSV rows become), the same way."""
        ingest.in_chunks(enumerate(raw, start=1), ingest.from_records, lambda chunk: None)

    profiles: list[CustomerProfile] = []

    def ingest_all() -> None:
        """The same validation (``ingest.from_records``) as one chunk of every record, all
        kept alive and the collector left running (not ``in_chunks``), so the figure is what
        holding a whole input set costs. The previous run's profiles are dropped first, so
        the collector scans only this run's."""
        profiles.clear()
        profiles.extend(ingest.from_records(enumerate(raw, start=1)).profiles)

    with tempfile.TemporaryDirectory(prefix="crmtier-bench-") as tmp:  # ~1 KB a record
        jsonl = Path(tmp) / "customers.jsonl"
        jsonl.write_text("".join(json.dumps(r) + "\n" for r in raw), encoding="utf-8")
        rate(
            "ingest, JSON Lines file -> CustomerProfile",
            len(raw),
            median_seconds(lambda: ingest_jsonl(jsonl), args.runs),
            "target >= 100,000/s",
        )
    rate(
        f"ingest, dicts in chunks of {ingest.CHUNK:,}",
        len(raw),
        median_seconds(ingest_streamed, args.runs),
    )
    rate("ingest, all kept in memory (GC-bound)", len(raw), median_seconds(ingest_all, args.runs))
    print(f"  {len(raw) - len(profiles):,} of {len(raw):,} generated records were unreadable")

    cols = Columns.from_profiles(profiles, policy)
    rate(
        "columnarise (profiles -> numpy columns)",
        len(profiles),
        median_seconds(lambda: Columns.from_profiles(profiles, policy), args.runs),
    )

    tiled = cols.take(np.arange(args.customers) % cols.n)
    rate(
        f"evaluate, vectorised ({args.customers:,} customers)",
        args.customers,
        median_seconds(lambda: evaluate(tiled, policy, AS_OF), args.runs),
        "target >= 1,000,000/s",
    )

    subset = profiles[: args.materialise]
    sub_cols = Columns.from_profiles(subset, policy)
    ev = evaluate(sub_cols, policy, AS_OF)
    rate(
        "materialise (-> Assessment objects)",
        len(subset),
        median_seconds(lambda: materialise(subset, ev, policy, AS_OF), args.runs),
    )
    rate(
        "assess_batch end to end (with Assessments)",
        len(subset),
        median_seconds(lambda: assess_batch(subset, policy, AS_OF), args.runs),
    )
    rate(
        "decide_batch end to end (plain data, sync)",
        len(subset),
        median_seconds(lambda: decide_batch(subset, policy, AS_OF), args.runs),
    )

    for profile in profiles[:200]:
        assess(profile, policy, AS_OF)  # warm up
    wall, cpu = [], []
    for profile in profiles[: args.single]:
        w, c = time.perf_counter_ns(), time.thread_time_ns()
        assess(profile, policy, AS_OF)
        cpu.append(time.thread_time_ns() - c)
        wall.append(time.perf_counter_ns() - w)
    for clock, samples in (("CPU", cpu), ("wall", wall)):
        q = statistics.quantiles(samples, n=100)
        print(
            f"{'assess, one customer (' + clock + ')':<44} {len(samples):>9,} calls: "
            f"p50 {q[49] / 1e3:,.0f} us, p99 {q[98] / 1e3:,.0f} us  target p99 <= 1,000 us"
        )
    print(
        f"\nload average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs "
        "(wall figures include time other processes held the CPU)"
    )


if __name__ == "__main__":
    main()
