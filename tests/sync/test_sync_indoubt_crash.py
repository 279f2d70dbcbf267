"""A sales task written by a run that died, then a sanctions hit (issue 16 item 2 under a
crash): no live sales follow-up survives on a sanctioned customer, and none is made for it.

``crmtier sync`` as a subprocess against the CRM's sandbox over HTTPS. Run 1 is SIGKILLed
around the write call that carries a sales task (``sync/killpoints.py``): after it returned
(the task is in the CRM, its answer never recorded: no ``side_effects`` row, the outbox row
pending) or before it went out (the task is not in the CRM; the store looks the same). The
customer is then sanctioned in the CRM. Run 2, with no other traffic, must close the task
the CRM holds (a) or make none (b), create the sanctions review, and record exactly that in
the outbox, ``side_effects`` and the audit trail; run 3 writes nothing.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmtier.commands.sync import open_engine
from crmtier.config import load_config
from sync import schema
from sync.planner import SALES_TASK_RULES
from sync.store import StateStore
from tests.sync.conftest import Harness, _set_keys, available_crms, start_sandbox

#: Behind the slow marker, run by .ci/run's crash step (real processes SIGKILLed
#: at a write, about 90 s), so that the default run
#: stays under ten minutes.
pytestmark = pytest.mark.slow

CUSTOMERS = 8
AS_OF = datetime.now(UTC).date().isoformat()
#: which write call (``apply``) carries run 1's tasks, on every sandbox (seed 7,
#: ``CUSTOMERS``): the field updates go first, then a customer's memberships, then its
#: tasks, never two calls of one customer at once (``sync.writepool``); ``_killed_run``
#: checks that it is that call
TASK_CALL = 3


@pytest.fixture(params=available_crms())
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    sandbox = start_sandbox(request.param, tmp_path / "sandbox", CUSTOMERS)
    try:
        yield Harness(sandbox, tmp_path / "sandbox")
    finally:
        sandbox.stop()


def _rows(harness: Harness) -> dict[str, list[dict[str, Any]]]:
    """The store's outbox (but field updates), task ``side_effects`` and task audit rows."""
    store = StateStore.open(harness.state_url())
    try:
        with store.begin() as conn:
            o, s, a = schema.outbox, schema.side_effects, schema.audit
            outbox = conn.execute(
                sa.select(o.c.customer_id, o.c.kind, o.c.key, o.c.status, o.c.payload, o.c.run_id)
                .where(o.c.kind != "field_update")
                .order_by(o.c.id)
            ).all()
            effects = conn.execute(
                sa.select(s.c.customer_id, s.c.key, s.c.rule, s.c.active).where(s.c.kind == "task")
            ).all()
            audit = conn.execute(
                sa.select(a.c.event, a.c.new, a.c.run_id)
                .where(a.c.event.in_(["task", "task_closed"]))
                .order_by(a.c.seq)
            ).all()
    finally:
        store.close()
    return {
        "outbox": [dict(r._mapping) for r in outbox],
        "effects": [dict(r._mapping) for r in effects],
        "audit": [dict(r._mapping) for r in audit],
    }


def _killed_run(harness: Harness, point: str) -> tuple[str, str, str, dict[str, Any]]:
    """Run 1, killed at ``point`` of the task call: (customer, its sales task's key and
    rule) of one whose sales task was in that call, and the store's rows."""
    spec = f"{point}:{TASK_CALL}"
    assert harness.run("--as-of", AS_OF, kill_at=spec).returncode == -signal.SIGKILL
    rows = _rows(harness)
    pending = [
        r
        for r in rows["outbox"]
        if r["kind"] == "task" and r["payload"]["rule"] in SALES_TASK_RULES
    ]
    assert pending and all(r["status"] == "pending" for r in pending), rows["outbox"]
    assert not rows["effects"] and not rows["audit"]  # no task answer recorded
    task = pending[0]
    return task["customer_id"], task["key"], task["payload"]["rule"], rows


