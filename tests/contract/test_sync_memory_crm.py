"""The sync suite's in-memory CRM (tests/sync/test_sync_stateful.py) says it keeps the
connector contract, and its state machine (docs/targets.md R2) relies on that. Here it is
held to the parts of the contract suite that need no sandbox: an ordered, inclusive, paged
change stream whose ties break by id, fetch of existing ids only, one result per plan item
in plan order, writes that bump the modstamp, and no call for an empty plan. (The full
suite, sandbox and all, runs over the in-memory plugin CRM in test_connector_contract.py.)"""

from __future__ import annotations

from datetime import date

from connectors.contract import (
    Cursor,
    FieldUpdate,
    MembershipChange,
    TaskClose,
    TaskUpsert,
    WritePlan,
)
from tests.sync.test_sync_stateful import IDS, MemoryConnector, MemoryCrm
from tiering_core.models import TaskAction


def read_all(connector: MemoryConnector, since: Cursor | None = None) -> list[str]:
    return [r.profile.id for page in connector.read_changed(since) for r in page.records]


def test_the_change_stream_is_ordered_inclusive_and_paged() -> None:
    crm = MemoryCrm()
    connector = MemoryConnector(crm)
    crm.modstamp["C5"] = crm.stamp()
    crm.modstamp["C2"] = crm.stamp(same_as_last=True)  # a tie: broken by id
    pages = list(connector.read_changed(None))
    assert all(len(p.records) <= connector.capabilities.page_size for p in pages)
    records = [r for p in pages for r in p.records]
    assert [r.cursor for r in records] == sorted(r.cursor for r in records)
    assert sorted(r.profile.id for r in records) == IDS
    assert read_all(connector, records[-2].cursor) == ["C2", "C5"]


def test_fetch_returns_existing_ids_only() -> None:
    connector = MemoryConnector(MemoryCrm())
    assert [r.profile.id for r in connector.fetch(["C1", "C404", "C3"])] == ["C1", "C3"]


def test_one_result_per_plan_item_in_plan_order() -> None:
    crm = MemoryCrm()
    connector = MemoryConnector(crm)
    task = TaskAction(
        rule="call", subject="s", priority="normal", due=date(2027, 1, 4), dedupe_key="k"
    )
    plan = WritePlan(
        field_updates=(FieldUpdate("C1", {"value_tier": "private"}),),
        tasks=(TaskUpsert("C1", task),),
        memberships=(MembershipChange("C1", "private", True, "m"),),
        task_closes=(TaskClose("C1", "k", "call"),),
    )
    before = crm.modstamp["C1"]
    results = connector.apply(plan)
    assert [(r.kind, r.key, r.ok) for r in results] == [
        ("field_update", "C1", True),
        ("task", "k", True),
        ("membership", "m", True),
        ("task_close", "k", True),
    ]
    assert crm.modstamp["C1"] > before  # crmtier's own write is a change too
    assert read_all(connector)[-1] == "C1"


def test_an_empty_plan_makes_no_call() -> None:
    connector = MemoryConnector(MemoryCrm())
    assert connector.apply(WritePlan()) == []
    assert connector.calls["write"] == 0
