"""The audit trail's record of a tier override: who proposed it, who approved it, when,
until when, and whether crmtier applied or refused it (issue 20 §3, docs/overrides.md).

The maker and checker come from the CRM's own audit (``connectors/override_audit.py``),
so the row shows what the CRM showed when crmtier acted. CRM user ids are staff ids, kept
as the CRM gives them, like the run's ``actor``; the RM's free-text reason is not kept
(it may name the customer), only whether one was given.

``override_trail`` is pure: the sync engine puts it beside the decision it persists
(``PendingDecision.override``) and, where it records the decision (``Recorder.unchanged``,
``AnswerBatch._promote``), appends it as an ``override`` audit row when it is new against
the customer's last one (``customers.override``, ``is_new``): a new proposal, a new
outcome or its end gets a row once, whether or not the tiers moved (a refusal, or an
applied service-tier override, leaves them as they were), and a run that sees the same
override again none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from connectors.override_audit import AUDIT_UNREAD
from tiering_core.models import AssessmentData, CustomerProfile, DQIssue, Override

log = logging.getLogger(__name__)

#: Reason codes that say an override decided (or was refused for) this assessment.
APPLIED = ("MANUAL_OVERRIDE", "MANUAL_OVERRIDE_SERVICE")
REFUSED = "OVERRIDE_REFUSED"
#: The outcome of an approved override that asks for the tier the customer has: nothing
#: happens (docs/overrides.md), so it writes no row of its own (``is_new``).
MOOT = "moot"


def override_trail(profile: CustomerProfile, assessment: AssessmentData) -> dict[str, Any] | None:
    """The ``new`` value of an ``override`` audit row: what the decision made of the
    customer's approved override (``applied``, ``refused``, or ``moot`` when it asks only
    for the value tier the customer has), or None when there is none to speak of (none in
    the CRM, or not approved: it changes nothing until then)."""
    o = profile.override
    if o is None:
        return None
    reasons = {r["code"]: r for r in assessment["reasons"] if r["code"] in (*APPLIED, REFUSED)}
    refused = reasons.get(REFUSED)
    if reasons:
        outcome = "refused" if refused else "applied"
    elif o.approved is True and _asks_only(o, assessment["value_tier"]):
        outcome = MOOT
    else:
        return None
    return {
        "outcome": outcome,
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


def is_new(recorded: Mapping[str, Any] | None, trail: Mapping[str, Any] | None) -> bool:
    """Whether a decision's override (``trail``, ``override_trail``) needs an audit row,
    against the value of the customer's last one (``recorded``: ``customers.override``):
    a new proposal, a new outcome or cause, or its end (None) does; the same override seen
    again does not, nor a moot one (nothing happens: the last row stands)."""
    return trail != recorded and (trail is None or trail["outcome"] != MOOT)


def _asks_only(o: Override, tier: str) -> bool:
    """The override asks for a tier, and every tier it asks for is ``tier``."""
    asked = [t for t in (o.value_tier, o.service_tier) if t]
    return bool(asked) and all(t == tier for t in asked)


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
