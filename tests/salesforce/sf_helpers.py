"""Small helpers shared by the Salesforce tests."""

from __future__ import annotations

from connectors.contract import CrmRecord, FieldUpdate

#: Tiny backoffs so fault tests retry for real without slowing the suite.
FAST_RETRY = {"backoff_base": 0.001, "backoff_cap": 0.01, "max_attempts": 4}


def read_all(connector, since=None) -> list[CrmRecord]:
    return [r for page in connector.read_changed(since) for r in page.records]


def tier_updates(ids, tier: str = "wealth") -> tuple[FieldUpdate, ...]:
    return tuple(FieldUpdate(i, {"value_tier": tier}) for i in ids)
