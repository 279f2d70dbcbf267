"""Fixtures for the sync tests: a state store on SQLite and on the local PostgreSQL.

The PostgreSQL store lives in a schema created for the test and dropped after it, so tests
never touch each other's (or anyone's) tables.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.registry import kinds
from connectors.sandbox.base import Sandbox, open_sandbox
from sync import schema
from sync.store import StateStore
from tiering_core.privacy import pseudonym

PG_URL = "postgresql+psycopg://postgres@127.0.0.1/test"

#: the smallest valid ``[crm]`` table, for tests of crmtier.toml that add their own sections
CRM_TABLE = """
[crm]
kind = "salesforce"
base_url = "https://127.0.0.1:1"
client_id = "env:SF_ID"
client_secret = "env:SF_SECRET"
"""


def _pg_available() -> bool:
    try:
        with sa.create_engine(PG_URL).connect() as conn:
            conn.execute(sa.text("select 1"))
        return True
    except Exception:
        return False


@contextmanager
def pg_schema() -> Iterator[str]:
    """A PostgreSQL schema of its own for one test, dropped afterwards."""
    if not _pg_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"crmtier_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    try:
        yield name
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_store() -> Iterator[StateStore]:
    """A PostgreSQL store opened as the product opens one (``StateStore.open``: the engine
    of ``sync.store_engine``, with its JSON serializer and hidden parameters, migrated and
    its encryption checked), in a schema of its own."""
    with pg_schema() as name:
        store = StateStore.open(f"{PG_URL}?options=-csearch_path%3D{name}")
        try:
            yield store
        finally:
            store.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> StateStore:
    """The same test against both backends."""
    fixture = "sqlite_store" if request.param == "sqlite" else "pg_store"
    result: StateStore = request.getfixturevalue(fixture)
    return result


# --- end-to-end harness: a sandbox in this process, `crmtier sync` as a real subprocess ---

CRMTIER = str(Path(sys.executable).parent / "crmtier")

#: per-CRM sandbox options and [crm] keys for tests: several pages per run on Salesforce;
#: FXiaoke's 100 calls / 20 s limit lifted (its limiter has its own tests), or every test
#: would spend minutes waiting for the window; Zoho's 10 access tokens per 10 minutes
#: lifted, because the crash suites start crmtier hundreds of times in a few minutes and
#: each new process takes a token (a real deployment runs far fewer processes).
SANDBOX_OPTIONS: dict[str, dict[str, Any]] = {
    "salesforce": {"query_batch_size": 200},
    "fxiaoke": {"rate_calls": 1_000_000},
    "zoho": {"refresh_limit": 1_000_000},
}
CRM_EXTRA: dict[str, dict[str, Any]] = {
    "salesforce": {"page_size": 200},
    "fxiaoke": {"calls_per_window": 1_000_000},
}


def available_crms() -> list[str]:
    """CRMs whose sandbox and connector are both in the tree."""
    out = []
    for crm in kinds():
        try:
            importlib.import_module(f"connectors.{crm}.connector")
            importlib.import_module(f"connectors.sandbox.{crm}")
        except ImportError:
            continue
        out.append(crm)
    return out


@dataclass
class SyncRun:
    returncode: int
    report: dict[str, Any] | None
    stderr: str


class Harness:
    """One sandbox plus its crmtier.toml; runs ``crmtier sync`` as the operator would."""

    def __init__(
        self,
        sandbox: Sandbox,
        data_dir: Path,
        crm: str = "",
        crm_extra: dict[str, Any] | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.data_dir = data_dir
        self.crm = crm or sandbox.crm
        text, env = sandbox.crmtier_config()
        self.text = _set_keys(text, "crm", {**CRM_EXTRA.get(self.crm, {}), **(crm_extra or {})})
        self.text = _set_keys(self.text, "sync", {"record_retry_base_seconds": 0.01})
        policy = data_dir / "unbounded-tasks.toml"
        policy.write_text(unbounded_tasks_policy(), "utf-8")
        self.text = _set_keys(self.text, "policy", {"file": str(policy)})
        self.config = data_dir / "crmtier.toml"
        self.config.write_text(self.text, "utf-8")
        self.env = {**os.environ, **env}
        self.env.pop("CRMTIER_KILL_AT", None)

    def fresh_state(self, name: str) -> None:
        """Point the config at a new, empty state store (a new installation)."""
        url = json.dumps(f"sqlite:///{self.data_dir / name}.db")
        lines = [
            f"url = {url}" if line.startswith("url = ") and "sqlite" in line else line
            for line in self.text.splitlines()
        ]
        self.config.write_text("\n".join(lines) + "\n", "utf-8")

    def popen(self, *args: str, kill_at: str | None = None) -> subprocess.Popen[str]:
        env = dict(self.env)
        if kill_at:
            env["CRMTIER_KILL_AT"] = kill_at
        return subprocess.Popen(
            [CRMTIER, "sync", "--config", str(self.config), "--json", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str, kill_at: str | None = None, timeout: float = 300) -> SyncRun:
        proc = self.popen(*args, kill_at=kill_at)
        stdout, stderr = proc.communicate(timeout=timeout)
        report = None
        for line in stdout.splitlines():
            if line.startswith("{"):
                report = json.loads(line)
        return SyncRun(proc.returncode, report, stderr)

    def audit_verify(self) -> subprocess.CompletedProcess[str]:
        """``crmtier audit verify`` on this installation's store."""
        return subprocess.run(
            [CRMTIER, "audit", "verify", "--config", str(self.config)],
            env=self.env,
            capture_output=True,
            text=True,
        )

    def state_url(self) -> str:
        """The store URL as crmtier resolves it from this installation's config and
        ``CRMTIER_*`` environment, which is set only while the config loads (restored
        after, so no sandbox secret leaks into later tests or their child processes)."""
        from crmtier.config import load_config

        with pytest.MonkeyPatch.context() as mp:
            for key, value in self.env.items():
                if key.startswith("CRMTIER_"):
                    mp.setenv(key, value)
            return load_config(self.config).state_url().get_secret_value()

    def customer_ids(self) -> list[str]:
        store = StateStore.open(self.state_url())
        try:
            with store.begin() as conn:
                return sorted(
                    conn.execute(sa.select(schema.customers.c.customer_id)).scalars().all()
                )
        finally:
            store.close()

    def snapshot(self, ids: list[str]) -> dict[str, Any]:
        """The CRM's final state as crmtier sees it (written fields, tasks with their
        subject, due date, owner and open or closed status, memberships), this
        installation's audit trail and what its store keeps (``store_rows``)."""
        tasks = self.sandbox.tasks()
        return {
            "written": {cid: self.sandbox.written(cid) for cid in ids},
            "tasks": sorted(t.external_id for t in tasks),
            "task_rows": sorted(
                (t.external_id, t.customer_id, t.subject, t.due or "", t.owner or "", t.open)
                for t in tasks
            ),
            "memberships": sorted(self.sandbox.memberships()),
            "audit": self.audit_rows(ids),
            "store": self.store_rows(),
        }

    def store_rows(self) -> dict[str, Any]:
        """What the store keeps of the customers, comparable between installations (no
        pseudonyms, run ids or times): each customer's committed state, parked decision and
        last override audit row, the tasks and memberships made (active or not), the outbox
        items neither done nor superseded, the dead letters and the task queue."""
        store = StateStore.open(self.state_url())
        c, se, ob = schema.customers, schema.side_effects, schema.outbox
        dl, tq = schema.dead_letters, schema.task_queue
        try:
            with store.begin() as conn:
                state = {
                    r.customer_id: json.dumps(r._asdict(), sort_keys=True)
                    for r in conn.execute(
                        sa.select(
                            c.c.customer_id, c.c.tiers, c.c.fields, c.c.assessed_at
                        ).add_columns(
                            c.c.below_floor_since, c.c.input_hash, c.c.pending, c.c.override
                        )
                    )
                }
                effects = conn.execute(
                    sa.select(se.c.customer_id, se.c.kind, se.c.key, se.c.campaign)
                    .add_columns(se.c.rule, se.c.active)
                    .order_by(se.c.kind, se.c.key)
                ).all()
                unfinished = conn.execute(
                    sa.select(ob.c.customer_id, ob.c.kind, ob.c.key, ob.c.status)
                    .where(ob.c.status.not_in(("done", "superseded")))
                    .order_by(ob.c.id)
                ).all()
                letters = conn.execute(
                    sa.select(dl.c.customer_id, dl.c.kind, dl.c.key, dl.c.status).order_by(dl.c.id)
                ).all()
                queue = conn.execute(
                    sa.select(tq.c.customer_id, tq.c.key, tq.c.rule, tq.c.status).order_by(tq.c.key)
                ).all()
        finally:
            store.close()
        return {
            "customers": state,
            "side_effects": [tuple(r) for r in effects],
            "outbox_unfinished": [tuple(r) for r in unfinished],
            "dead_letters": [tuple(r) for r in letters],
            "task_queue": [tuple(r) for r in queue],
        }

    def audit_rows(self, ids: list[str]) -> Counter[tuple[str, ...]]:
        """The audit trail's rows as what they say (customer, event, old, new, reasons,
        policy, inputs, trigger), counted: comparable between installations, whose
        pseudonym keys and run ids differ, and blind to order, not to repeats."""
        store = StateStore.open(self.state_url())
        try:
            key = store.pseudonym_key()
            customer_of = {pseudonym(cid, key): cid for cid in ids}
            with store.begin() as conn:
                rows = conn.execute(sa.select(schema.audit)).all()
        finally:
            store.close()
        return Counter(
            (
                customer_of.get(r.customer_ref, r.customer_ref),
                r.event,
                json.dumps(r.old, sort_keys=True),
                json.dumps(r.new, sort_keys=True),
                json.dumps(r.reason_codes),
                r.policy_version,
                r.input_hash,
                r.trigger,
            )
            for r in rows
        )


