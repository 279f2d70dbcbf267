"""A task-engine cluster of real processes for tests and bench/workers.py: the Salesforce
sandbox in this process, a PostgreSQL state store in a schema of its own, ``crmtier serve``
(receiver, deferring jobs) and any number of ``crmtier worker`` processes.

The figures a run is judged by come from the store and the sandbox, never from the
processes' own reports: the CRM's end state per customer, each edited customer's webhook
audit rows, the field writes done per customer (``outbox``, a duplicate is a second one),
and the CRM API calls by kind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from connectors.sandbox.base import Sandbox, open_sandbox
from tests.sync.conftest import PG_URL, pg_schema
from tiering_core.privacy import pseudonym

#: assets that make any customer private at once (an upgrade is never held back)
PRIVATE = {
    "assets.deposits": 9_000_000,
    "assets.investments": 0,
    "assets.insurance": 0,
    "aum_avg_3m": None,
}


def wait_until(
    predicate: Callable[[], bool], timeout: float = 60.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Cluster:
    sandbox: Sandbox
    config: Path
    env: dict[str, str]
    url: str
    logs: Path
    crm: str = "salesforce"
    serve: subprocess.Popen[bytes] | None = None
    receiver: str = ""
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    # --- processes ---------------------------------------------------------------------

    def _spawn(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "crmtier", *args, "--config", str(self.config)],
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=log,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            process.wait(timeout=30)
            raise AssertionError((self.logs / f"{name}.log").read_text()[-3000:])
        self._banner = json.loads(line)
        return process

    def sync(self) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "crmtier", "sync", "--config", str(self.config)],
            env=self.env,
            capture_output=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()[-3000:]

    def start_serve(self, name: str = "serve") -> None:
        """Start ``crmtier serve --no-sync``, its stderr in ``logs/NAME.log``."""
        self.serve = self._spawn(name, "serve", "--listen", "127.0.0.1:0", "--no-sync")
        self.receiver = self._banner["listen"]
        if self.crm != "salesforce":
            return
        info = self.sandbox.info()
        self.sandbox.set_notification_target(
            f"{self.receiver}/webhooks/salesforce", ca_bundle=info.ca_bundle
        )

    def start_worker(self, name: str, env: dict[str, str] | None = None) -> None:
        """Start ``crmtier worker --name name``; ``env`` adds to the cluster's environment
        (a kill point, ``sync.killpoints``)."""
        self.workers[name] = self._spawn(name, "worker", "--name", name, env=env)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.workers[name]
        process.send_signal(sig)
        process.wait(timeout=120)

    def stop(self) -> None:
        for process in [*self.workers.values(), *([self.serve] if self.serve else [])]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.workers.values(), *([self.serve] if self.serve else [])]:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    # --- the store ---------------------------------------------------------------------

    def scalar(self, sql: str) -> Any:
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(sql)).scalar()
        finally:
            engine.dispose()

    def rows(self, sql: str) -> list[Any]:
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(sql)))
        finally:
            engine.dispose()

    def unfinished_events(self) -> int:
        return int(
            self.scalar("SELECT count(*) FROM webhook_inbox WHERE status IN ('pending','claimed')")
        )

    def events_done(self) -> int:
        return int(self.scalar("SELECT count(*) FROM webhook_inbox WHERE status = 'done'"))

    def drained(self, events: int) -> bool:
        return self.events_done() >= events and self.unfinished_events() == 0

    # --- what a run did ----------------------------------------------------------------

    def field_writes(self) -> Counter[str]:
        """Field updates written per customer by the webhook path."""
        return Counter(
            str(r.customer_id)
            for r in self.rows(
                "SELECT customer_id FROM outbox WHERE kind = 'field_update' AND status = 'done'"
                " AND trigger = 'webhook'"
            )
        )

    def audit_by_customer(self, customers: list[str]) -> dict[str, list[tuple[Any, ...]]]:
        """Each customer's webhook audit rows (event, new value, reasons), in order; task
        rows are left to ``task_decisions``."""
        by_ref: dict[str, list[tuple[Any, ...]]] = {}
        for row in self.rows(
            "SELECT customer_ref, event, new, reason_codes FROM audit"
            " WHERE trigger = 'webhook' AND event <> 'task' ORDER BY seq"
        ):
            by_ref.setdefault(str(row.customer_ref), []).append(
                (row.event, json.dumps(row.new, sort_keys=True), json.dumps(row.reason_codes))
            )
        refs = self.refs(customers)
        return {cid: by_ref.get(refs[cid], []) for cid in customers}

    def task_decisions(self, customers: list[str]) -> dict[str, list[tuple[str, str]]]:
        """Each customer's tasks decided, made or waiting (``task_queue``): which of them
        are made at once depends on the order customers are processed in (an owner's cap
        of open tasks), which workers running side by side do not fix."""
        by_customer: dict[str, list[tuple[str, str]]] = {cid: [] for cid in customers}
        for row in self.rows("SELECT customer_id, key, rule FROM task_queue ORDER BY key"):
            if row.customer_id in by_customer:
                by_customer[row.customer_id].append((str(row.key), str(row.rule)))
        return by_customer

    def refs(self, customers: list[str]) -> dict[str, str]:
        from crmtier.config import load_config

        old = dict(os.environ)
        os.environ.update(self.env)
        try:
            config = load_config(self.config)
            store = config.open_state_store()
            try:
                key = config.pseudonym_key() or store.pseudonym_key()
            finally:
                store.close()
        finally:
            os.environ.clear()
            os.environ.update(old)
        return {cid: pseudonym(cid, key) for cid in customers}

    def crm_state(self, customers: list[str]) -> dict[str, dict[str, Any]]:
        return {cid: self.sandbox.written(cid) for cid in customers}

    def api_calls(self) -> dict[str, int]:
        return self.sandbox.server.calls.counts()  # type: ignore[attr-defined,no-any-return]


@contextmanager
def cluster(
    tmp_path: Path,
    customers: int,
    *,
    workers_section: str = "",
    webhooks_section: str = "",
    crm: str = "salesforce",
) -> Iterator[Cluster]:
    """A fresh sandbox of ``crm`` seeded with ``customers``, a fresh PostgreSQL schema, and
    a config with ``[workers] engine = "procrastinate"`` (``start_serve`` points the
    Salesforce sandbox's notifications at the receiver)."""
    sandbox = open_sandbox(crm, data_dir=tmp_path / "crm")
    sandbox.seed(customers)
    sandbox.start()
    try:
        with pg_schema() as schema:
            text, env_values = sandbox.crmtier_config()
            url = f"{PG_URL}?options=-csearch_path%3D{schema}"
            text = re.sub(
                r"(?m)^\[state\]\nurl = .*$",
                '[state]\nurl = "env:CRMTIER_TEST_STATE_URL"',
                text,
            )
            last = text.rstrip().rsplit("\n[", 1)[-1]
            assert last.startswith("webhooks]\n"), "[webhooks] must come last"
            text += (
                f'{webhooks_section}\n\n[workers]\nengine = "procrastinate"\n{workers_section}\n'
            )
            config = tmp_path / "crmtier.toml"
            config.write_text(text)
            env = {**os.environ, **env_values, "CRMTIER_TEST_STATE_URL": url}
            logs = tmp_path / "logs"
            logs.mkdir(exist_ok=True)
            c = Cluster(sandbox, config, env, url, logs, crm)
            try:
                yield c
            finally:
                c.stop()
    finally:
        sandbox.stop()


def upgradable(c: Cluster, limit: int) -> list[str]:
    """Retail customers rated below private: moving their assets to 9M makes them private
    at once (an upgrade is immediate; corporate customers have tiers of their own)."""
    ids = [str(r.customer_id) for r in c.rows("SELECT customer_id FROM customers ORDER BY 1")]
    below = ("mass", "affluent", "wealth")
    return [cid for cid in ids if c.sandbox.written(cid).get("value_tier") in below][:limit]
