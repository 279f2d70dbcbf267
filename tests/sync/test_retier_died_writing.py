"""A page unit's worker SIGKILLed after its page's commit, while sending its writes: its
decisions and outbox rows are durable and cite the coordinator's run, never attempted. The
run's own writes are never in doubt, so, unmarked, the coordinator would re-send them
blindly after its units: a sales task for a customer sanctioned since would reach the CRM
(or, already there, stay open). The retry that finds the unit committed marks them as a
dead run's (``sync.retier_died``), and the coordinator holds the sales task
until its customer is read again and planned: a closure in doubt, never the task.

A full re-tier (``sync.retier.retier``) on the Zoho sandbox: the coordinator runs here, its
one page unit goes first to a real worker process (``run_unit`` in ``python``) that
SIGKILLs itself before or after the first write call carrying a sales task (one write call
at a time, Zoho's batch of one making every write a full batch a unit sends). The call is
found by its items, not by its number: which call carries the task depends on how the
answers of the call in flight and the one queued behind it land between the unit's
recordings (``sync.writepool``), which shifts with the machine's load. Then a customer with
a sales task pending is sanctioned in the CRM, and the unit's job runs again here, as the
task engine retries it on another worker.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmtier.commands.sync import open_engine
from crmtier.config import load_config
from sync import retier_units as units
from sync.engine import SyncEngine
from sync.killpoints import ENV
from sync.planner import SALES_TASK_RULES
from sync.retier import retier
from sync.retier_died import died_run_id
from sync.retier_results import retier_unit_answers, with_recorded
from sync.retier_units import UnitRef
from sync.retier_worker import run_unit
from sync.store import StateStore
from tests.sync.conftest import Harness, available_crms, start_sandbox
from tests.sync.test_sync_indoubt_crash import CUSTOMERS, _rows

pytestmark = pytest.mark.skipif("zoho" not in available_crms(), reason="Zoho not in tree")

#: the worker process: one page unit of the coordinator's run, as ``crmtier worker`` runs it;
#: it SIGKILLs itself (as ``sync.killpoints`` does) ``argv[5]`` ("before" or "after") the
#: first write call carrying a sales task, that is: as the call is about to be handed to
#: the write pool's thread (the ``before_write`` kill point), or once it has answered
#: every item made and before the answer is recorded (``after_write``). Once each recording
#: has committed, it writes to the file ``argv[4]`` the unit's whole result as it stood in
#: that recording's transaction (what a unit saved there before ``sync.retier_results``;
#: the unit's API calls read once for both: a call may be under way meanwhile), for the
#: test to compare with what the store kept
WORKER = """
import json, os, signal, sys
from pathlib import Path
from crmtier.commands.sync import open_engine
from crmtier.config import load_config
from sync.planner import SALES_TASK_RULES
from sync.recorder import Recorder
from sync.retier_worker import UnitRunner, run_unit
from sync.retier_results import UnitResult
from sync.retier_units import UnitRef
from sync.writepool import WritePool
whole = {}
keep = UnitRunner._recorded
def recorded(unit, conn, counts, outcomes):
    p = unit.p
    calls = p.calls.counts()
    p.calls.counts = lambda: calls
    try:
        keep(unit, conn, counts, outcomes)
    finally:
        del p.calls.counts
    kept = dict(outcomes) if p.recorder.keep_outcomes else {}
    outcomes = {**p.recorder.outcomes, **kept}
    whole["result"] = UnitResult.of(unit._counts(counts), outcomes, calls, p.pool.tally)
UnitRunner._recorded = recorded
record = Recorder.record_results
def committed(recorder, calls):
    retries = record(recorder, calls)
    if "result" in whole:
        Path(sys.argv[4]).write_text(json.dumps(whole.pop("result").to_json()))
    return retries
Recorder.record_results = committed
def sales_task(items):
    return any(i.kind == "task" and i.payload["rule"] in SALES_TASK_RULES for i in items)
def die():
    os.kill(os.getpid(), signal.SIGKILL)
