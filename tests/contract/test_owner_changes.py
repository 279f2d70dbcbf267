"""Direct owner changes for advisor coverage (issue 21 §2, the bank's opt-in) through each
CRM's own API: Salesforce ``OwnerId`` in sObject Collections of ≤ 200, Zoho ``Owner`` in
Update Records of ≤ 100, FXiaoke ``changeOwner`` one record a call. Each change is read
back as the customer's owner; a record the CRM refuses is a per-record result naming it,
and the others still change."""

from __future__ import annotations

import pytest

from connectors.contract import Connector, OwnerChange, OwnerWrites
from connectors.sandbox.salesforce_wire import make_id
from connectors.sandbox.zoho import zoho_customer_id

#: a customer id each CRM has no record for
MISSING = {
    "salesforce": make_id("Account", 999_999),
    "zoho": zoho_customer_id(999_999),
    "fxiaoke": "65f000000000000000999999",
}


#: the calls four owner changes take, one refused: on FXiaoke the refused record is looked
#: into for a lock as a refused field update is (``locks.explain_refusals``: its lock
#: fields, then its approvals), so a locked record is ``RECORD_LOCKED``, not a dead letter
WRITE_CALLS = {
    "salesforce": {"collections_update": 1},
    "zoho": {"update": 1},
    "fxiaoke": {"changeOwner": 4, "query": 2},
}


@pytest.mark.parametrize("crm", sorted(MISSING))
def test_owners_change_and_a_refused_record_is_its_own_result(sandbox_factory, connect, crm):
    sandbox = sandbox_factory(crm, customers=30)
    connector: Connector = connect(sandbox)
    owners = connector
    assert isinstance(owners, OwnerWrites)
    records = [r for page in connector.read_changed(None) for r in page.records]
    rm = next(r.profile.owner_id for r in records if r.profile.owner_id)
    moved = [r.profile.id for r in records if r.profile.owner_id != rm][:3]
    changes = [OwnerChange(cid, rm) for cid in moved]
    before = dict(connector.api_usage().calls)
    results = owners.change_owners([*changes, OwnerChange(MISSING[crm], rm)])
    assert [(r.kind, r.key) for r in results] == [
        ("field_update", c.customer_id) for c in [*changes, OwnerChange(MISSING[crm], rm)]
    ]
    assert [r.ok for r in results] == [True, True, True, False]
    assert results[-1].error_code and results[-1].message
    # The fewest calls: one batch on Salesforce and Zoho, one per record on FXiaoke (Zoho
    # also reads its module's field metadata once per connector, to type the values).
    calls = {k: v - before.get(k, 0) for k, v in connector.api_usage().calls.items()}
    assert {k: n for k, n in calls.items() if n and k != "fields"} == WRITE_CALLS[crm]
    assert {r.profile.owner_id for r in connector.fetch(moved)} == {rm}
