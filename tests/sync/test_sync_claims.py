"""The sync run and the webhook worker on the same customers at once (issue 22 §1): each
holds the customers it processes by their claims, and a view older than one already
processed is never written. On SQLite and PostgreSQL, against the Salesforce sandbox.

Every interleaving is forced by hooks, not timing: the run's claim step or its pause
while waiting, and the worker's write call, are where the other side is made to act.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.contract import WritePlan, WriteResult
from connectors.sandbox.base import Sandbox
from connectors.webhook_events import ChangeEvent
from crmtier.commands.serve import Parts
from sync.claims import Admission
from sync.run_report import RunReport
from sync.state import load_states
from sync.worker import BatchReport
from sync.written_values import same_value
from tests.sync.conftest import PG_URL, pg_schema
from tests.sync.serve_stack import ARREARS, GOOD, PAID_AND_RICH, first_customer, on_a_thread, served
from webhooks.runtime import Realtime


@dataclass
class Stack:
    sandbox: Sandbox
    parts: Parts
    realtime: Realtime
    customer: str

    def shown(self) -> dict[str, object]:
        return self.sandbox.written(self.customer)

    def recorded_as_shown(self) -> bool:
        """What the store says crmtier wrote is what the CRM shows."""
        with self.parts.store.begin() as conn:
            state = load_states(conn, self.parts.engine.stream, [self.customer])[self.customer]
        shown = self.shown()
        return all(same_value(v, shown.get(k)) for k, v in (state.fields or {}).items())

    def notify(self, key: str) -> None:
        event = ChangeEvent("salesforce", key, self.customer)
        self.realtime.inbox.add([[event]], datetime.now(UTC))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stack(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    with ExitStack() as stack:
        url = None
        if request.param == "postgres":
            schema = stack.enter_context(pg_schema())
            url = f"{PG_URL}?options=-csearch_path%3D{schema}"
        sandbox, parts = stack.enter_context(served(tmp_path, monkeypatch, url))
        stack.callback(parts.engine.claims.close)
        customer = first_customer(parts)
        sandbox.edit_customer(customer, GOOD)
        assert parts.engine.run().status == "succeeded"
        realtime = Realtime(parts.settings, parts.store, parts.connector, parts.engine)
        yield Stack(sandbox, parts, realtime, customer)


def test_a_sync_run_never_writes_a_view_older_than_one_a_worker_processed(stack: Stack) -> None:
    """The run read the customer in arrears. Before it claims the customer, the arrears
    are paid and the worker processes that newer view. The run's older view is
    superseded: counted so, never written; the CRM keeps the worker's decision."""
    engine, claims = stack.parts.engine, stack.parts.engine.claims
    stack.sandbox.edit_customer(stack.customer, ARREARS)
    claim_waiting = claims.claim_waiting
    worker: list[BatchReport] = []

    def worker_gets_there_first(ids: Collection[str], owner: str, within: timedelta) -> set[str]:
        if stack.customer in ids and not worker:
            stack.sandbox.edit_customer(stack.customer, PAID_AND_RICH)
            stack.notify("n-paid")
            worker.append(on_a_thread(stack.realtime.worker.run_batch))
        return claim_waiting(ids, owner, within)

    claims.claim_waiting = worker_gets_there_first  # type: ignore[method-assign]
    report = engine.run()
    claims.claim_waiting = claim_waiting  # type: ignore[method-assign]
    assert worker[0].outcomes == {"written": 1}
    assert report.status == "succeeded", report.error
    assert report.outcomes[stack.customer] == "superseded"
    assert report.counts.skipped["superseded"] == 1 and report.counts.reconciles()
    shown = stack.shown()
    assert (shown["credit_risk"], shown["value_tier"]) == ("low", "private")
    assert stack.recorded_as_shown()
    assert _rerun(stack).outcomes.get(stack.customer, "unchanged") == "unchanged"