def _finish(harness: Harness, cid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sanctions hit, run 2 and run 3: run 2's report and the rows after run 3, which
    must write nothing."""
    harness.sandbox.edit_customer(cid, {"aml.sanctions_hit": True})
    second = harness.run("--as-of", AS_OF)
    assert second.returncode == 0, (second.report, second.stderr[-2000:])
    assert second.report is not None
    rows = _rows(harness)
    calls = harness.sandbox.write_calls()
    third = harness.run("--as-of", AS_OF)
    assert third.returncode == 0, (third.report, third.stderr[-2000:])
    assert third.report is not None and third.report["counts"]["written"] == 0
    assert harness.sandbox.write_calls() == calls
    assert _rows(harness) == rows
    assert harness.audit_verify().returncode == 0
    return second.report, rows


def _review_made(rows: dict[str, Any], cid: str, run_2: str) -> None:
    """Run 2 made the customer's same-day sanctions review, open, and audited it: the one
    task of the customer audited as made in run 2."""
    review = [
        e for e in rows["effects"] if e["customer_id"] == cid and e["rule"] == "sanctions_review"
    ]
    assert len(review) == 1 and review[0]["active"]
    keys = {r["key"] for r in rows["outbox"] if r["customer_id"] == cid}
    made = [
        a["new"]["key"]
        for a in rows["audit"]
        if a["event"] == "task" and a["run_id"] == run_2 and a["new"]["key"] in keys
    ]
    assert made == [review[0]["key"]]


def _run_2(rows: dict[str, Any], run_1: str) -> str:
    return next(r["run_id"] for r in rows["outbox"] if r["run_id"] != run_1)


def test_a_sales_task_sent_by_a_killed_run_is_closed_when_the_customer_is_sanctioned(
    harness: Harness,
) -> None:
    cid, key, rule, before = _killed_run(harness, "after_write")
    run_1 = before["outbox"][0]["run_id"]
    sales = [t for t in harness.sandbox.tasks() if t.external_id == key]
    assert len(sales) == 1 and sales[0].open  # it reached the CRM

    _, rows = _finish(harness, cid)
    run_2 = _run_2(rows, run_1)
    # the CRM: the sales task closed, not duplicated (FXiaoke lists no invalidated one)
    closed_there = [] if harness.crm == "fxiaoke" else [False]
    assert [t.open for t in harness.sandbox.tasks() if t.external_id == key] == closed_there
    review = {e["key"] for e in rows["effects"] if e["rule"] == "sanctions_review"}
    assert any(t.open for t in harness.sandbox.tasks() if t.external_id in review)
    # the store: the closure sent and recorded once; the task on record, closed
    closes = [r for r in rows["outbox"] if r["kind"] == "task_close"]
    assert [(r["customer_id"], r["key"], r["status"], r["run_id"]) for r in closes] == [
        (cid, key, "done", run_2)
    ]
    assert [e for e in rows["effects"] if e["key"] == key] == [
        {"customer_id": cid, "key": key, "rule": rule, "active": False}
    ]
    closed = [a["new"] for a in rows["audit"] if a["event"] == "task_closed"]
    assert closed == [{"rule": rule, "key": key, "closed": True, "in_doubt": True}]
    _review_made(rows, cid, run_2)


def test_a_killed_run_s_sales_task_superseded_with_tasks_off_is_closed_on_a_later_hit(
    harness: Harness,
) -> None:
    """Run 1 dies after its sales task reached the CRM; ``[writeback] tasks`` is then
    switched off, and the customer's wealth changes. Run 2 re-plans the customer (not
    sanctioned): the plan writes its new tier and makes no task, so the held one is
    superseded (a plan that writes nothing would send it, ``Dispatcher.withdraw``), but
    the CRM holds it, open. It stays in doubt on record,
    so when the customer is sanctioned later, run 3 closes it (docs/policy.md: tasks
    switched off never stop crmtier withdrawing what it may have made)."""
    cid, key, rule, _ = _killed_run(harness, "after_write")
    assert [t.open for t in harness.sandbox.tasks() if t.external_id == key] == [True]
    harness.text = _set_keys(harness.text, "writeback", {"tasks": False})
    harness.config.write_text(harness.text, "utf-8")
    harness.sandbox.edit_customer(cid, {"assets.deposits": 0, "aum_avg_3m": 0})
    second = harness.run("--as-of", AS_OF)
    assert second.returncode == 0, (second.report, second.stderr[-2000:])
    task_rows = [r for r in _rows(harness)["outbox"] if r["key"] == key]
    assert [(r["kind"], r["status"]) for r in task_rows] == [("task", "superseded")]

    harness.sandbox.edit_customer(cid, {"aml.sanctions_hit": True})
    third = harness.run("--as-of", AS_OF)
    assert third.returncode == 0, (third.report, third.stderr[-2000:])
    closed_there = [] if harness.crm == "fxiaoke" else [False]  # FXiaoke lists no invalidated
    assert [t.open for t in harness.sandbox.tasks() if t.external_id == key] == closed_there
    closed = [a["new"] for a in _rows(harness)["audit"] if a["event"] == "task_closed"]
    assert closed == [{"rule": rule, "key": key, "closed": True, "in_doubt": True}]


def test_a_sales_task_a_killed_run_never_sent_is_not_made_for_a_sanctioned_customer(
    harness: Harness,
) -> None:
    cid, key, rule, before = _killed_run(harness, "before_write")
    _never_made(harness, cid, key, rule, before["outbox"][0]["run_id"])


def test_a_held_sales_task_waits_for_its_re_plan_even_when_it_fills_a_write_batch(
    tmp_path: Path,
) -> None:
    """Run 2 re-plans the customer with its writes queued: a queued write that fills a
    batch goes out while pages are processed (``WritePool.send_ready``). Zoho's batch of
    one (``write_batch``) makes run 1's held task such a write: only the pool's hold
    (``WritePool.waiting``) keeps it from the CRM until the plan supersedes it."""
    if "zoho" not in available_crms():
        pytest.skip("no Zoho sandbox in the tree")
    sandbox = start_sandbox("zoho", tmp_path / "sandbox", CUSTOMERS)
    try:
        cid, key, rule, before = _killed_run(Harness(sandbox, tmp_path / "sandbox"), "before_write")
        one = Harness(sandbox, tmp_path / "sandbox", crm_extra={"write_batch": 1})
        _never_made(one, cid, key, rule, before["outbox"][0]["run_id"])
    finally:
        sandbox.stop()


def _never_made(harness: Harness, cid: str, key: str, rule: str, run_1: str) -> None:
    """After run 1 died before sending the customer's sales task: sanctioned, run 2 makes
    no such task, closes it as in doubt (nothing in the CRM to close), makes the review."""
    assert not [t for t in harness.sandbox.tasks() if t.external_id == key]  # never sent
    _, rows = _finish(harness, cid)
    run_2 = _run_2(rows, run_1)
    # the CRM: no task of that key, open or closed, for the customer or for no one (a
    # closure by upsert would make a bare completed one); the review open
    assert not [t for t in harness.sandbox.tasks() if t.external_id == key]
    review = {e["key"] for e in rows["effects"] if e["rule"] == "sanctions_review"}
    assert any(t.open for t in harness.sandbox.tasks() if t.external_id in review)
    # the store: run 1's task never sent (superseded), nothing on record as made
    task_rows = [r for r in rows["outbox"] if r["key"] == key and r["kind"] == "task"]
    assert [(r["status"], r["run_id"]) for r in task_rows] == [("superseded", run_1)]
    assert not [a for a in rows["audit"] if a["event"] == "task" and a["new"]["key"] == key]
    assert not [e for e in rows["effects"] if e["key"] == key and e["active"]]
    # its closure, in doubt, sent once: the CRM held nothing to close
    closes = [r for r in rows["outbox"] if r["kind"] == "task_close"]
    assert [(r["customer_id"], r["key"], r["status"], r["run_id"]) for r in closes] == [
        (cid, key, "done", run_2)
    ]
    closed = [a["new"] for a in rows["audit"] if a["event"] == "task_closed"]
    assert closed == [{"rule": rule, "key": key, "closed": True, "in_doubt": True}]
    _review_made(rows, cid, run_2)


def test_a_webhook_pass_holds_a_killed_sync_s_sales_task_for_a_sanctioned_customer(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sanctions hit comes in as a webhook, before any sync: the pass (the worker's
    ``process_records``) meets run 1's task while run 1's record still says ``running``
    (a pass leaves a dead reader's record to the next reader, ``runs.mark_interrupted``).
    It must hold and re-plan it as the next sync would, not re-send it blindly."""
    cid, key, rule, before = _killed_run(harness, "before_write")
    run_1 = before["outbox"][0]["run_id"]
    harness.sandbox.edit_customer(cid, {"aml.sanctions_hit": True})
    for name, value in harness.env.items():
        monkeypatch.setenv(name, value)
    with open_engine(load_config(harness.config)) as engine:
        report = engine.process_records(engine.connector.fetch([cid]))
    assert report.status == "succeeded", report.error
    assert not [t for t in harness.sandbox.tasks() if t.external_id == key]
    rows = _rows(harness)
    task_rows = [r for r in rows["outbox"] if r["key"] == key]
    assert [(r["kind"], r["status"], r["run_id"]) for r in task_rows] == [
        ("task", "superseded", run_1),
        ("task_close", "done", report.run_id),
    ]
    audited = [a["new"] for a in rows["audit"] if a["new"]["key"] == key]
    assert audited == [{"rule": rule, "key": key, "closed": True, "in_doubt": True}]
    _review_made(rows, cid, report.run_id)


