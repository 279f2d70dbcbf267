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
  profile_text     ``sync.inputs.profile_text`` of every record (what the store keeps of a
                   decided customer)

and, within ``records``, the parts issue 18 item 2 (CRM pages as columns, no model per
record) would replace or keep:

  mapping          ``connectors.mapping.profile_from_crm`` alone, on every raw record
    validate       of which ``CustomerProfile.model_validate`` of the coerced values (the
                   model per record); the rest of ``mapping`` is the per-field coercion
  cells            ``Cells.from_profiles`` of every page's profiles (the pages as read), as
                   the sync's assessment gathers them again into columns

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

from connectors.mapping import FieldMapping, WritebackConfig, profile_from_crm  # noqa: E402
from connectors.registry import build_connector  # noqa: E402
from connectors.sandbox.base import open_sandbox  # noqa: E402
from sync.inputs import profile_text  # noqa: E402
from sync.reader import input_hash  # noqa: E402
from tiering_core.cells import Cells  # noqa: E402
from tiering_core.models import CustomerProfile  # noqa: E402


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


def pages_of(profiles: list[Any], sizes: list[int]) -> list[list[Any]]:
    """``profiles`` cut into the pages the read returned them in."""
    out, start = [], 0
    for size in sizes:
        out.append(profiles[start : start + size])
        start += size
    return out


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
            sizes = [len(page.records) for page in connector.read_changed(None)]
        finally:
            sandbox.stop()

    pages = [b for b in bodies if b"access_token" not in b]  # the data calls, not the login
    records = build(rows)
    profiles = [r.profile for r in records]
    # the coerced values as the mapping hands them to the model: what the profile was set from
    trees = [p.model_dump(exclude_unset=True) for p in profiles]
    ids = [p.id for p in profiles]
    work: dict[str, Callable[[], Any]] = {
        "records": lambda: build(rows),
        "  mapping": lambda: [
            profile_from_crm(i, r, mapping) for i, r in zip(ids, rows, strict=True)
        ],
        "    validate": lambda: [CustomerProfile.model_validate(t) for t in trees],
        "  cells": lambda: [Cells.from_profiles(page) for page in pages_of(profiles, sizes)],
        "input_hash": lambda: [input_hash(p, "v1") for p in profiles],
        "profile_text": lambda: [profile_text(p) for p in profiles],
    }
    if pages:
        work = {"decode": lambda: [pydantic_core.from_json(b) for b in pages], **work}
    print(f"{args.crm}: {len(rows):,} customers, {len(pages)} page bodies kept")
    for name, step in work.items():
        seconds = _best(args.repeat, step)
        print(f"{name:<12} {seconds / max(1, len(rows)) * 1e6:8.1f} us/customer CPU")


if __name__ == "__main__":
    main()