class RunBehindWorker:
    """A sync run on a thread of its own, started from inside the worker's batch
    (``start``, called from a hook): the worker goes on only once the run pauses for a
    claim the worker holds, and the run's pause lasts until the worker's batch is over
    (``finish``). What the run admitted of the customer is kept (``admitted``: modstamp,
    and whether a committed page had decided from that very version)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        claims = stack.parts.engine.claims
        self.waits, self.worker_done = threading.Event(), threading.Event()
        self.pauses: list[float] = []
        self.reports: list[RunReport] = []
        self.admitted: list[tuple[datetime, bool]] = []
        self.thread = threading.Thread(target=lambda: self.reports.append(stack.parts.engine.run()))
        claims.sleep = self._paused
        admit = claims.admit

        def admit_seen(versions: Mapping[str, datetime], owner: str) -> Admission:
            admission = admit(versions, owner)
            if threading.current_thread() is self.thread and stack.customer in versions:
                repeated = stack.customer in admission.repeated
                self.admitted.append((versions[stack.customer], repeated))
            return admission

        claims.admit = admit_seen  # type: ignore[method-assign]

    def _paused(self, seconds: float) -> None:  # the run's pause: over once the worker let go
        self.pauses.append(seconds)
        self.waits.set()
        assert self.worker_done.wait(60), "the worker never finished"

    def start(self) -> None:
        """Start the run (once) and wait until it pauses for the worker's claim."""
        if not self.thread.is_alive() and not self.reports:
            self.thread.start()
            assert self.waits.wait(60), "the run never waited for the worker's claim"

    def finish(self) -> RunReport:
        self.worker_done.set()
        self.thread.join()
        report = self.reports[0]
        assert self.pauses and report.status == "succeeded", report.error
        assert report.counts.reconciles()
        return report


def test_a_sync_run_waits_for_a_customer_a_worker_holds_then_builds_on_its_write(
    stack: Stack,
) -> None:
    """The worker has claimed the customer and admitted its current version when the run
    reads that same version (the worker's write not yet made) and reaches its claim: the
    run pauses until the worker let go, then builds on what the worker recorded: the
    version it admits is one the worker's committed page decided from
    (``sync.claims.Admission.repeated``), so it is settled, not decided again against
    fields the worker's write has changed since (no second write), and what is recorded
    is what the CRM shows. No test of this ran against a real CRM's sandbox, with the
    worker's own claims: tests/sync/test_claims_decided_settles.py runs the engine's
    pass over an in-memory CRM."""
    claims = stack.parts.engine.claims
    stack.sandbox.edit_customer(stack.customer, PAID_AND_RICH)
    run = RunBehindWorker(stack)
    admit = claims.admit
    decided: list[datetime] = []  # the version the worker admitted and decides from

    def run_reads_once_the_worker_admitted(
        versions: Mapping[str, datetime], owner: str
    ) -> Admission:
        admission = admit(versions, owner)
        if threading.current_thread() is threading.main_thread():  # the worker's
            decided.append(versions[stack.customer])
            run.start()
        return admission

    claims.admit = run_reads_once_the_worker_admitted  # type: ignore[method-assign]
    stack.notify("n-rich")
    assert stack.realtime.worker.run_batch().outcomes == {"written": 1}
    writes_by_the_worker = stack.sandbox.write_calls()
    report = run.finish()
    # the run read the version the worker decided from, older than the worker's write
    assert run.admitted == [(decided[0], True)]
    assert stack.parts.connector.fetch([stack.customer])[0].modstamp > decided[0]
    assert report.outcomes.get(stack.customer) == "unchanged"
    assert stack.sandbox.write_calls() == writes_by_the_worker
    shown = stack.shown()
    assert (shown["credit_risk"], shown["value_tier"]) == ("low", "private")
    assert stack.recorded_as_shown()


