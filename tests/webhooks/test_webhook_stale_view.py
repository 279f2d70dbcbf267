"""A notification whose batch meets the scheduled sync at work on its customer (one
``serve``, the documented topology) is applied to the record as the CRM holds it once the
sync is done, never to a view read before; and what crmtier records as written is what the
CRM shows.

The interleaving is forced with hooks, not timing: the sync's first write call runs the
worker's batch (on its own thread) while the sync holds the customer, and the customer
changes in between.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.contract import WritePlan, WriteResult
from connectors.sandbox.base import Sandbox
from connectors.webhook_events import ChangeEvent
from crmtier.commands.serve import Parts
from sync.state import load_states
from sync.written_values import same_value
from tests.sync.serve_stack import ARREARS, GOOD, PAID_AND_RICH, first_customer, on_a_thread, served
from webhooks.runtime import Realtime


@pytest.fixture
def parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Parts]]:
    with served(tmp_path, monkeypatch) as opened:
        yield opened


def test_a_webhook_batch_meeting_the_sync_plans_against_what_the_sync_wrote(
    parts: tuple[Sandbox, Parts],
) -> None:
    sandbox, p = parts
    engine = p.engine
    customer = first_customer(p)
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
            sandbox.edit_customer(customer, PAID_AND_RICH)
            realtime.inbox.add([[ChangeEvent("salesforce", "n-paid", customer)]], datetime.now(UTC))
            during.append(on_a_thread(realtime.worker.run_batch).outcomes)
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
    customer = first_customer(p)
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
