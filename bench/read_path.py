"""CPU of the CRM page -> records path alone (issue 18 item 2, read side).

Seeds N customers in a sandbox (Salesforce, Zoho or FXiaoke) and reads them once through
the real connector, keeping every raw record its read hands to the connector's record
builder (and, where the client speaks HTTP through ``requests``, every response body).
Then, with no network and no sandbox running, it times crmtier's own work on them:

  decode           the page bodies to JSON as the client decodes them (Salesforce)
  records          the connector's record builder on every raw record (Salesforce's
                   ``_records`` a page at a time, Zoho's and FXiaoke's ``_record``):
                   the mapping to a canonical profile, its DQ issues, the CRM's
                   write-back values
  input_hash       ``sync.reader.input_hash`` of every record (the reader's intake)

Figures are CPU time (``time.process_time``) per customer, best of ``--repeat`` passes,
with the cyclic collector paused as ``crmtier sync`` nearly does (``fewer_collections``).
Run: python bench/read_path.py [--crm salesforce] [--customers 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic_core

# Run as a script, bench/ comes first on the path and bench/sync.py would shadow the sync
# package: import the project from the repository root instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != _HERE)]

from connectors.mapping import FieldMapping, WritebackConfig  # noqa: E402
from connectors.registry import build_connector  # noqa: E402
from connectors.sandbox.base import open_sandbox  # noqa: E402
from sync.reader import input_hash  # noqa: E402


def _best(repeat: int, work: Callable[[], Any]) -> float:
    """The least CPU seconds of ``repeat`` runs of ``work`` (a loaded box only adds)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
        gc.enable()
    return best


def _builder(connector: Any, rows: list[Any]) -> Callable[[list[Any]], list[Any]]:
    """The connector's record builder, which from now on also keeps every raw record it
    is given in ``rows``: Salesforce builds a page at a time (``_records``), Zoho and
    FXiaoke a record at a time (``_record``). Returns the builder itself, over a list."""
    if hasattr(connector, "_records"):
        page = connector._records

        def keep_page(raws: Any) -> Any:
            rows.extend(raws)
            return page(raws)

        connector._records = keep_page
        return page  # type: ignore[no-any-return]
    one = connector._record

    def keep(raw: Any) -> Any:
        rows.append(raw)
        return one(raw)

    connector._record = keep
    return lambda raws: [one(raw) for raw in raws]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crm", default="salesforce", choices=("salesforce", "zoho", "fxiaoke"))
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    rows: list[Any] = []
    bodies: list[bytes] = []
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = open_sandbox(args.crm, data_dir=Path(tmp))
        sandbox.seed(args.customers)
        sandbox.start()
        try:
            text, env = sandbox.crmtier_config()
            os.environ.update(env)
            config = tomllib.loads(text)
            mapping = FieldMapping.model_validate(config["mapping"])
            writeback = WritebackConfig.model_validate(config["writeback"])
            connector: Any = build_connector(config["crm"], mapping, writeback)
            build = _builder(connector, rows)
            session = getattr(connector.client, "session", None)
            if session is not None:
                session.hooks["response"].append(lambda r, *a, **k: bodies.append(r.content))
            for _ in connector.read_changed(None):
                pass
        finally:
            sandbox.stop()

    pages = [b for b in bodies if b"access_token" not in b]  # the data calls, not the login
    records = build(rows)
    work: dict[str, Callable[[], Any]] = {
        "records": lambda: build(rows),
        "input_hash": lambda: [input_hash(r.profile, "v1") for r in records],
    }
    if pages:
        work = {"decode": lambda: [pydantic_core.from_json(b) for b in pages], **work}
    print(f"{args.crm}: {len(rows):,} customers, {len(pages)} page bodies kept")
    for name, step in work.items():
        seconds = _best(args.repeat, step)
        print(f"{name:<12} {seconds / max(1, len(rows)) * 1e6:8.1f} us/customer CPU")


if __name__ == "__main__":
    main()
