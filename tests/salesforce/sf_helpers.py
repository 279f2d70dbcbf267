"""Small helpers shared by the Salesforce tests."""

from __future__ import annotations

from datetime import date

from connectors.contract import CrmRecord, FieldUpdate, TaskUpsert
from tiering_core.models import TaskAction

#: Tiny backoffs so fault tests retry for real without slowing the suite.
FAST_RETRY = {"backoff_base": 0.001, "backoff_cap": 0.01, "max_attempts": 4}


def read_all(connector, since=None) -> list[CrmRecord]:
    return [r for page in connector.read_changed(since) for r in page.records]


def tier_updates(ids, tier: str = "wealth") -> tuple[FieldUpdate, ...]:
    return tuple(FieldUpdate(i, {"value_tier": tier}) for i in ids)


def task(customer_id: str, key: str, **fields) -> TaskUpsert:
    """A follow-up task for ``customer_id`` with dedupe key ``key``."""
    action = {"rule": "rm_call", "subject": "Call", "priority": "normal", "due": date(2027, 1, 1)}
    return TaskUpsert(customer_id, TaskAction(**{**action, **fields, "dedupe_key": key}))


def save_account(connector, customer_id: str, **fields) -> dict:
    """One raw sObject Collections update of the customer, past the connector's own
    checks and cuts: the org's per-record result."""
    record = {"attributes": {"type": "Account"}, "id": customer_id, **fields}
    body = {"allOrNone": False, "records": [record]}
    return connector.client.collection("PATCH", "composite/sobjects", body)[0]
