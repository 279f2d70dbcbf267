"""Sandboxes: an RM proposes a tier override and a checker approves it, as CRM users do,
and each sandbox keeps the audit its CRM keeps (docs/overrides.md):

* Salesforce: field history (``salesforce_history.py``);
* Zoho CRM: the record's timeline (``zoho_timeline.py``);
* FXiaoke: the approval flow (``fxiaoke_flow.py``).

Users are CRM user ids chosen by the test (Salesforce ``005...``, Zoho digits, FXiaoke
open user ids); the sandboxes do not check them, as no API crmtier calls lists them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from connectors.sandbox.base import Sandbox
from connectors.sandbox.fxiaoke_flow import record_flow
from connectors.sandbox.salesforce_history import record_history
from connectors.sandbox.zoho_timeline import record_timeline


def propose_override(
    sandbox: Sandbox,
    customer_id: str,
    *,
    user: str,
    at: datetime,
    value_tier: str | None = None,
    service_tier: str | None = None,
    reason: str | None = None,
    expires: date | None = None,
) -> None:
    """``user`` (the maker) sets the override fields; any earlier approval is cleared."""
    changes = {
        "override.value_tier": value_tier,
        "override.service_tier": service_tier,
        "override.reason": reason,
        "override.expires": expires.isoformat() if expires else None,
        "override.approved": False,
    }
    _edit(sandbox, customer_id, changes, user, at, "proposal")


def approve_override(sandbox: Sandbox, customer_id: str, *, user: str, at: datetime) -> None:
    """``user`` (the checker) approves the override as it stands."""
    _edit(sandbox, customer_id, {"override.approved": True}, user, at, "approval")


def _edit(
    sandbox: Sandbox,
    customer_id: str,
    changes: Mapping[str, Any],
    user: str,
    at: datetime,
    kind: str,
) -> None:
    sandbox.edit_customer(customer_id, changes)
    fields = {
        sandbox_field(sandbox, path): value for path, value in changes.items() if value is not None
    }
    if sandbox.crm == "salesforce":
        record_history(sandbox, customer_id, fields, user, at)
    elif sandbox.crm == "zoho":
        record_timeline(sandbox, customer_id, fields, user, at)
    elif sandbox.crm == "fxiaoke":
        record_flow(sandbox, customer_id, user, at, kind)


def sandbox_field(sandbox: Sandbox, path: str) -> str:
    """The CRM field a canonical input path is stored in by this sandbox's default mapping."""
    return str(_mapping(sandbox).mapping.fields[path])


def _mapping(sandbox: Sandbox) -> Any:
    """The sandbox's default mapping (``mapping`` on Salesforce and FXiaoke, ``default`` on
    Zoho)."""
    found: Any = sandbox
    return getattr(found, "mapping", None) or found.default
