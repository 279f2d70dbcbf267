"""Tiering-core throughput (docs/targets.md P3; issue 18's targets), stage by stage.

Every figure is CPU time of this one process on one thread (the honest "one core" figure on
a shared machine; wall time is shown too), median of ``--runs``. The stages, all measured
side by side in one run over the same generated customers:

  stdlib round trip  json.loads + json.dumps of each input line: the yardstick
  crmtier tier       the command's own ``run`` end to end: JSON Lines in, full Assessment
                     JSON Lines out (to /dev/null), and its ratio to the round trip
  ingest             JSON Lines -> validated cells (no model per record), chunk by chunk
  columnarise        cells -> numpy columns
  output lines       columns -> the command's Assessment JSON Lines
                     (``lines.assessment_lines``: evaluate, decide as columns, join
                     fragment columns), chunk by chunk: with ingest and columnarise,
                     where the command's time goes; then its two steps timed apart in
                     one pass: decide (``lines.decided``: evaluate, overrides, reason
                     texts in both languages, the reasons field, set-field columns, task
                     candidates) and write (``lines.lines``: the task rules, campaign
                     dedupe keys, reason and value fragments, the join)
  evaluate           columns -> every tier, score, risk level, reason and DQ mask
  decide_columns     columns -> decisions as columns (all actions; tier fields only), no
                     customer's decision made whole yet (DecisionColumns)
  decide_batch       validated profiles -> decisions, as the sync calls it (its action
                     kinds: tier fields only, and all), the collector paused as the
                     sync command pauses it, every customer's decision made whole (what
                     the sync read before the planner read columns)
  decisions as the   the same call, then what the sync's planner reads
  sync uses them     (sync.planning.PagePlanner.plan): the decisions without their
                     actions (reasons kept as cells) and the set_field values, both from
                     the columns, and the whole decision only where tasks and campaigns
                     are planned (all actions)
  assess_batch       the same, validated into Assessment models
  assess             one customer end to end (the webhook path: a batch of one)

Targets (issue 18): crmtier tier >= 50,000/s and <= 1.5x the round trip; decisions as the
sync uses them >= 300,000/s; one customer p99 <= 5 ms.

Run: python bench/core.py [--customers 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import numpy as np

from connectors.sandbox.generator import generate
from crmtier.commands.tier import read_jsonl, run
from tiering_core import ingest
from tiering_core import lines as output
from tiering_core.collector import collector_paused
from tiering_core.columns import Columns
from tiering_core.decision_columns import DecisionColumns
from tiering_core.engine import assess, assess_batch, decide_batch, decide_columns, evaluate
from tiering_core.lines import assessment_lines
from tiering_core.models import ACTION_KINDS, ActionKind, AssessmentData, CustomerProfile
from tiering_core.policy import Policy, load_policy

AS_OF = date(2026, 11, 28)
FIELDS_ONLY: frozenset[ActionKind] = frozenset({"set_field"})


def read_as_the_sync(decided: Sequence[AssessmentData], kinds: frozenset[ActionKind]) -> None:
    """What the sync's planner reads of the decisions (``PagePlanner.plan``), every field
    mapped: each customer's field values, and its decision without actions (fields only)
    or whole (tasks and campaigns are planned from whole decisions)."""
    assert isinstance(decided, DecisionColumns)
    decided.field_rows(decided.set_fields)
    if kinds == FIELDS_ONLY:
        decided.summaries()
    else:
        for i in range(len(decided)):
            decided.row(i)


def median_seconds(fn: Callable[[], Any], runs: int) -> tuple[float, float]:
    """Median (CPU seconds, wall seconds) of ``runs`` calls."""
    cpu, wall = [], []
    for _ in range(runs):
        gc.collect()
        c, w = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return statistics.median(cpu), statistics.median(wall)


def output_steps(
    chunks: Sequence[Columns], policy: Policy, runs: int
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Median (CPU, wall) seconds of the output lines' two steps over every chunk:
    ``lines.decided`` and ``lines.lines`` of its decisions, each chunk's decisions
    dropped before the next is decided, as the command drops them (held for every
    chunk, they would be ~1,000 objects a customer kept alive)."""
    decide: list[tuple[float, float]] = []
    write: list[tuple[float, float]] = []
    for _ in range(runs):
        gc.collect()
        spent = [0.0, 0.0, 0.0, 0.0]
        with collector_paused():
            for columns in chunks:
                c, w = time.process_time(), time.perf_counter()
                decided = output.decided(columns, policy, AS_OF)
                c2, w2 = time.process_time(), time.perf_counter()
                output.lines(decided)
                spent[0] += c2 - c
                spent[1] += w2 - w
                spent[2] += time.process_time() - c2
                spent[3] += time.perf_counter() - w2
                del decided
        decide.append((spent[0], spent[1]))
        write.append((spent[2], spent[3]))
    return _medians(decide), _medians(write)


