"""The audit trail's record of a tier override: who proposed it, who approved it, when,
until when, and whether crmtier applied or refused it (issue 20 §3, docs/overrides.md).

The maker and checker come from the CRM's own audit (``connectors/override_audit.py``),
so the row shows what the CRM showed when crmtier acted. CRM user ids are staff ids, kept
as the CRM gives them, like the run's ``actor``; the RM's free-text reason is not kept
(it may name the customer), only whether one was given.

``override_trail`` is pure: the sync engine puts it beside the decision it persists
(``PendingDecision.override``) and, where it records the decision (``Recorder.unchanged``,
``AnswerBatch._promote``), appends it as an ``override`` audit row when it differs from
the customer's last one (``customers.override``): a new proposal, a new outcome or its end
gets a row once, whether or not the tiers moved (a refusal, or an applied service-tier
override, leaves them as they were), and a run that sees the same override again none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from connectors.override_audit import AUDIT_UNREAD
from tiering_core.models import AssessmentData, CustomerProfile, DQIssue

log = logging.getLogger(__name__)

#: Reason codes that say an override decided (or was refused for) this assessment.
APPLIED = ("MANUAL_OVERRIDE", "MANUAL_OVERRIDE_SERVICE")
REFUSED = "OVERRIDE_REFUSED"


def override_trail(profile: CustomerProfile, assessment: AssessmentData) -> dict[str, Any] | None:
    """The ``new`` value of an ``override`` audit row, or None when no override decided."""
    o = profile.override
    if o is None:
        return None
    reasons = {r["code"]: r for r in assessment["reasons"] if r["code"] in (*APPLIED, REFUSED)}
    if not reasons:
        return None
    refused = reasons.get(REFUSED)
    return {
        "outcome": "refused" if refused else "applied",
        "cause": refused["value"] if refused else None,
        "value_tier": o.value_tier,
        "service_tier": o.service_tier,
        "expires": _iso(o.expires),
        "reason_given": bool(o.reason),
        "maker": o.maker_id,
        "checker": o.checker_id,
        "proposed_at": _iso(o.proposed_at),
        "approved_at": _iso(o.approved_at),
    }


def note_unread_audit(issue: DQIssue, customer_id: str, ref: Callable[[str], str]) -> None:
    """One log line for a customer whose override audit the CRM's reader could not read
    whole (``DQ_AUDIT_UNREAD``; the override is refused and the issue counted with the
    run's DQ issues): the operator's way to find the record, named by its pseudonym
    ``ref`` gives, the field and what was wrong."""
    if issue.code == AUDIT_UNREAD:
        log.warning(
            "override audit unread",
            extra={"customer": ref(customer_id), "field": issue.field, "problem": issue.problem},
        )


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()
