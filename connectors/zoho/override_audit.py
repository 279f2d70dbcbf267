"""Zoho CRM: an override's maker and checker from the record's timeline.

Zoho audits every field change of a record, with the user who made it (``done_by``) and
when (``audited_time``), and returns it in the record's timeline ("Timeline of a Record",
Zoho CRM API v5, zoho.com/crm/developer/docs/api/v5/timeline-of-a-record.html: ``GET
/crm/v5/{module}/{record_id}/__timeline``, each entry with ``field_history`` items naming
the field's ``api_name`` and its ``_value`` ``new``/``old``). Nothing for the admin to
switch on; who may set the approval field is the checker profile's field permission
(docs/overrides.md). The timeline is one record's, read only for customers whose override
is approved (a page's other customers cost nothing).

It is read to its last page: ``per_page`` on the first, then ``page_token`` = the last
answer's ``info.next_page_token`` while ``info.more_records`` (the page; ``info`` as Zoho's
OpenAPI description gives it, github.com/zoho/crm-oas ``timelines.json``), or a record
with over 200 entries (related records' too) would hide the older ones, the proposal among
them. Its order is not documented, so no page can be skipped. A timeline that cannot be
read whole is never read in part: past ``crm.audit_timeline_pages`` pages (one credit
each), or when a page says there is more but names no new ``next_page_token`` (a token
already followed would loop), the customer gets no maker or checker, so the override is
refused (``no_maker``, a task), and carries ``DQ_AUDIT_UNREAD`` saying why, counted in the
run report and logged by pseudonym (``sync.overrides.note_unread_audit``); the run goes
on. A call that fails (a 5xx, a timeout past the retries) fails the read as any read does:
nothing of the page is decided, and the next run reads it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from connectors.contract import CrmRecord
from connectors.override_audit import (
    APPROVAL_PATH,
    AUDIT_UNREAD,
    AuditEvent,
    OverrideAudit,
    audited_fields,
    is_approved,
    trail,
)
from tiering_core.models import DQIssue

#: Entries per timeline page (the page's most).
PAGE = 200


def read_override_audit(connector: Any, records: Sequence[CrmRecord]) -> dict[str, OverrideAudit]:
    audited = audited_fields(connector.mapping.fields)
    if audited is None:
        return {}
    proposal, approval = audited
    out = {}
    for record in records:
        cid = record.profile.id
        entries = read_timeline(connector, cid)
        if isinstance(entries, DQIssue):
            out[cid] = OverrideAudit(issues=(entries,))
            continue
        out[cid] = trail(e for entry in entries for e in _events(entry, proposal, approval))
    return out


def read_timeline(connector: Any, record_id: str) -> list[dict[str, Any]] | DQIssue:
    """Every entry of the record's timeline, or the ``DQ_AUDIT_UNREAD`` issue saying why
    it cannot be read whole (module docstring); at most ``crm.audit_timeline_pages``
    calls."""
    pages = connector.config.audit_timeline_pages
    entries: list[dict[str, Any]] = []
    token: str | None = None
    followed: set[str] = set()
    for _ in range(pages):
        body = connector.client.timeline_page(connector.module, record_id, token)
        entries += [e for e in body.get("__timeline") or [] if isinstance(e, dict)]
        info = body.get("info")
        info = info if isinstance(info, dict) else {}
        if not info.get("more_records"):
            return entries
        token = info.get("next_page_token")
        if not isinstance(token, str) or not token or token in followed:
            return _unread("a timeline page says more_records but names no new next_page_token")
        followed.add(token)
    return _unread(
        f"the timeline has more than crm.audit_timeline_pages = {pages} pages "
        f"({pages * PAGE} entries): raise it to read it whole"
    )


def _unread(problem: str) -> DQIssue:
    return DQIssue(
        code=AUDIT_UNREAD,
        field=APPROVAL_PATH,
        problem=f"{problem}; the override's maker and checker cannot be verified",
    )


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