#: where each sandbox keeps its customer records (what a CRM user deleting one removes);
#: Salesforce's is the mapping's object (``org.customer_object``)
CUSTOMER_OBJECT = {"zoho": "Contacts", "fxiaoke": "AccountObj"}


def test_the_held_writes_of_a_customer_deleted_since_are_superseded_not_sent(
    harness: Harness,
) -> None:
    """Run 1 dies before sending a customer's sales task; the customer is then deleted in
    the CRM. Run 2 holds the task and reads the customer again by id: the CRM no longer
    returns it, so no plan supersedes its writes, and re-sent blindly the task would go to
    a deleted record (a CRM may accept it). Run 2 supersedes the customer's held writes
    and says so in its log by pseudonym, never by CRM id, and keeps the held tasks in
    doubt on record (the dead run may have sent them: should the record come back, an
    undelete, a sanctions hit closes them); run 3 writes nothing."""
    cid, key, _, before = _killed_run(harness, "before_write")
    run_1 = before["outbox"][0]["run_id"]
    sandbox: Any = harness.sandbox
    obj = CUSTOMER_OBJECT.get(harness.crm) or sandbox.org.customer_object
    assert sandbox.store.delete(obj, cid)
    held = [
        r["key"] for r in before["outbox"] if r["customer_id"] == cid and r["status"] == "pending"
    ]
    second = harness.run("--as-of", AS_OF)
    assert second.returncode == 0, (second.report, second.stderr[-2000:])
    assert not [t for t in harness.sandbox.tasks() if t.external_id == key]
    rows = _rows(harness)
    mine = [r for r in rows["outbox"] if r["customer_id"] == cid]
    assert [(r["key"], r["status"], r["run_id"]) for r in mine if r["key"] in held] == [
        (k, "superseded", run_1) for k in held
    ]
    assert not [r for r in mine if r["run_id"] != run_1]  # nothing new for it
    # nothing made; the held tasks the dead run may have sent stay in doubt on record
    tasks = {r["key"] for r in before["outbox"] if r["customer_id"] == cid and r["kind"] == "task"}
    assert {e["key"]: e["active"] for e in rows["effects"] if e["customer_id"] == cid} == {
        k: False for k in tasks
    }
    assert not [a for a in rows["audit"] if a["new"]["key"] in held]
    gone = [line for line in second.stderr.splitlines() if "no longer returns" in line]
    assert len(gone) == 1 and cid not in gone[0], second.stderr[-2000:]
    calls = harness.sandbox.write_calls()
    third = harness.run("--as-of", AS_OF)
    assert third.returncode == 0 and third.report is not None, third.stderr[-2000:]
    assert third.report["counts"]["written"] == 0
    assert harness.sandbox.write_calls() == calls and _rows(harness) == rows
    assert harness.audit_verify().returncode == 0
