"""Bulk API 2.0 carries a large run end to end: the sync engine over the Salesforce
connector and sandbox, with the shipped ``bulk_threshold`` (2,000). A page is at most
2,000 customers and a write call 200, so only a run-wide count can cross the threshold:
2,100 changed customers made 0 bulk jobs before, and make exactly one now."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from connectors.mapping import WritebackConfig
from sync.engine import RunOptions, SyncEngine, SyncSettings
from sync.store import StateStore
from tiering_core.engine import decide_batch
from tiering_core.policy import load_policy

AS_OF = date(2026, 6, 30)


def _sync(tmp_path: Path, connector, full: bool = False):  # type: ignore[no-untyped-def]
    """One run of the engine with the default policy, tier fields only (the bulk path
    carries field updates; tasks and memberships are batched as before)."""
    policy = load_policy()
    writeback = WritebackConfig.model_validate(
        {**connector.writeback.model_dump(), "tasks": False, "campaign_memberships": False}
    )
    engine = SyncEngine(
        StateStore.open(f"sqlite:///{tmp_path / 'state.db'}"),
        connector,
        writeback,
        partial(decide_batch, policy=policy, as_of=AS_OF),
        stream="salesforce:Account",
        pseudonym_key=b"k" * 32,
        settings=SyncSettings(overlap=timedelta(seconds=5)),
        policy_version=policy.version,
    )
    return engine.run(RunOptions(as_of=AS_OF, full=full))


@pytest.mark.parametrize(("customers", "jobs"), [(2100, 1), (1900, 0)])
def test_a_first_sync_above_the_threshold_is_one_bulk_job(
    sandbox_factory, connect, tmp_path: Path, customers: int, jobs: int
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_factory("salesforce", customers=customers)
    connector = connect(sandbox, bulk_poll_seconds=0)
    assert connector.capabilities.bulk_threshold == 2000  # the shipped default
    report = _sync(tmp_path, connector)
    assert report.status == "succeeded", report.error
    calls = sandbox.server.calls.counts()
    assert calls.get("bulk_ingest_create", 0) == jobs
    # every field update went one way or the other, never both
    collections = calls.get("collections_update", 0)
    assert collections == (0 if jobs else -(-report.counts.writes["field_update"] // 200))
    assert report.counts.writes["field_update"] == report.counts.written > 2000 * jobs
    assert sandbox.written(sandbox.customer_id(customers - 1)).get("value_tier")


def test_a_policy_retier_goes_through_the_bulk_path_too(
    sandbox_factory, connect, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """``sync --full`` when every customer's tier moves (here: the tier field was cleared
    in the CRM for all of them, as a policy change moves every decision): the re-tier's
    writes go as one bulk job."""
    sandbox = sandbox_factory("salesforce", customers=2100)
    connector = connect(sandbox, bulk_poll_seconds=0)
    assert _sync(tmp_path, connector).status == "succeeded"
    tier_field = connector.writeback.fields["value_tier"]
    earlier = datetime.now(UTC) - timedelta(minutes=1)  # before the next run starts
    for i in range(2100):
        sandbox.store.update(
            "Account", sandbox.customer_id(i), {tier_field: None}, modstamp=earlier
        )
    sandbox.server.calls.reset()
    report = _sync(tmp_path, connector, full=True)
    assert report.status == "succeeded", report.error
    assert sandbox.server.calls.counts().get("bulk_ingest_create", 0) == 1
    assert report.counts.writes["field_update"] == 2100
