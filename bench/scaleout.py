"""Scale-out benchmark: N ``crmtier serve`` processes draining one webhook burst (issue 22).

    python bench/scaleout.py                          # 2,000 changed customers, 1 then 2 serves
    python bench/scaleout.py --customers 500 --latency 0.05
    python bench/scaleout.py --repos /old/checkout,.   # side by side: each serve count on each

For each number of serves (``--serves``, default ``1,2``) the bench starts from the same
state: a fresh Salesforce sandbox (``--customers`` seeded, ``--latency`` seconds added to
every API call, so the CRM rather than this box is the bottleneck), a fresh PostgreSQL
schema as the state store, and one full ``crmtier sync``. Then every customer is changed in
the sandbox (deposits to 9,000,000: a new tier, fields, tasks and campaign moves to write),
the serves are started (``--no-sync``: only their inbox workers act) and, once all listen,
one event per changed customer is put in the inbox in one transaction. The clock runs from
that commit until the inbox is empty.

Printed per run: wall time, events by outcome across the serves (``busy`` = bounced because
someone else held the stream or the customer; not counted as an attempt), a digest of what
the CRM shows in the write-back fields of every changed customer afterwards (the same for
every serve count: the same end state), and the CRM's write calls.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from connectors.sandbox.base import Sandbox, open_sandbox  # noqa: E402
from connectors.webhook_events import ChangeEvent  # noqa: E402
from sync.inbox import Inbox  # noqa: E402
from sync.store import StateStore  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1/test"
CRMTIER = str(Path(sys.executable).parent / "crmtier")
RICH = {"assets.deposits": 9_000_000, "assets.investments": 0, "assets.insurance": 0}
EVENTS = re.compile(r'^crmtier_webhook_events_total\{outcome="([^"]+)"\} (\d+)', re.M)


def _config(sandbox: Sandbox, tmp: Path, schema: str) -> tuple[Path, dict[str, str]]:
    text, env = sandbox.crmtier_config()
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    text = re.sub(r"(?m)^\[state\]\n(url = .*\n)?", "", text) + f'\n[state]\nurl = "{url}"\n'
    path = tmp / "crmtier.toml"
    path.write_text(text)
    return path, env


def _env(repo: Path, extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **extra, "PYTHONPATH": str(repo)}


def _start_serve(config: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [CRMTIER, "serve", "--config", str(config), "--listen", "127.0.0.1:0", "--no-sync"],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"serve did not start; see {log}")
    return proc, json.loads(line)["listen"]


def _outcomes(url: str) -> Counter[str]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    out: Counter[str] = Counter()
    for outcome, n in EVENTS.findall(text):
        out[outcome] += int(n)
    return out


def one_run(serves: int, repo: Path, args: argparse.Namespace) -> dict[str, object]:
    schema = f"crmtier_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    procs: list[subprocess.Popen[str]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="crmtier-scaleout-") as tmp_name:
            tmp = Path(tmp_name)
            sandbox = open_sandbox(
                "salesforce", data_dir=tmp / "crm", latency=args.latency, query_batch_size=200
            )
            sandbox.seed(args.customers)
            sandbox.start()
            try:
                config, crm_env = _config(sandbox, tmp, schema)
                env = _env(repo, crm_env)
                sync = subprocess.run(
                    [CRMTIER, "sync", "--config", str(config)],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if sync.returncode != 0:
                    raise SystemExit(f"initial sync failed: {sync.stderr[-1000:]}")
                ids = [sandbox.customer_id(i) for i in range(args.customers)]  # type: ignore[attr-defined]
                for cid in ids:
                    sandbox.edit_customer(cid, {**RICH, "aum_avg_3m": None})
                writes_before = sandbox.write_calls()
                urls = []
                for n in range(serves):
                    proc, url = _start_serve(config, env, tmp / f"serve{n}.log")
                    procs.append(proc)
                    urls.append(url)
                state_url = f"{PG_URL}?options=-csearch_path%3D{schema}"
                store = StateStore(
                    sa.create_engine(state_url, connect_args={"options": f"-csearch_path={schema}"})
                )
                inbox = Inbox(store)
                now = datetime.now(UTC)
                events = [[ChangeEvent("salesforce", f"bench-{cid}", cid)] for cid in ids]
                t0 = time.perf_counter()
                inbox.add(events, now)
                while inbox.stats(datetime.now(UTC)).depth:
                    if time.perf_counter() - t0 > args.timeout:
                        raise SystemExit(
                            f"{serves} serve(s): inbox not drained in {args.timeout} s"
                        )
                    time.sleep(0.05)
                wall = time.perf_counter() - t0
                outcomes: Counter[str] = Counter()
                for url in urls:
                    outcomes.update(_outcomes(url))
                outcomes.pop("accepted", None)
                shown = json.dumps(
                    [sandbox.written(cid) for cid in ids], sort_keys=True, default=str
                )
                store.close()
                return {
                    "repo": repo.name,
                    "serves": serves,
                    "customers": len(ids),
                    "wall_s": round(wall, 2),
                    "outcomes": dict(outcomes),
                    "busy": outcomes.get("busy", 0),
                    "crm_state": hashlib.sha256(shown.encode()).hexdigest()[:12],
                    "write_calls": sandbox.write_calls() - writes_before,
                }
            finally:
                for proc in procs:
                    proc.send_signal(signal.SIGTERM)
                for proc in procs:
                    proc.wait(timeout=120)
                sandbox.stop()
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds added per CRM call")
    parser.add_argument("--serves", default="1,2", help="comma-separated serve counts")
    parser.add_argument("--repeat", type=int, default=1, help="runs per serve count")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--repos", default=str(REPO), help="comma-separated checkouts whose code the serves run"
    )
    args = parser.parse_args()
    repos = [Path(r).resolve() for r in args.repos.split(",")]
    print(
        f"# {args.customers} changed customers, {args.latency * 1000:.0f} ms per CRM call, "
        f"serves from {', '.join(map(str, repos))}"
    )
    for _ in range(args.repeat):
        for serves in (int(s) for s in args.serves.split(",")):
            for repo in repos:
                print(json.dumps(one_run(serves, repo, args)), flush=True)


if __name__ == "__main__":
    main()
