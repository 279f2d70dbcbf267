"""End-to-end sync figures (docs/targets.md P1, P4).

A Salesforce sandbox with N changed customers and a modelled per-call latency runs in a
child process; ``crmtier sync`` runs as its own process against it with ``write_concurrency``
calls in flight (default 4), exactly as an operator would run it. Printed:

  wall time        the sync process, start to exit                (P4: <= 30 s)
  sync CPU         user+system seconds of the sync process (load-independent)
  per customer     sync CPU over customers read (issue 18's "CPU per customer")
  sandbox CPU      user+system seconds the loopback CRM spent serving the run: it shares
                   the machine's cores with the sync, as P4's CI box does
  peak RSS         of the sync process (getrusage of the child)   (P4: <= 512 MiB)
  API calls        by kind, as the connector counted them
  minimum          the run report's, by kind (Capabilities.minimum_calls: full read
                   pages, full write batches)
  ratio            used / minimum, for field writes and overall   (P1: 1.00)
  box speed        CPU seconds of a fixed pure-Python workload just before and just after
                   the run. One VM's speed drifted by up to 1.6x within an hour (the same
                   code took 50 s and 79 s of sync CPU); when this figure moves between the
                   runs of an A/B pair, or within a run, the pair compares the box, not the
                   code

P4's arithmetic (500 write calls ~ 6.25 s of network) counts field updates only; by default
the run also creates the follow-up tasks and campaign memberships a first sync makes (about
four times as many write calls). ``--fields-only`` turns those off to measure P4's scenario.
Field updates above ``[crm] bulk_threshold`` (2,000) go through Bulk API 2.0 jobs, which
the field-write line counts with the Collections calls.

``--after fields`` or ``--after full`` first runs an unmeasured first sync (writing fields
only, or fields, tasks and memberships), then measures ``crmtier sync --full`` with the
write-back ``--fields-only`` says: a re-tier of a book crmtier already wrote. After a full
first sync most customers hold campaign memberships crmtier made, which a fields-only run
must read to withdraw them on a sanctions hit (``sync.planner.withdrawn_memberships``);
the two ``--after`` runs differ by that. The counts, CPU and API calls are the measured
run's alone; peak RSS is the larger of the two runs'.

``--wrap 'memray run --native -q -o sync.bin'`` runs the sync process under a profiler (or
any command that takes the program and its arguments after it); what the wrapper writes to
stderr is printed after the run.

Run: python bench/sync.py [--customers 100000] [--latency 0.05] [--concurrency 4] [--fields-only]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

from connectors.contract import data_calls

CRMTIER = str(Path(sys.executable).parent / "crmtier")


def _serve(data_dir: str, customers: int, latency: float, pipe: Connection) -> None:
    """Child process: seed and serve the sandbox until told to stop."""
    from connectors.sandbox.base import open_sandbox

    sandbox = open_sandbox("salesforce", data_dir=Path(data_dir), latency=latency)
    started = time.perf_counter()
    sandbox.seed(customers)
    seeded = time.perf_counter() - started
    sandbox.start()
    text, env = sandbox.crmtier_config()
    idle_cpu = _cpu_seconds()
    pipe.send((text, env, seeded))
    while pipe.recv() == "counts":  # the calls and CPU so far, until "stop"
        pipe.send((sandbox.server.calls.counts(), _cpu_seconds() - idle_cpu))
    sandbox.stop()


def _cpu_seconds() -> float:
    """This process's user+system seconds so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _reference_cpu() -> float:
    """CPU seconds of a fixed workload of the sync's kinds (JSON, sorting, hashing, small
    dicts): the box's speed right now."""
    started = time.process_time()
    rows = [
        {"id": f"C{i:09d}", "assets": i * 1.5, "tier": "gold", "codes": ["A", "B"]}
        for i in range(20_000)
    ]
    for _ in range(4):
        back = json.loads(json.dumps(rows))
        back.sort(key=lambda r: (-r["assets"], r["id"]))
        for row in back:
            hashlib.sha256(row["id"].encode()).hexdigest()
    return time.process_time() - started


