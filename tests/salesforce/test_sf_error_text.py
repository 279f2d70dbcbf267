"""A Salesforce error reaches the admin as one line: the CRM's code, the field or object
it names, and the next step; never a record value (the run report's error and the dead
letter's reason are what an admin reads)."""

from __future__ import annotations

from pathlib import Path

from test_sf_bulk_sync import _sync

from connectors.contract import FieldUpdate, WritePlan

MISSING = "Value_Tierx__c"


def test_a_missing_write_back_field_fails_the_run_with_code_field_and_doctor(
    sandbox_factory, connect, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_factory("salesforce", customers=20)
    connector = connect(sandbox)
    fields = {**connector.writeback.fields, "value_tier": MISSING}
    connector.writeback = connector.writeback.model_copy(update={"fields": fields})
    report = _sync(tmp_path, connector)
    assert report.status == "failed"
    assert (
        f"Salesforce refused field {MISSING} on Account: INVALID_FIELD (no such column) — "
        "run crmtier doctor"
    ) in str(report.error)


def test_a_refused_value_is_named_by_field_not_by_value(sandbox_factory, connect) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_factory("salesforce", customers=2)
    connector = connect(sandbox)
    plan = WritePlan(field_updates=(FieldUpdate(sandbox.customer_id(0), {"value_tier": "gold"}),))
    [result] = connector.apply(plan)
    assert not result.ok and result.error_code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert result.message == (
        "Salesforce refused field Value_Tier__c on Account: "
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST (value not in the restricted picklist) — "
        "add crmtier's values to the picklist; run crmtier doctor"
    )
    assert "gold" not in result.message
