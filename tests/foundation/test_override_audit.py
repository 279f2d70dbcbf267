"""Who proposed and who approved an override, from each CRM's audit (connectors/
override_audit.py and the three readers): the reduction rules as a table, the readers over
recorded answers, and the call budget: nothing for records without an approved override,
one batched history query per page on Salesforce."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from connectors.contract import Capabilities, CrmRecord
from connectors.fxiaoke import override_audit as fx
from connectors.mapping import FieldMapping, load_default_mapping
from connectors.override_audit import (
    AuditEvent,
    OverrideAudit,
    awaiting_audit,
    trail,
    with_override_audit,
)
from connectors.salesforce import override_audit as sf
from tiering_core.models import CustomerProfile


def at(hour: int) -> datetime:
    return datetime(2026, 11, 20, hour, tzinfo=UTC)


P, A = "proposal", "approval"
TRAILS = [
    ("maker then checker", [(P, "rm", 9), (A, "head", 11)], ("rm", "head", 9, 11)),
    ("self-approval shows", [(P, "rm", 9), (A, "rm", 10)], ("rm", "rm", 9, 10)),
    (
        "approval before the last edit",
        [(P, "rm", 9), (A, "head", 10), (P, "rm", 12)],
        ("rm", None, 12, None),
    ),
    (
        "the checker edits: a new proposal",
        [(P, "rm", 9), (P, "head", 10), (A, "head", 11)],
        ("head", "head", 10, 11),
    ),
    ("no proposal: nothing", [(A, "head", 11)], (None, None, None, None)),
    ("the last approval counts", [(P, "rm", 9), (A, "a", 10), (A, "b", 11)], ("rm", "b", 9, 11)),
    ("order of the rows does not matter", [(A, "head", 11), (P, "rm", 9)], ("rm", "head", 9, 11)),
]


@pytest.mark.parametrize(("name", "events", "want"), TRAILS, ids=[t[0] for t in TRAILS])
def test_trail(name: str, events: list[tuple[str, str, int]], want: tuple[Any, ...]) -> None:
    got = trail(AuditEvent(kind, user, at(h)) for kind, user, h in events)  # type: ignore[arg-type]
    maker, checker, proposed, approved = want
    assert got == OverrideAudit(
        maker, checker, proposed and at(proposed), approved and at(approved)
    )


def record(cid: str, **override: Any) -> CrmRecord:
    data: dict[str, Any] = {"id": cid}
    if override:
        data["override"] = override
    return CrmRecord(CustomerProfile.model_validate(data), datetime(2026, 11, 20, tzinfo=UTC))


APPROVED = {"value_tier": "private", "approved": True, "expires": "2027-01-31"}


def test_only_approved_overrides_await_the_audit() -> None:
    assert awaiting_audit(record("a", **APPROVED))
    assert not awaiting_audit(record("b"))
    assert not awaiting_audit(record("c", **{**APPROVED, "approved": False}))
    assert not awaiting_audit(record("d", approved=True))  # nothing proposed
    assert not awaiting_audit(record("e", **APPROVED, maker_id="x", checker_id="y"))


@dataclass
class FakeSalesforceClient:
    answers: list[dict[str, Any]]
    queries: list[str] = field(default_factory=list)

    def query_all(self, soql: str) -> list[dict[str, Any]]:
        self.queries.append(soql)
        return [r for r in self.answers if f"'{r['AccountId']}'" in soql]


@dataclass
class FakeConnector:
    crm: str
    client: Any
    mapping: FieldMapping
    module: str = "Contacts"
    #: Zoho's reader caps the timeline pages a customer costs (``crm.audit_timeline_pages``).
    config: Any = field(default_factory=lambda: SimpleNamespace(audit_timeline_pages=25))
    capabilities: Capabilities = field(init=False)

    def __post_init__(self) -> None:
        self.capabilities = Capabilities(crm=self.crm, page_size=200, max_write_batch=200)


def sf_connector(answers: list[dict[str, Any]]) -> FakeConnector:
    mapping = load_default_mapping("salesforce").mapping
    return FakeConnector("salesforce", FakeSalesforceClient(answers), mapping)


def history(cid: str, field_name: str, value: Any, user: str, hour: int) -> dict[str, Any]:
    stamp = f"2026-11-20T{hour:02d}:00:00.000+0000"
    return {
        "AccountId": cid,
        "Field": field_name,
        "NewValue": value,
        "CreatedById": user,
        "CreatedDate": stamp,
    }


def test_no_approved_override_no_call() -> None:
    connector = sf_connector([])
    records = [record("001A"), record("001B", **{**APPROVED, "approved": False})]
    assert with_override_audit(connector, records) == records
    assert connector.client.queries == []


def test_salesforce_one_history_query_per_page_fills_maker_and_checker() -> None:
    answers = [
        history("001A", "Override_Tier__c", "private", "005RM", 9),
        history("001A", "Override_Approved__c", True, "005HEAD", 11),
        history("001B", "Override_Tier__c", "wealth", "005RM", 9),
        history("001B", "Override_Approved__c", "true", "005RM", 10),
        history("001B", "Override_Approved__c", False, "005HEAD", 12),  # unticking: no approval
    ]
    connector = sf_connector(answers)
    records = [record(f"001{c}", **APPROVED) for c in "ABC"] + [record("001D")]
    done = {r.profile.id: r.profile.override for r in with_override_audit(connector, records)}
    assert len(connector.client.queries) == 1
    query = connector.client.queries[0]
    assert query.startswith(
        "SELECT AccountId, Field, NewValue, CreatedById, CreatedDate FROM AccountHistory"
    )
    assert "'001D'" not in query and "'Override_Reason__c'" not in query
    a, b, c = done["001A"], done["001B"], done["001C"]
    assert a is not None and (a.maker_id, a.checker_id, a.approved_at) == (
        "005RM",
        "005HEAD",
        at(11),
    )
    assert b is not None and (b.maker_id, b.checker_id) == ("005RM", "005RM")
    assert c is not None and (c.maker_id, c.checker_id) == (None, None)
    assert done["001D"] is None


def test_salesforce_batches_ids() -> None:
    connector = sf_connector([])
    records = [record(f"001{i:05d}", **APPROVED) for i in range(sf.IDS_PER_QUERY + 1)]
    with_override_audit(connector, records)
    assert len(connector.client.queries) == 2


def test_salesforce_history_object_of_a_custom_object() -> None:
    assert sf.history_object("Account") == ("AccountHistory", "AccountId")
    assert sf.history_object("Client__c") == ("Client__History", "ParentId")


@dataclass
class FakeZohoClient:
    entries: dict[str, list[dict[str, Any]]]
    calls: list[str] = field(default_factory=list)

    def timeline_page(self, module: str, record_id: str, token: str | None) -> dict[str, Any]:
        """One page holding the whole timeline (paging has its own tests in tests/zoho)."""
        assert token is None
        self.calls.append(f"{module}/{record_id}")
        return {"__timeline": self.entries.get(record_id, []), "info": {"more_records": False}}


def entry(user: str, hour: int, **changes: Any) -> dict[str, Any]:
    return {
        "done_by": {"id": user, "name": "someone"},
        "audited_time": f"2026-11-20T{hour:02d}:00:00+00:00",
        "action": "updated",
        "field_history": [
            {"api_name": k, "_value": {"new": v, "old": None}} for k, v in changes.items()
        ],
    }


def test_zoho_timeline_per_approved_customer() -> None:
    client = FakeZohoClient(
        {
            "1": [
                entry("33", 11, Override_Approved="true"),
                entry("22", 9, Override_Tier="private", Override_Reason="x"),
            ],
            "2": [entry("22", 9, Override_Tier="private", Override_Approved="false")],
        }
    )
    connector = FakeConnector("zoho", client, load_default_mapping("zoho").mapping)
    done = with_override_audit(
        connector, [record("1", **APPROVED), record("2", **APPROVED), record("3")]
    )
    assert client.calls == ["Contacts/1", "Contacts/2"]
    first, second = (r.profile.override for r in done[:2])
    assert first is not None and (first.maker_id, first.checker_id) == ("22", "33")
    assert second is not None and (second.maker_id, second.checker_id) == ("22", None)


@dataclass
class FakeFxClient:
    instances: dict[str, list[dict[str, Any]]]
    details: dict[str, dict[str, Any]]
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def call(self, path: str, data: dict[str, Any], *, top: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((path, top))
        if path == fx.INSTANCES_PATH:
            return {"errorCode": 0, "instances": self.instances.get(top["dataId"], [])}
        return {"errorCode": 0, "instanceDetail": self.details.get(top["instanceId"])}


def ms(hour: int) -> int:
    return int(at(hour).timestamp() * 1000)


def test_fxiaoke_newest_instance_its_applicant_and_agreeing_approver() -> None:
    old = {
        "instanceId": "i0",
        "applicantOpenUserId": "FSUID_OLD",
        "createTime": ms(7),
        "state": "pass",
    }
    new = {
        "instanceId": "i1",
        "applicantOpenUserId": "FSUID_RM",
        "createTime": ms(9),
        "state": "pass",
    }
    pending = {
        "instanceId": "i2",
        "applicantOpenUserId": "FSUID_RM",
        "createTime": ms(9),
        "state": "in_progress",
    }
    opinions = [
        {"actionType": "reject", "openUserId": "FSUID_X", "replyTime": ms(10)},
        {"actionType": "agree", "openUserId": "FSUID_HEAD", "replyTime": ms(11)},
    ]
    client = FakeFxClient(
        {"a": [old, new], "b": [pending]},
        {"i1": {"instance": new, "tasks": [{"state": "pass", "opinions": opinions}]}},
    )
    connector = FakeConnector("fxiaoke", client, load_default_mapping("fxiaoke").mapping)
    done = with_override_audit(connector, [record("a", **APPROVED), record("b", **APPROVED)])
    a, b = (r.profile.override for r in done)
    assert a is not None and (a.maker_id, a.checker_id, a.approved_at) == (
        "FSUID_RM",
        "FSUID_HEAD",
        at(11),
    )
    assert b is not None and (b.maker_id, b.checker_id) == ("FSUID_RM", None)
    assert [p for p, _ in client.calls] == [fx.INSTANCES_PATH, fx.INSTANCE_PATH, fx.INSTANCES_PATH]


def test_a_crm_without_a_reader_leaves_records_as_they_are() -> None:
    connector = FakeConnector("other", None, FieldMapping(object="X"))
    records: Sequence[CrmRecord] = [record("a", **APPROVED)]
    assert with_override_audit(connector, records) == list(records)


def test_audit_fields_are_never_mappable() -> None:
    from connectors.mapping import CANONICAL_TYPES

    assert "override.value_tier" in CANONICAL_TYPES
    for name in ("maker_id", "checker_id", "proposed_at", "approved_at"):
        assert f"override.{name}" not in CANONICAL_TYPES
    for crm in ("salesforce", "zoho", "fxiaoke"):
        paths = load_default_mapping(crm).mapping.fields
        assert {p for p in paths if p.startswith("override.")} == {
            "override.value_tier",
            "override.service_tier",
            "override.reason",
            "override.expires",
            "override.approved",
        }