def _medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def rate(label: str, n: int, seconds: tuple[float, float], target: str = "") -> float:
    cpu, wall = seconds
    print(
        f"{label:<52} {n:>9,}: {n / cpu:>10,.0f} /s CPU ({cpu:7.3f} s), "
        f"{n / wall:>10,.0f} /s wall  {target}"
    )
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000, help="generated customers")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--evaluate", type=int, default=1_000_000, help="rows for the vectorised evaluation"
    )
    parser.add_argument("--single", type=int, default=2_000, help="single-customer calls")
    args = parser.parse_args()
    policy = load_policy()
    print(
        f"policy {policy.version}; median of {args.runs} runs; one process, one thread; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs\n"
    )
    raw = [{"id": c.id, **c.profile} for c in generate(args.customers, seed=42)]
    lines = [(json.dumps(r, ensure_ascii=False) + "\n").encode() for r in raw]
    gc.freeze()  # the inputs are long-lived: keep them out of the collector's scans

    def round_trip() -> None:
        for line in lines:
            json.dumps(json.loads(line))

    with open(os.devnull, "w", encoding="utf-8") as sink, tempfile.TemporaryFile("w+") as err:

        def tier() -> None:
            run(iter(lines), "jsonl", policy, AS_OF, sink, err)

        n = len(lines)
        base = rate("stdlib JSON round trip (loads + dumps)", n, median_seconds(round_trip, 1))
        cost = rate(
            "crmtier tier, JSONL -> Assessment JSONL",
            n,
            median_seconds(tier, args.runs),
            "target >= 50,000/s",
        )
        print(f"{'  crmtier tier / stdlib round trip':<52} {cost / base:>9.2f}x  target <= 1.5x")

    chunks: list[ingest.Chunk] = []

    def ingest_jsonl() -> None:
        chunks.clear()
        with collector_paused():
            ingest.in_chunks(read_jsonl(iter(lines)), ingest.from_json_lines, chunks.append)

    rate("ingest, JSON Lines -> validated cells", n, median_seconds(ingest_jsonl, args.runs))
    cells = chunks[0].cells
    rate(
        f"columnarise (cells -> numpy), chunks of {cells.n:,}",
        cells.n,
        median_seconds(lambda: Columns.from_cells(cells, policy), args.runs),
    )
    chunk_columns = [Columns.from_cells(c.cells, policy) for c in chunks]

    def output_lines() -> None:
        with collector_paused():
            for columns in chunk_columns:
                assessment_lines(columns, policy, AS_OF)

    rated = sum(columns.n for columns in chunk_columns)
    rate(
        "output lines, columns -> Assessment JSON Lines",
        rated,
        median_seconds(output_lines, args.runs),
    )
    decide, write = output_steps(chunk_columns, policy, args.runs)
    rate("  decide for the lines (lines.decided)", rated, decide)
    rate("  write the lines (lines.lines: tasks, keys, join)", rated, write)
    cols = Columns.from_cells(cells, policy)
    tiled = cols.take(np.arange(args.evaluate) % cols.n)
    rate(
        "evaluate, vectorised",
        args.evaluate,
        median_seconds(lambda: evaluate(tiled, policy, AS_OF), args.runs),
        "target >= 1,000,000/s",
    )
    for label, kinds in (("all actions", None), ("tier fields only", FIELDS_ONLY)):

        def columns_decided(kinds: frozenset[ActionKind] | None = kinds) -> None:
            with collector_paused():
                if kinds is None:
                    decide_columns(cols, policy, AS_OF)
                else:
                    decide_columns(cols, policy, AS_OF, kinds=kinds)

        rate(
            f"decide_columns (columns only), {label}",
            cols.n,
            median_seconds(columns_decided, args.runs),
        )

    readable = set(cells.ids)
    profiles = [CustomerProfile.model_validate(r) for r in raw if r["id"] in readable]
    for label, kinds in (("tier fields only", FIELDS_ONLY), ("all actions", ACTION_KINDS)):

        def whole(kinds: frozenset[ActionKind] = kinds) -> None:
            with collector_paused():
                list(decide_batch(profiles, policy, AS_OF, kinds=kinds))

        def as_the_sync(kinds: frozenset[ActionKind] = kinds) -> None:
            with collector_paused():
                read_as_the_sync(decide_batch(profiles, policy, AS_OF, kinds=kinds), kinds)

        rate(
            f"decide_batch, every decision whole, {label}",
            len(profiles),
            median_seconds(whole, args.runs),
        )
        rate(
            f"decisions as the sync uses them, {label}",
            len(profiles),
            median_seconds(as_the_sync, args.runs),
            "target >= 300,000/s",
        )

    def assessed() -> None:
        with collector_paused():
            assess_batch(profiles, policy, AS_OF)

    rate("assess_batch (Assessment models)", len(profiles), median_seconds(assessed, args.runs))

    for profile in profiles[:100]:
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
            f"{'assess, one customer (' + clock + ')':<52} {len(samples):>9,} calls: "
            f"p50 {q[49] / 1e3:,.0f} us, p99 {q[98] / 1e3:,.0f} us  target p99 <= 5,000 us"
        )
    print(
        f"\nload average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs "
        "(wall figures include time other processes held the CPU)"
    )


if __name__ == "__main__":
    main()
