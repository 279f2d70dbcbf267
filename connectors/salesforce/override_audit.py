"""Salesforce: an override's maker and checker from field history tracking.

The admin turns on field history tracking (Setup > Object Manager > Account > Fields &
Relationships > Set History Tracking) for the override's tier, service tier, expiry and
approval fields; Salesforce then keeps one ``AccountHistory`` row per change, with the
``Field`` changed, its ``NewValue``, and ``CreatedById``/``CreatedDate`` set by the
platform ("AccountHistory", Object Reference for the Salesforce Platform,
developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/
sforce_api_objects_accounthistory.htm; a custom object's rows are ``<Object>__History``
with ``ParentId``, "StandardObjectNameHistory" and "CustomObject__History"). Who may
set the approval is the checker role's field-level security (docs/overrides.md).

One SOQL query answers a page's overrides: ``WHERE AccountId IN (...) AND Field IN
(...)``, at most ``IDS_PER_QUERY`` ids a query, read to the end with ``queryMore``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from connectors.contract import CrmRecord
from connectors.override_audit import (
    AuditEvent,
    OverrideAudit,
    audited_fields,
    is_approved,
    trail,
)
from connectors.salesforce.client import select
from connectors.salesforce.connector import parse_modstamp

#: Ids per history query: 200 ids of 18 characters keep the SOQL well under its
#: 100,000-character limit ("SOQL and SOSL Limits", Salesforce Developer Limits).
IDS_PER_QUERY = 200


def history_object(sobject: str) -> tuple[str, str]:
    """The history object of ``sobject`` and its field naming the record."""
    if sobject.endswith("__c"):
        return f"{sobject[:-3]}__History", "ParentId"
    return f"{sobject}History", f"{sobject}Id"


def read_override_audit(connector: Any, records: Sequence[CrmRecord]) -> dict[str, OverrideAudit]:
    audited = audited_fields(connector.mapping.fields)
    if audited is None:
        return {}
    proposal, approval = audited
    sobject, parent = history_object(connector.mapping.object)
    ids = [r.profile.id for r in records]
    events: dict[str, list[AuditEvent]] = defaultdict(list)
    for start in range(0, len(ids), IDS_PER_QUERY):
        query = select(
            [parent, "Field", "NewValue", "CreatedById", "CreatedDate"],
            sobject,
            f"WHERE {parent} IN {{}} AND Field IN {{}} ORDER BY CreatedDate ASC",
            ids[start : start + IDS_PER_QUERY],
            sorted({*proposal, approval}),
        )
        for row in connector.client.query_all(query):
            event = _event(row, approval)
            if event is not None:
                events[str(row[parent])].append(event)
    return {cid: trail(found) for cid, found in events.items()}


def _event(row: dict[str, Any], approval: str) -> AuditEvent | None:
    """A history row as an audit event; clearing or unsetting the approval is none."""
    if not row.get("CreatedById") or not row.get("CreatedDate"):
        return None
    at = parse_modstamp(str(row["CreatedDate"]))
    if row.get("Field") == approval:
        if not is_approved(row.get("NewValue")):
            return None
        return AuditEvent("approval", str(row["CreatedById"]), at)
    return AuditEvent("proposal", str(row["CreatedById"]), at)