submit, answer = WritePool._submit, WritePool._answer
def submit_or_die(pool, items):
    if sys.argv[5] == "before" and sales_task(items):
        die()
    submit(pool, items)
def answer_or_die(pool, items, future):
    if sys.argv[5] == "after" and sales_task(items) and future.exception() is None:
        if all(result.ok for result in future.result()):
            die()
    return answer(pool, items, future)
WritePool._submit, WritePool._answer = submit_or_die, answer_or_die
with open_engine(load_config(sys.argv[1])) as engine:
    run_unit(engine, UnitRef(sys.argv[2], int(sys.argv[3])))
"""


class KilledWorker:
    """``sync.retier.UnitExecutor``: a unit's first attempt is a worker process that dies
    ``dies`` ("before" or "after") its first write call carrying a sales task; then
    ``between`` runs, then the retry runs here on ``engine`` (none: the job is never run
    again, as when every worker is gone). What the store kept of the dead attempt's result
    (``kept``) and its whole result at its last recording (``whole``) are read as it
    died."""

    def __init__(
        self,
        harness: Harness,
        engine: SyncEngine | None,
        dies: str,
        between: Callable[[UnitRef], None],
    ) -> None:
        self.harness, self.engine, self.dies, self.between = harness, engine, dies, between
        self.kept: dict[str, Any] | None = None
        self.whole: dict[str, Any] | None = None
        self.recordings = 0  # kept by the store beside the result saved at the commit

    def submit(self, unit: UnitRef) -> None:
        whole = self.harness.config.parent / f"whole-{unit.seq}.json"
        worker = subprocess.run(
            [
                sys.executable,
                "-c",
                WORKER,
                str(self.harness.config),
                unit.run_id,
                str(unit.seq),
                str(whole),
                self.dies,
            ],
            env=self.harness.env,
            capture_output=True,
            text=True,
        )
        assert worker.returncode == -signal.SIGKILL, worker.stderr[-2000:]
        self.whole = json.loads(whole.read_text("utf-8"))
        store = StateStore.open(self.harness.state_url())
        try:
            with store.begin() as conn:
                stored = conn.execute(
                    sa.select(units.retier_units.c.result).where(
                        units.retier_units.c.run_id == unit.run_id,
                        units.retier_units.c.seq == unit.seq,
                    )
                ).scalar()
                self.kept = with_recorded(conn, unit, stored)
                answers = retier_unit_answers.c
                self.recordings = len(
                    conn.execute(sa.select(answers.id).where(answers.run_id == unit.run_id)).all()
                )
        finally:
            store.close()
        self.between(unit)
        if self.engine is not None:
            run_unit(self.engine, unit)


class Sanction:
    """Between the kill and the retry: sanction a customer whose sales task the unit left
    pending, that reached the CRM (``sent``) or not."""

    def __init__(self, harness: Harness, sent: bool) -> None:
        self.harness, self.sent = harness, sent
        self.cid = self.key = self.rule = ""

    def __call__(self, _: UnitRef) -> None:
        in_crm = {t.external_id for t in self.harness.sandbox.tasks()}
        pending = [
            r
            for r in _rows(self.harness)["outbox"]
            if r["kind"] == "task"
            and r["status"] == "pending"
            and r["payload"]["rule"] in SALES_TASK_RULES
            and (r["key"] in in_crm) == self.sent
        ]
        assert pending, "no sales task left pending by the killed worker"
        task = pending[0]
        self.cid, self.key, self.rule = task["customer_id"], task["key"], task["payload"]["rule"]
        self.harness.sandbox.edit_customer(self.cid, {"aml.sanctions_hit": True})


@pytest.mark.parametrize(
    ("dies", "sent"),
    [("before", False), ("after", True)],
    ids=["before-the-task-call", "after-the-task-call"],
)
def test_a_unit_killed_while_writing_leaves_no_sales_task_for_a_customer_sanctioned_since(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dies: str, sent: bool
) -> None:
    with _zoho(tmp_path, monkeypatch) as harness:
        sanction = Sanction(harness, sent)
        with open_engine(load_config(harness.config)) as engine:
            killed = KilledWorker(harness, engine, dies, sanction)
            report = retier(engine, killed, stall_seconds=30)
        assert report.status == "succeeded", report.error
        _held_as_a_dead_run_s(harness, sanction, report.run_id, report.run_id, sent)
        # what the store kept of the dead attempt: its result at the commit and a row a
        # recording since, together the whole result as its last recording left it
        assert killed.recordings > 0
        assert killed.kept == killed.whole
        assert _recordings_left(harness) == 0  # folded into the unit's result when done


def test_a_re_tier_stalled_behind_a_unit_killed_while_writing_leaves_its_writes_in_doubt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No worker runs the killed unit again: the coordinator stops ``failed`` after its
    stall time, and its run's record says it stopped, whose pending writes the next run
    would re-send as they are. It marks the unit's writes as a dead run's first, so the
    next run (``crmtier sync``, one process) holds the sales task and closes it."""
    with _zoho(tmp_path, monkeypatch) as harness:
        sanction = Sanction(harness, sent=False)
        killed = KilledWorker(harness, None, "before", sanction)
        with open_engine(load_config(harness.config)) as engine:
            report = retier(engine, killed, stall_seconds=1)
        assert report.status == "failed" and "no page unit moved on" in str(report.error)
        rerun = harness.run()
        assert rerun.returncode == 0 and rerun.report is not None, rerun.stderr[-2000:]
        _held_as_a_dead_run_s(harness, sanction, report.run_id, rerun.report["run_id"], False)