def test_a_sync_run_waits_for_a_worker_s_write_in_flight_then_reads_it_written(
    stack: Stack,
) -> None:
    """The worker is inside its write call when the run starts: the run's recovery of
    pending outbox writes finds the worker's item and waits for the customer's claim; once
    the worker let go, the run reads the customer as written (a newer version than the one
    the worker decided from, so not ``repeated``) and settles it because the CRM shows
    what the store recorded: no second write."""
    stack.sandbox.edit_customer(stack.customer, PAID_AND_RICH)
    run = RunBehindWorker(stack)
    apply = stack.parts.connector.apply

    def run_arrives_while_the_worker_writes(plan: WritePlan) -> list[WriteResult]:
        run.start()
        return apply(plan)

    stack.parts.connector.apply = run_arrives_while_the_worker_writes  # type: ignore[method-assign]
    stack.notify("n-rich")
    assert stack.realtime.worker.run_batch().outcomes == {"written": 1}
    writes_by_the_worker = stack.sandbox.write_calls()
    stack.parts.connector.apply = apply  # type: ignore[method-assign]
    report = run.finish()
    assert [repeated for _, repeated in run.admitted] == [False]  # the written version
    assert report.outcomes.get(stack.customer) == "unchanged"
    assert stack.sandbox.write_calls() == writes_by_the_worker
    assert stack.recorded_as_shown()


def test_a_run_stops_before_a_page_whose_customer_stays_held(stack: Stack) -> None:
    """A holder that keeps the customer past the run's wait: the run stops before the
    page, says why, and the bookmark stays, so the next run reads the customer again."""
    engine, claims = stack.parts.engine, stack.parts.engine.claims
    stack.sandbox.edit_customer(stack.customer, ARREARS)
    claims.sleep = lambda seconds: None
    claims.claim([stack.customer], "a stuck worker")
    stopped = engine.run()
    assert stopped.status == "failed"
    assert stopped.error is not None and "stayed claimed by another worker" in stopped.error
    assert stack.customer not in (stopped.error or "")  # named by its pseudonym only
    claims.release([stack.customer], "a stuck worker")
    again = engine.run()
    assert again.status == "succeeded" and again.outcomes[stack.customer] == "written"
    assert stack.shown()["credit_risk"] == "high"


def _rerun(stack: Stack) -> RunReport:
    return stack.parts.engine.run()


def test_two_workers_write_different_customers_at_once_and_an_older_view_loses(
    stack: Stack,
) -> None:
    """Two workers (two ``serve`` processes' worth) on one store: while B is inside its
    write of customer 1, A claims, reads and writes customer 2. Then A, holding a view of
    customer 1 older than the one B processed, has it superseded: never written."""
    other = next(
        r.profile.id
        for page in stack.parts.connector.read_changed(None)
        for r in page.records
        if r.profile.id != stack.customer
    )
    a = Realtime(stack.parts.settings, stack.parts.store, stack.parts.connector, stack.parts.engine)
    b = stack.realtime
    read_before_b = stack.parts.connector.fetch([stack.customer])  # A's old view, kept
    stack.sandbox.edit_customer(stack.customer, PAID_AND_RICH)
    stack.sandbox.edit_customer(other, PAID_AND_RICH)
    apply = stack.parts.connector.apply
    inside_b: list[BatchReport] = []
    started = threading.Event()  # A's own writes pass through this hook too

    def a_works_while_b_writes(plan: WritePlan) -> list[WriteResult]:
        if not started.is_set():
            started.set()
            a.inbox.add([[ChangeEvent("salesforce", "n-other", other)]], datetime.now(UTC))
            inside_b.append(on_a_thread(a.worker.run_batch))
        return apply(plan)

    stack.parts.connector.apply = a_works_while_b_writes  # type: ignore[method-assign]
    stack.notify("n-b")
    assert b.worker.run_batch().outcomes == {"written": 1}
    stack.parts.connector.apply = apply  # type: ignore[method-assign]
    assert inside_b[0].outcomes == {"written": 1}  # A wrote customer 2 during B's write
    assert stack.sandbox.written(other)["value_tier"] == "private"

    a.worker.fetch = lambda ids: read_before_b  # A's batch re-reads an older copy
    stack.notify("n-a-late")
    assert a.worker.run_batch().outcomes == {"superseded": 1}
    assert stack.shown()["value_tier"] == "private"  # B's newer decision stands
    assert stack.recorded_as_shown()
