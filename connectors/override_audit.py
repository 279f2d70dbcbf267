"""Who proposed and who approved a tier override, as the CRM's own audit shows it.

An override's maker and checker must come from records the CRM keeps itself (field
history, timeline, approval flow: docs/overrides.md), never from fields a user types, or
"a second person approved it" would prove nothing. Each CRM's reader
(``connectors/<crm>/override_audit.py``) turns its audit into ``AuditEvent`` rows, and
``trail`` reduces them the same way for all three:

* the *maker* is whoever last changed a proposal field (the tier, the service tier or the
  expiry): a later edit, even by the checker, makes that user the maker of a new proposal;
* the *checker* is whoever last set the approval after that change; an approval older
  than the proposal's last change approved something else and does not count.

``OverrideAuditReads`` wraps a connector so that every read (a page of changes, a fetch
by id) comes with that audit, read for the records with an approved override only: one
more call per page on Salesforce (``AccountHistory``, batched), one per such customer on
Zoho (timeline; one more per further 200 entries, at most ``crm.audit_timeline_pages``),
two on FXiaoke (the approval flow's instances, then the approved one).
A read without an approved override costs nothing more.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from connectors.contract import (
    ApiUsage,
    Connector,
    CrmRecord,
    Cursor,
    Page,
    SchemaCheck,
    WritePlan,
    WriteResult,
)
from tiering_core.models import DQIssue

#: The canonical paths whose change makes a new proposal (the approval must follow it).
PROPOSAL_PATHS = ("override.value_tier", "override.service_tier", "override.expires")
APPROVAL_PATH = "override.approved"
#: The DQ issue of a customer whose override audit a reader could not read whole (e.g. an
#: FXiaoke approval instance listed without its id): counted in the run report and logged
#: by pseudonym, never a reason to stop the run.
AUDIT_UNREAD = "DQ_AUDIT_UNREAD"


@dataclass(frozen=True)
class OverrideAudit:
    """The CRM's record of one override: users by their CRM id, times as the CRM gives them;
    ``issues``: what the reader could not read of it (added to the record's DQ issues)."""

    maker_id: str | None = None
    checker_id: str | None = None
    proposed_at: datetime | None = None
    approved_at: datetime | None = None
    issues: tuple[DQIssue, ...] = ()


@dataclass(frozen=True)
class AuditEvent:
    """One audited change: a proposal field changed, or the override was approved."""

    kind: Literal["proposal", "approval"]
    user_id: str
    at: datetime


def trail(events: Iterable[AuditEvent]) -> OverrideAudit:
    """The maker and checker of the override as it stands (rules in the module docstring)."""
    ordered = sorted(events, key=lambda e: e.at)
    proposals = [e for e in ordered if e.kind == "proposal"]
    if not proposals:
        return OverrideAudit()
    last = proposals[-1]
    approvals = [e for e in ordered if e.kind == "approval" and e.at >= last.at]
    approval = approvals[-1] if approvals else None
    return OverrideAudit(
        maker_id=last.user_id,
        checker_id=approval.user_id if approval else None,
        proposed_at=last.at,
        approved_at=approval.at if approval else None,
    )


def is_approved(value: Any) -> bool:
    """Whether an audited new value of the approval field sets it (a checkbox's ``true``,
    a picklist's ``"true"``/``"是"``; Zoho's timeline and Salesforce's history give text)."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes", "是")


def audited_fields(fields: Mapping[str, str]) -> tuple[set[str], str] | None:
    """The CRM fields a reader looks for in the audit, as ``[mapping.fields]`` names them:
    the proposal fields and the approval field; ``None`` when either is not mapped (there
    is no override to audit)."""
    proposal = {fields[p] for p in PROPOSAL_PATHS if p in fields}
    approval = fields.get(APPROVAL_PATH)
    if not proposal or approval is None:
        return None
    return proposal, approval


Reader = Callable[[Any, Sequence[CrmRecord]], Mapping[str, OverrideAudit]]
_READERS = {
    "salesforce": "connectors.salesforce.override_audit",
    "zoho": "connectors.zoho.override_audit",
    "fxiaoke": "connectors.fxiaoke.override_audit",
}


def read_override_audit(connector: Any, records: Sequence[CrmRecord]) -> dict[str, OverrideAudit]:
    """The audit of each of ``records`` (by customer id) from ``connector``'s CRM; none for
    a CRM without a reader, whose approved overrides are then refused (``no_maker``)."""
    if not records:
        return {}
    name = _READERS.get(connector.capabilities.crm)
    if name is None:
        return {}
    reader: Reader = importlib.import_module(name).read_override_audit
    return dict(reader(connector, records))


def awaiting_audit(record: CrmRecord) -> bool:
    """An approved override whose maker and checker the CRM's audit must still name."""
    o = record.profile.override
    return (
        o is not None
        and o.approved is True
        and (o.value_tier is not None or o.service_tier is not None)
        and o.maker_id is None
        and o.checker_id is None
    )


def with_override_audit(connector: Any, records: Sequence[CrmRecord]) -> list[CrmRecord]:
    """``records``, each approved override completed with the CRM's audit of it (left as
    it is when the audit shows nothing: the override is then refused, ``no_maker``)."""
    pending = [r for r in records if awaiting_audit(r)]
    if not pending:
        return list(records)
    found = read_override_audit(connector, pending)
    return [_completed(r, found.get(r.profile.id)) if awaiting_audit(r) else r for r in records]


def _completed(record: CrmRecord, audit: OverrideAudit | None) -> CrmRecord:
    override = record.profile.override
    if audit is None or override is None:
        return record
    filled = override.model_copy(
        update={
            "maker_id": audit.maker_id,
            "checker_id": audit.checker_id,
            "proposed_at": audit.proposed_at,
            "approved_at": audit.approved_at,
        }
    )
    profile = record.profile.model_copy(update={"override": filled})
    return replace(record, profile=profile, dq_issues=record.dq_issues + audit.issues)


class OverrideAuditReads:
    """``inner`` with the CRM's override audit on every read; everything else is
    ``inner``'s (its own attributes too, for callers that use them)."""

    def __init__(self, inner: Connector) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities

    def read_changed(self, since: Cursor | None) -> Iterator[Page]:
        for page in self.inner.read_changed(since):
            yield replace(page, records=tuple(with_override_audit(self.inner, page.records)))

    def fetch(self, ids: Sequence[str]) -> list[CrmRecord]:
        return with_override_audit(self.inner, self.inner.fetch(ids))

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        return self.inner.apply(plan)

    def check(self) -> list[SchemaCheck]:
        return self.inner.check()

    def api_usage(self) -> ApiUsage:
        return self.inner.api_usage()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