def test_a_later_unit_holds_the_sales_task_of_a_customer_a_killed_unit_was_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later unit of the run reads the customer again (a household's member decided
    beside an earlier page and read by its own) before the killed unit's job runs again:
    the earlier unit is committed, not done, and its claim free, so its worker died while
    writing; the later unit takes the customer's writes over as a dead run's, holds the
    sales task, and plans it: sanctioned since, a closure in doubt."""
    with _zoho(tmp_path, monkeypatch) as harness:
        sanction = Sanction(harness, sent=True)
        with open_engine(load_config(harness.config)) as engine:

            def later_unit(first: UnitRef) -> None:
                sanction(first)
                ref = UnitRef(first.run_id, first.seq + 1)
                with engine.store.begin() as conn:
                    options = units.load(conn, first).options
                    records = engine.connector.fetch([sanction.cid])
                    at = datetime.now(UTC)
                    units.put(
                        conn, ref, engine.stream, options=options, records=records, read_at=at
                    )
                assert run_unit(engine, ref) == 1

            killed = KilledWorker(harness, engine, "after", later_unit)
            report = retier(engine, killed, stall_seconds=30)
        assert report.status == "succeeded", report.error
        _held_as_a_dead_run_s(harness, sanction, report.run_id, report.run_id, True)


#: a coordinator whose units run on threads of its own process (``InProcessUnits``, one
#: worker): it SIGKILLs itself (``sync.killpoints``) once the first recording of its unit's
#: answers has committed, the run's record left ``running`` and the unit committed
COORDINATOR = """
import sys
from crmtier.commands.sync import open_engine
from crmtier.config import load_config
from sync.retier import retier
from sync.retier_threads import InProcessUnits
config = load_config(sys.argv[1])
with open_engine(config) as engine:
    retier(engine, InProcessUnits(lambda: open_engine(config).__enter__(), workers=1))