def _fields_only(text: str) -> str:
    """The sandbox's config with tasks and campaign memberships switched off."""
    for side_effect in ("tasks", "campaign_memberships"):
        if f"{side_effect} = true" not in text:
            sys.exit(f"the sandbox config has no '{side_effect} = true' to turn off")
        text = text.replace(f"{side_effect} = true", f"{side_effect} = false")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per call")
    parser.add_argument("--concurrency", type=int, default=4, help="write calls in flight")
    parser.add_argument(
        "--fields-only", action="store_true", help="write tier fields only (P4's scenario)"
    )
    parser.add_argument(
        "--after",
        choices=("fields", "full"),
        help="measure a --full re-tier after an unmeasured first sync of this write-back",
    )
    parser.add_argument(
        "--wrap",
        default="",
        help="a command to run crmtier sync under, e.g. 'memray run --native -o sync.bin' "
        "(a native heap profile of the sync process itself)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        server = ctx.Process(
            target=_serve, args=(tmp, args.customers, args.latency, child), daemon=True
        )
        server.start()
        text, env, seeded = parent.recv()
        config = Path(tmp) / "crmtier.toml"
        full_text = text
        if args.fields_only:
            text = _fields_only(text)
        tail = f"\n[sync]\nwrite_concurrency = {args.concurrency}\n"
        config.write_text(text + tail, encoding="utf-8")
        print(f"seeded {args.customers:,} customers in {seeded:.1f} s; latency {args.latency}s")
        command = [CRMTIER, "sync", "--config", str(config), "--json"]
        before: tuple[dict[str, int], float] = ({}, 0.0)
        cpu_before = 0.0
        if args.after:
            first = Path(tmp) / "first.toml"
            first_text = _fields_only(full_text) if args.after == "fields" else full_text
            first.write_text(first_text + tail, encoding="utf-8")
            subprocess.run(
                [CRMTIER, "sync", "--config", str(first), "--json"],
                env={**os.environ, **env},
                capture_output=True,
                check=True,
            )
            parent.send("counts")
            before = parent.recv()
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_before = usage.ru_utime + usage.ru_stime
            command.append("--full")
            print(f"first sync ({args.after}) done; measuring a --full re-tier")

        reference_before = _reference_cpu()
        started = time.perf_counter()
        proc = subprocess.run(
            [*shlex.split(args.wrap), *command],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_kib, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu_before
        reference_after = _reference_cpu()
        parent.send("counts")
        server_calls, server_cpu = parent.recv()
        server_calls = {k: n - before[0].get(k, 0) for k, n in server_calls.items()}
        server_cpu -= before[1]
        parent.send("stop")
        server.join(timeout=30)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            sys.exit(f"sync exited {proc.returncode}")
        if args.wrap:  # what the wrapper said: the sync's own stderr is JSON log lines
            print(*(ln for ln in proc.stderr.splitlines() if not ln.startswith("{")), sep="\n")
        report = json.loads(proc.stdout.strip().splitlines()[-1])

    counts, used, minimum = report["counts"], report["api_calls"], report["min_calls"]
    writes = counts["writes"]
    field_calls = used.get("collections_update", 0) + used.get("bulk", 0)
    total_min = sum(minimum.values())
    print(
        f"status           {report['status']}  read {counts['read']:,}  written "
        f"{counts['written']:,}  writes {writes}"
    )
    print(f"wall time        {wall:.1f} s   (P4 target <= 30 s)")
    print(f"sync CPU         {cpu:.1f} s user+system (the machine's other load inflates wall)")
    print(
        f"per customer     {cpu / max(1, counts['read']) * 1e6:.0f} us of sync CPU (the crmtier "
        "process only, start-up included; the sandbox's below is not ours)"
    )
    print(f"sandbox CPU      {server_cpu:.1f} s serving the run (the loopback CRM shares the box)")
    print(
        f"box speed        reference workload {reference_before:.3f} s before the run, "
        f"{reference_after:.3f} s after"
    )
    print(f"peak RSS         {peak_kib / 1024:.0f} MiB   (P4 target <= 512 MiB)")
    print(f"API calls        {sum(used.values())} {dict(sorted(used.items()))}")
    print(f"server counted   {dict(sorted(server_calls.items()))}")
    print(f"minimum          {total_min} {dict(sorted(minimum.items()))}")
    field_min = minimum.get("field_update", 0)
    print(
        f"field writes     {field_calls} calls for {writes.get('field_update', 0):,} "
        f"customers; minimum {field_min}; ratio "
        f"{field_calls / field_min if field_min else float('nan'):.2f}"
    )
    print(f"all data calls   ratio {data_calls(used) / total_min:.2f}")


if __name__ == "__main__":
    main()
