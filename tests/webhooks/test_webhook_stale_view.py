"""A notification whose batch meets the scheduled sync at work on its customer (one
``serve``, the documented topology) is applied to the record as the CRM holds it once the
sync is done, never to a view read before; and what crmtier records as written is what the
CRM shows.

The interleaving is forced with hooks, not timing: the sync's first write call runs the
worker's batch (on its own thread) while the sync holds the customer, and the customer
changes in between.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.contract import WritePlan, WriteResult
from connectors.sandbox.base import Sandbox, open_sandbox
from connectors.webhook_events import ChangeEvent
from crmtier.commands.serve import Parts, open_parts
from crmtier.config import load_config
from sync.planner import same_value
from sync.state import load_states
from sync.worker import BatchReport
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


def _on_a_thread(run: Callable[[], BatchReport]) -> BatchReport:
    """``run`` on a thread of its own (as the worker's thread is), joined."""
    out: list[BatchReport] = []
    t = threading.Thread(target=lambda: out.append(run()))
    t.start()
    t.join()
    return out[0]


def test_a_webhook_batch_meeting_the_sync_plans_against_what_the_sync_wrote(
    parts: tuple[Sandbox, Parts],
) -> None:
    sandbox, p = parts
    engine = p.engine
    customer = next(r.profile.id for page in p.connector.read_changed(None) for r in page.records)
    sandbox.edit_customer(customer, GOOD)  # low risk
    engine.run()
    realtime = Realtime(p.settings, p.store, p.connector, engine)
    apply = p.connector.apply
    during: list[dict[str, int]] = []

    def apply_after_the_customer_moved_on(plan: WritePlan) -> list[WriteResult]:
        if not during:
            # The sync read the customer in arrears and is about to write that. Now the
            # arrears are paid and the deposits grow, the CRM notifies, and the worker's
            # batch starts while the sync still holds the customer: it must not read it now.
            sandbox.edit_customer(customer, {**GOOD, "assets.deposits": 9_000_000})
            realtime.inbox.add([[ChangeEvent("salesforce", "n-paid", customer)]], datetime.now(UTC))
            during.append(_on_a_thread(realtime.worker.run_batch).outcomes)
        return apply(plan)

    p.connector.apply = apply_after_the_customer_moved_on  # type: ignore[method-assign]
    sandbox.edit_customer(customer, ARREARS)  # high risk
    report = engine.run()
    p.connector.apply = apply  # type: ignore[method-assign]
    assert report.outcomes.get(customer) == "written"
    assert during == [{"busy": 1}]  # left in the inbox, uncounted, while the sync held it
    realtime.worker.clock = lambda: datetime.now(UTC) + timedelta(seconds=1)  # claimed_delay
    assert realtime.worker.drain().outcomes == {"written": 1}

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