"""


def test_a_dead_coordinator_s_unit_is_ended_with_its_recordings_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The coordinator and its unit's worker die together (one process), the unit
    committed and some of its answers recorded: no attempt comes back, and no coordinator
    finishes the run. The next run marks the run interrupted and ends the unit as the
    run's end would have: its recordings folded into its result (none left behind, as
    they were), its writes left held as a dead run's and sent, none twice."""
    with _zoho(tmp_path, monkeypatch) as harness:
        coordinator = subprocess.run(
            [sys.executable, "-c", COORDINATOR, str(harness.config)],
            env={**harness.env, ENV: "after_record:1"},
            capture_output=True,
            text=True,
        )
        assert coordinator.returncode == -signal.SIGKILL, coordinator.stderr[-2000:]
        ((ref, status, kept),) = _units(harness)
        assert status == "committed" and _recordings_left(harness) > 0
        rerun = harness.run()
        assert rerun.returncode == 0 and rerun.report is not None, rerun.stderr[-2000:]
        assert _recordings_left(harness) == 0
        assert _units(harness) == [(ref, "failed", kept)]  # every recording in its result
        rows: dict[str, Any] = _rows(harness)
        assert {r["run_id"] for r in rows["outbox"]} >= {died_run_id(ref)}
        assert not [r for r in rows["outbox"] if r["status"] == "pending"]
        made = Counter(t.external_id for t in harness.sandbox.tasks())
        assert not [key for key, n in made.items() if n > 1]


def _units(harness: Harness) -> list[tuple[UnitRef, str, Any]]:
    """The page units in the store: each with its status and its stored result as its
    recordings since complete it (``with_recorded``)."""
    store = StateStore.open(harness.state_url())
    try:
        with store.begin() as conn:
            table = units.retier_units
            rows = conn.execute(
                sa.select(table.c.run_id, table.c.seq, table.c.status, table.c.result)
                .where(table.c.seq > 0)
                .order_by(table.c.seq)
            ).all()
            return [
                (ref, r.status, with_recorded(conn, ref, r.result))
                for r in rows
                for ref in [UnitRef(r.run_id, r.seq)]
            ]
    finally:
        store.close()


@contextmanager
def _zoho(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """The Zoho sandbox, a write batch of one, one write call at a time."""
    sandbox = start_sandbox("zoho", tmp_path / "sandbox", CUSTOMERS)
    try:
        harness = Harness(sandbox, tmp_path / "sandbox", crm_extra={"write_batch": 1})
        assert harness.text.count("[sync]\n") == 1
        harness.config.write_text(
            harness.text.replace("[sync]\n", "[sync]\nwrite_concurrency = 1\n"), "utf-8"
        )
        for name, value in harness.env.items():
            monkeypatch.setenv(name, value)
        yield harness
    finally:
        sandbox.stop()


def _held_as_a_dead_run_s(
    harness: Harness, sanction: Sanction, run_id: str, closed_by: str, sent: bool
) -> None:
    """The sanctioned customer's sales task, left by unit 1 of ``run_id``, was held and
    closed in doubt by ``closed_by``'s run."""
    cid, key = sanction.cid, sanction.key
    tasks = harness.sandbox.tasks()
    # no task made twice; the sanctioned customer's sales task closed if the CRM got it,
    # never made if not
    assert not [k for k, n in Counter(t.external_id for t in tasks).items() if n > 1]
    assert [t.open for t in tasks if t.external_id == key] == ([False] if sent else [])
    rows: dict[str, Any] = _rows(harness)
    task_rows = [r for r in rows["outbox"] if r["key"] == key]
    assert [(r["kind"], r["status"], r["run_id"]) for r in task_rows] == [
        ("task", "superseded", died_run_id(UnitRef(run_id, 1))),
        ("task_close", "done", closed_by),
    ]
    audited = [a["new"] for a in rows["audit"] if a["new"]["key"] == key]
    closed = {"rule": sanction.rule, "key": key, "closed": True, "in_doubt": True}
    assert audited == [closed]
    review = [
        e for e in rows["effects"] if e["customer_id"] == cid and e["rule"] == "sanctions_review"
    ]
    assert len(review) == 1 and review[0]["active"]
    assert not [r for r in rows["outbox"] if r["status"] == "pending"]


def _recordings_left(harness: Harness) -> int:
    store = StateStore.open(harness.state_url())
    try:
        with store.begin() as conn:
            count = sa.select(sa.func.count()).select_from(retier_unit_answers)
            return int(conn.execute(count).scalar() or 0)
    finally:
        store.close()
