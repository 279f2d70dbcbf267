"""Zoho CRM: an override's maker and checker from the record's timeline.

Zoho audits every field change of a record, with the user who made it (``done_by``) and
when (``audited_time``), and returns it in the record's timeline ("Timeline of a Record",
Zoho CRM API v5, zoho.com/crm/developer/docs/api/v5/timeline-of-a-record.html: ``GET
/crm/v5/{module}/{record_id}/__timeline``, each entry with ``field_history`` items naming
the field's ``api_name`` and its ``_value`` ``new``/``old``). Nothing for the admin to
switch on; who may set the approval field is the checker profile's field permission
(docs/overrides.md). The timeline is one record's: one call per customer whose override
is approved, and only for those (a page's other customers cost nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from connectors.contract import CrmRecord
from connectors.override_audit import (
    AuditEvent,
    OverrideAudit,
    audited_fields,
    is_approved,
    trail,
)


def read_override_audit(connector: Any, records: Sequence[CrmRecord]) -> dict[str, OverrideAudit]:
    audited = audited_fields(connector.mapping.fields)
    if audited is None:
        return {}
    proposal, approval = audited
    out = {}
    for record in records:
        cid = record.profile.id
        entries = connector.client.timeline(connector.module, cid)
        out[cid] = trail(e for entry in entries for e in _events(entry, proposal, approval))
    return out


def _events(entry: dict[str, Any], proposal: set[str], approval: str) -> list[AuditEvent]:
    """The override events of one timeline entry (an edit may change several fields)."""
    user = (entry.get("done_by") or {}).get("id")
    stamp = entry.get("audited_time")
    if not user or not stamp:
        return []
    at = datetime.fromisoformat(str(stamp))
    out = []
    for change in entry.get("field_history") or []:
        name = change.get("api_name")
        new = (change.get("_value") or {}).get("new")
        if name in proposal:
            out.append(AuditEvent("proposal", str(user), at))
        elif name == approval and is_approved(new):
            out.append(AuditEvent("approval", str(user), at))
    return out
