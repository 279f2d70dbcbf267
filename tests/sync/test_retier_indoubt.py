"""A re-tier meets a sales task that may have reached the CRM, left by a run or webhook
pass that died while the re-tier ran (after its coordinator's recovery before the stream),
for a customer sanctioned since. Whoever meets it first must hold it until the customer is
planned, so the plan supersedes it, never send it blindly:

* a page unit, taking over its page's pending writes (``run_outbox.take_over``): the
  page's intake sends what fills a write batch (``WritePool.send_ready``) before the plan;
* the coordinator, after the units (``Coordinator.after_read``): it queues what is left
  in the outbox for the run's last drain, and reads the held customer again by id first.

Run 1 is ``crmtier sync`` as a subprocess, SIGKILLed before the call carrying its tasks
(tests/sync/test_sync_indoubt_crash.py). The re-tier's parts then run in this process as a
worker or the coordinator runs them, under a coordinator's run record and head unit, as
tests/sync/test_retier.py drives units; Zoho's batch of one (``write_batch``) makes run
1's task a full batch on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from crmtier.commands.sync import open_engine
from crmtier.config import load_config
from sync import retier_units as units
from sync import run_outbox, runs
from sync.engine import SyncEngine
from sync.retier import Coordinator, UnitExecutor
from sync.retier_units import UnitRef
from sync.retier_worker import run_unit
from sync.run_parts import RunParts
from sync.settings import RunOptions
from tests.sync.conftest import Harness, available_crms, start_sandbox
from tests.sync.test_sync_indoubt_crash import AS_OF, CUSTOMERS, _killed_run, _rows

COORDINATOR = "retier-coordinator"
OPTIONS: dict[str, Any] = {
    "trigger": "sync",
    "actor": "crmtier-sync",
    "as_of": AS_OF,
    "only_fields": False,
}


@dataclass(frozen=True)
class Left:
    """Run 1's sales task for a customer sanctioned since, and the re-tier's engine."""

    harness: Harness
    engine: SyncEngine
    cid: str
    key: str
    rule: str
    run_1: str


@contextmanager
def _left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Left]:
    """Run 1 killed, its customer sanctioned, and a re-tier running: its coordinator's run
    record and head unit (the task budgets it hands on) stored."""
    if "zoho" not in available_crms():
        pytest.skip("no Zoho sandbox in the tree")
    sandbox = start_sandbox("zoho", tmp_path / "sandbox", CUSTOMERS)
    try:
        cid, key, rule, before = _killed_run(Harness(sandbox, tmp_path / "sandbox"), "before_write")
        sandbox.edit_customer(cid, {"aml.sanctions_hit": True})
        one = Harness(sandbox, tmp_path / "sandbox", crm_extra={"write_batch": 1})
        for name, value in one.env.items():
            monkeypatch.setenv(name, value)
        with open_engine(load_config(one.config)) as engine:
            engine.store.migrate("retier", units.MIGRATIONS)
            with engine.store.begin() as conn:
                runs.start(
                    conn, COORDINATOR, engine.stream, trigger="sync", dry_run=False,
                    owner="h:1:1:coordinator", ttl=timedelta(hours=1),
                )  # fmt: skip
                head = UnitRef(COORDINATOR, 0)
                units.put(conn, head, engine.stream, options=OPTIONS, status="done")
            yield Left(one, engine, cid, key, rule, before["outbox"][0]["run_id"])
    finally:
        sandbox.stop()


def _by_unit(left: Left) -> None:
    """A page unit whose page holds the customer, run as a worker runs it."""
    engine = left.engine
    records = engine.connector.fetch([left.cid])
    ref = UnitRef(COORDINATOR, 1)
    with engine.store.begin() as conn:
        units.put(
            conn, ref, engine.stream, options=OPTIONS, records=records, read_at=datetime.now(UTC)
        )
    assert run_unit(engine, ref) == 1


def _by_coordinator(left: Left) -> None:
    """The coordinator after its units (none read the customer), then the run's last drain."""
    options = RunOptions(full=True, as_of=date.fromisoformat(AS_OF))
    parts = RunParts(left.engine, options, run_id=COORDINATOR)
    coordinator = Coordinator(parts, cast(UnitExecutor, None), 1, 60.0)
    with left.engine.store.begin() as conn:
        parts.reader.load(conn)
        run_outbox.load_dead_letters(parts, conn)
    try:
        coordinator.after_read()
        parts.pool.drain(final=True)
    finally:
        parts.pool.shutdown()
        parts.claims.release_all()


@pytest.mark.parametrize("meets_it", [_by_unit, _by_coordinator], ids=["unit", "coordinator"])
def test_a_re_tier_holds_a_dead_pass_s_sales_task_until_its_customer_is_planned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, meets_it: Any
) -> None:
    with _left(tmp_path, monkeypatch) as left:
        meets_it(left)
        # the CRM never got run 1's task; it was closed as in doubt (nothing to close)
        assert not [t for t in left.harness.sandbox.tasks() if t.external_id == left.key]
        rows = _rows(left.harness)
        task_rows = [r for r in rows["outbox"] if r["key"] == left.key]
        assert [(r["kind"], r["status"], r["run_id"]) for r in task_rows] == [
            ("task", "superseded", left.run_1),
            ("task_close", "done", COORDINATOR),
        ]
        audited = [a["new"] for a in rows["audit"] if a["new"]["key"] == left.key]
        assert audited == [{"rule": left.rule, "key": left.key, "closed": True, "in_doubt": True}]
        review = [
            e
            for e in rows["effects"]
            if e["customer_id"] == left.cid and e["rule"] == "sanctions_review"
        ]
        assert len(review) == 1 and review[0]["active"]
