"""``crmtier calibrate`` on 1,000,000 customers of history, stage by stage.

The history is the synthetic one with a planted ground truth (connectors/sandbox/history.py):
each customer at two snapshot dates, so 2,000,000 rows for 1,000,000 customers. It is
written once to a file (not timed), then read and calibrated through the code the command
runs. Reported per stage: wall seconds and this process's CPU seconds (scikit-learn is held
to one thread, so CPU time is the honest one-core figure on a shared machine), peak memory,
and the proposed floors against the planted ones.

Run: python bench/calibrate.py [--customers 1000000] [--history /tmp/history.jsonl]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connectors.sandbox.history import TRUE_AUM_FLOORS, history_lines
from crmtier.calibrate.history import read_history
from crmtier.calibrate.run import calibrate
from crmtier.commands.tier import open_input, read_jsonl
from tiering_core.policy import load_policy


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    c, w = time.process_time(), time.perf_counter()
    result = fn()
    return result, time.process_time() - c, time.perf_counter() - w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--history", type=Path, help="history file to reuse or create")
    args = parser.parse_args()
    path = args.history or Path(tempfile.gettempdir()) / f"crmtier-history-{args.customers}.jsonl"
    if not path.exists():
        with path.open("w", encoding="utf-8") as out:
            for line in history_lines(args.customers, seed=0):
                out.write(line + "\n")
    policy = load_policy()

    def read() -> Any:
        with open_input(path) as stream:
            return read_history(read_jsonl(stream), policy, "revenue", print)

    h, read_cpu, read_wall = timed(read)
    sensitive = ["region", "age_band", "gender"]
    result, cal_cpu, cal_wall = timed(lambda: calibrate(h, policy, {}, "revenue", sensitive))
    floors = result.report["proposal"]["aum_floors"]
    print(
        json.dumps(
            {
                "customers": args.customers,
                "rows": h.cols.n,
                "trained_on": result.report["rows"]["trained_on"],
                "read": {"cpu_s": round(read_cpu, 1), "wall_s": round(read_wall, 1)},
                "calibrate": {"cpu_s": round(cal_cpu, 1), "wall_s": round(cal_wall, 1)},
                "total": {
                    "cpu_s": round(read_cpu + cal_cpu, 1),
                    "wall_s": round(read_wall + cal_wall, 1),
                },
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                "floors": {
                    t: {"proposed": f["proposed"], "planted": TRUE_AUM_FLOORS[t]}
                    for t, f in floors.items()
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