def store_files(db: Path) -> list[Path]:
    """A SQLite store's files: the database and, while it is open, its -wal and -shm."""
    return sorted(p for p in db.parent.iterdir() if p.name.startswith(db.name))


def unbounded_tasks_policy() -> str:
    """The default policy with every task rule's budget and owner cap out of reach.

    These suites test the sync machinery (crash consistency against a fault-free run,
    "nothing changed: nothing written"). Bounded task volume makes the tasks made depend,
    by design, on how many runs there were, so it is tested on its own
    (tests/sync/test_task_budget.py, and with crashes by the bounded state machine)."""
    from tiering_core.policy import load_policy

    lines = ['name = "unbounded-tasks"']
    for name, rule in load_policy().strategy.tasks:
        if rule.budget_per_run is not None or rule.open_per_owner is not None:
            lines += [
                "",
                f"[strategy.tasks.{name}]",
                "budget_per_run = 1_000_000_000",
                "open_per_owner = 1_000_000_000",
            ]
    return "\n".join(lines) + "\n"


def _set_keys(text: str, section: str, values: dict[str, Any]) -> str:
    """Set keys of one ``[section]`` of a TOML text (replacing a key that is there)."""
    lines = text.splitlines()
    if f"[{section}]" not in lines:
        lines += ["", f"[{section}]"]
    start = lines.index(f"[{section}]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    body = [ln for ln in lines[start + 1 : end] if ln.split("=")[0].strip() not in values]
    body += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    return "\n".join([*lines[: start + 1], *body, *lines[end:]]) + "\n"


def start_sandbox(crm: str, data_dir: Path, customers: int, **options: Any) -> Sandbox:
    options = {**SANDBOX_OPTIONS.get(crm, {}), **options}
    sandbox = open_sandbox(crm, data_dir=data_dir, **options).start()
    sandbox.seed(customers)
    return sandbox


@contextmanager
def salesforce_harness(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, customers: int
) -> Iterator[Harness]:
    """A seeded Salesforce sandbox and its installation (``crm_harness``)."""
    with crm_harness("salesforce", data_dir, monkeypatch, customers) as harness:
        yield harness


@contextmanager
def crm_harness(
    crm: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch, customers: int
) -> Iterator[Harness]:
    """A seeded sandbox of ``crm`` and its installation, its ``CRMTIER_*`` environment set
    for this test (restored after it), stopped at the end."""
    if crm not in available_crms():
        pytest.skip(f"{crm} sandbox/connector not in tree")
    sandbox = start_sandbox(crm, data_dir, customers)
    harness = Harness(sandbox, data_dir)
    for key, value in harness.env.items():
        if key.startswith("CRMTIER_"):
            monkeypatch.setenv(key, value)
    try:
        yield harness
    finally:
        sandbox.stop()
