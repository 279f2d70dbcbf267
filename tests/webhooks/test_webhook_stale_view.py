"""A notification whose batch waits for the scheduled sync (one ``serve``, the documented
topology) is applied to the record as the CRM holds it once the sync is done, never to a
view read before it waited; and what crmtier records as written is what the CRM shows.

The interleaving is forced with events, not timing: the sync's first write call pauses
until the worker's batch is waiting for the stream, and the customer changes in between."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import pytest

from connectors.contract import WritePlan, WriteResult
from connectors.sandbox.base import Sandbox, open_sandbox
from connectors.webhook_events import ChangeEvent
from crmtier.commands.serve import Parts, open_parts
from crmtier.config import load_config
from sync.planner import same_value
from sync.state import load_states
from webhooks.runtime import Realtime

#: a customer whose credit risk moves with its days past due alone (the default policy:
#: none is low, over 90 high)
GOOD = {
    "credit.score": 800,
    "credit.debt_to_income": 0.1,
    "credit.loan_class": "normal",
    "credit.days_past_due_max_12m": 0,
}
ARREARS = {**GOOD, "credit.days_past_due_max_12m": 120}


class ReportingLock:
    """The in-process stream lock, telling the test when someone starts waiting for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.held = threading.Event()
        self.waiting = threading.Event()

    def __enter__(self) -> None:
        if self.held.is_set():
            self.waiting.set()
        self._lock.acquire()
        self.held.set()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.held.clear()
        self._lock.release()


@pytest.fixture
def parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Parts]]:
    sandbox = open_sandbox("salesforce", data_dir=tmp_path / "crm")
    sandbox.seed(5)
    sandbox.start()
    text, env = sandbox.crmtier_config()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "crmtier.toml"
    path.write_text(text)
    opened = open_parts(load_config(path))
    try:
        yield sandbox, opened
    finally:
        opened.close()
        sandbox.stop()


def test_a_webhook_batch_waiting_for_the_sync_plans_against_what_the_sync_wrote(
    parts: tuple[Sandbox, Parts],
) -> None:
    sandbox, p = parts
    engine = p.engine
    customer = next(r.profile.id for page in p.connector.read_changed(None) for r in page.records)
    sandbox.edit_customer(customer, GOOD)  # low risk
    engine.run()
    lock = ReportingLock()
    realtime = Realtime(p.settings, p.store, p.connector, engine, sync_lock=lock)  # type: ignore[arg-type]
    worker_done = threading.Event()

    def run_batch() -> None:
        try:
            realtime.worker.run_batch()
        finally:
            worker_done.set()

    apply = p.connector.apply
    paused: list[threading.Thread] = []

    def apply_after_the_customer_moved_on(plan: WritePlan) -> list[WriteResult]:
        if not paused:
            # The sync read the customer in arrears and is about to write that. Now the
            # arrears are paid and the deposits grow, the CRM notifies, and the worker's
            # batch starts and must wait for the stream the sync holds.
            sandbox.edit_customer(customer, {**GOOD, "assets.deposits": 9_000_000})
            realtime.inbox.add([[ChangeEvent("salesforce", "n-paid", customer)]], datetime.now(UTC))
            paused.append(threading.Thread(target=run_batch))
            paused[0].start()
            assert lock.waiting.wait(60), "the worker's batch never waited for the stream"
        return apply(plan)

    p.connector.apply = apply_after_the_customer_moved_on  # type: ignore[method-assign]
    sandbox.edit_customer(customer, ARREARS)  # high risk
    with lock:
        report = engine.run()
    assert report.outcomes.get(customer) == "written" and paused
    assert worker_done.wait(60)
    paused[0].join()
    p.connector.apply = apply  # type: ignore[method-assign]

    shown = sandbox.written(customer)
    assert shown["credit_risk"] == "low"  # arrears paid: the newest data, in every field
    assert shown["value_tier"] == "private"
    with p.store.begin() as conn:
        saved = load_states(conn, engine.stream, [customer])[customer].fields or {}
    differ = {k: (v, shown.get(k)) for k, v in saved.items() if not same_value(v, shown.get(k))}
    assert differ == {}  # the whole decision for the newest data is what the CRM shows
    assert engine.run().outcomes.get(customer, "unchanged") == "unchanged"  # its own echo


def test_what_is_recorded_as_written_is_what_the_crm_shows_when_it_already_showed_part(
    parts: tuple[Sandbox, Parts],
) -> None:
    """A user set the new credit risk by hand in the same edit that recorded arrears: the
    plan sends only the reasons, and the record of what the CRM holds must say "high" too,
    not keep the "low" crmtier wrote before (else the customer's next read never passes as
    crmtier's own echo, and the reasons are rewritten)."""
    sandbox, p = parts
    engine = p.engine
    customer = next(r.profile.id for page in p.connector.read_changed(None) for r in page.records)
    sandbox.edit_customer(customer, GOOD)
    engine.run()
    assert sandbox.written(customer)["credit_risk"] == "low"
    sandbox.edit_customer(customer, ARREARS)
    field = p.engine.writeback.fields["credit_risk"]
    sandbox.store.update(sandbox.org.customer_object, customer, {field: "high"})  # type: ignore[attr-defined]
    assert engine.run().outcomes.get(customer) == "written"
    shown = sandbox.written(customer)
    with p.store.begin() as conn:
        saved = load_states(conn, engine.stream, [customer])[customer].fields or {}
    differ = {k: (v, shown.get(k)) for k, v in saved.items() if not same_value(v, shown.get(k))}
    assert differ == {}
    assert engine.run().outcomes.get(customer, "unchanged") == "unchanged"
