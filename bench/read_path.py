"""CPU of the CRM page -> records path alone (issue 18 item 2, read side).

Seeds N customers in a sandbox (Salesforce, Zoho or FXiaoke), reads them once through the
real connector over HTTPS and keeps each page's response body; then replays those bodies
through the connector's own read code with no network (the client's data calls answer
from the kept bodies, decoded as the client decodes them), so only crmtier's work is timed:

  decode           the page bodies to JSON (what the client does with each response)
  records          read_changed on the kept bodies: decode + ``CrmRecord`` per customer
  input_hash       ``sync.reader.input_hash`` of every record (the reader's intake)

Figures are CPU time (``time.process_time``), best of ``--repeat`` passes, in microseconds
per customer. Run: python bench/read_path.py [--crm salesforce] [--customers 20000]
"""

from __future__ import annotations

import argparse
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
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crm", default="salesforce", choices=("salesforce", "zoho", "fxiaoke"))
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

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
            bodies: list[bytes] = []
            session = connector.client.session
            session.hooks["response"].append(lambda r, *a, **k: bodies.append(r.content))
            n = sum(len(p.records) for p in connector.read_changed(None))
            session.hooks["response"].pop()
        finally:
            sandbox.stop()

    pages = [b for b in bodies if b"access_token" not in b]  # the data calls, not the login

    def decode() -> None:
        for body in pages:
            pydantic_core.from_json(body)

    replay = _Replay(connector, pages)
    records = [r for p in connector.read_changed(None) for r in p.records] if replay else []

    def read() -> None:
        replay.rewind()
        for _ in connector.read_changed(None):
            pass

    def hashes() -> None:
        for r in records:
            input_hash(r.profile, "v1")

    print(f"{args.crm}: {n:,} customers, {len(pages)} page bodies")
    for name, work in (("decode", decode), ("records", read), ("input_hash", hashes)):
        seconds = _best(args.repeat, work)
        print(f"{name:<12} {seconds / max(1, n) * 1e6:8.1f} us/customer CPU")


class _Replay:
    """Answers the connector client's page calls from the kept bodies, in order."""

    def __init__(self, connector: Any, bodies: list[bytes]) -> None:
        self.bodies = bodies
        self.at = 0
        client = connector.client
        for name in ("query", "query_more", "get", "_get", "request", "_call"):
            if hasattr(client, name):
                setattr(client, name, self.answer)

    def rewind(self) -> None:
        self.at = 0

    def answer(self, *args: Any, **kwargs: Any) -> Any:
        body = self.bodies[self.at % len(self.bodies)]
        self.at += 1
        return pydantic_core.from_json(body)

    def __bool__(self) -> bool:
        return bool(self.bodies)


if __name__ == "__main__":
    main()
