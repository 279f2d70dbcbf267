"""Salesforce sandbox + connector figures (docs/targets.md P1, P2, R8).

Seeds N synthetic customers, reads them all through the real connector (simple-salesforce
over HTTPS), then writes a tier change to a share of them twice: once through sObject
Collections, once above the bulk threshold, and prints records/s and the API calls each
step cost, read from the sandbox's own counters:

  seed              generator -> SQLite (customers/s)
  read              full incremental read, pages of 2,000 (customers/s, query calls)
  write_collections changed customers via collections (calls == ceil(changed / 200))
  write_bulk        the same via one Bulk API 2.0 job (calls independent of changed)

Run: python bench/salesforce.py [--customers 100000] [--changed 0.01]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
import tomllib
from pathlib import Path

from connectors.contract import FieldUpdate, WritePlan
from connectors.mapping import FieldMapping, WritebackConfig
from connectors.registry import build_connector
from connectors.sandbox.base import open_sandbox


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01, help="share of customers written")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        sandbox = open_sandbox("salesforce", data_dir=Path(tmp))
        started = time.perf_counter()
        sandbox.seed(args.customers)
        seed_s = time.perf_counter() - started
        sandbox.start()
        try:
            text, env = sandbox.crmtier_config()
            os.environ.update(env)
            config = tomllib.loads(text)
            mapping = FieldMapping.model_validate(config["mapping"])
            writeback = WritebackConfig.model_validate(config["writeback"])

            connector = build_connector(
                {**config["crm"], "bulk_threshold": args.customers + 1}, mapping, writeback
            )
            started = time.perf_counter()
            ids = [r.profile.id for page in connector.read_changed(None) for r in page.records]
            read_s = time.perf_counter() - started
            read_calls = sandbox.server.calls.count("query", "query_more")

            changed = max(1, int(len(ids) * args.changed))
            plan = WritePlan(
                field_updates=tuple(FieldUpdate(i, {"value_tier": "wealth"}) for i in ids[:changed])
            )
            sandbox.server.calls.reset()
            started = time.perf_counter()
            ok = sum(r.ok for r in connector.apply(plan))
            collections_s = time.perf_counter() - started
            collection_calls = sandbox.write_calls()
            connector.close()

            bulk = build_connector(
                {**config["crm"], "bulk_threshold": 1, "bulk_poll_seconds": 0.05},
                mapping,
                writeback,
            )
            sandbox.server.calls.reset()
            started = time.perf_counter()
            bulk_ok = sum(r.ok for r in bulk.apply(plan))
            bulk_s = time.perf_counter() - started
            bulk_calls = sum(
                n for k, n in sandbox.server.calls.counts().items() if k != "oauth_token"
            )
            bulk.close()
        finally:
            sandbox.stop()

    print(f"customers            {args.customers:>10,}")
    print(f"seed                 {args.customers / seed_s:>10,.0f} customers/s  ({seed_s:.1f} s)")
    print(
        f"read                 {len(ids) / read_s:>10,.0f} customers/s  ({read_calls} query calls)"
    )
    print(
        f"write_collections    {changed / collections_s:>10,.0f} records/s    "
        f"({collection_calls} calls, ceil(n/200) = {math.ceil(changed / 200)}, {ok} ok)"
    )
    print(
        f"write_bulk           {changed / bulk_s:>10,.0f} records/s    "
        f"({bulk_calls} calls, {bulk_ok} ok)"
    )


if __name__ == "__main__":
    main()
