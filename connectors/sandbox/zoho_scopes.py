"""The OAuth scope each Zoho sandbox route needs, as the Zoho CRM v2 page of the call lists
it ("Scope": any one of several), and the refusal Zoho sends when the grant holds none of
them: 401 ``OAUTH_SCOPE_MISMATCH`` ("Kaizen #25 - Zoho CRM API - Common Errors and Error
Handling", help.zoho.com). The sandbox grants crmtier's documented list
(``connectors/zoho/scopes.py``) unless a test grants less.

Record routes (reads, writes, related records, the timeline) need ``ZohoCRM.modules.ALL``
or a scope of that module (``ZohoCRM.modules.contacts.READ``); the operation type a page
names for each is not checked, so the sandbox is laxer than Zoho there. Disabling a
channel is not checked either: crmtier never calls it.
"""

from __future__ import annotations

from collections.abc import Collection

from connectors.sandbox.server import Response
from connectors.sandbox.zoho_auth import zoho_error

_SETTINGS_ALL = "ZohoCRM.settings.ALL"
_NOTIFY = "ZohoCRM.notifications."
#: Route kind (and method, where a kind has several) -> the scopes any one of which serves.
ACCEPTED: dict[tuple[str, str | None], tuple[str, ...]] = {
    ("fields", None): (
        "ZohoCRM.settings.fields.READ",
        "ZohoCRM.settings.fields.ALL",
        _SETTINGS_ALL,
    ),
    ("modules", None): (
        "ZohoCRM.settings.modules.READ",
        "ZohoCRM.settings.modules.ALL",
        _SETTINGS_ALL,
    ),
    ("related_lists", None): (
        "ZohoCRM.settings.related_lists.READ",
        "ZohoCRM.settings.related_lists.ALL",
        _SETTINGS_ALL,
    ),
    ("users", None): ("ZohoCRM.users.READ", "ZohoCRM.users.ALL"),
    ("coql", None): ("ZohoCRM.coql.READ",),
    ("watch_list", None): (f"{_NOTIFY}READ", f"{_NOTIFY}ALL"),
    ("watch", "POST"): (f"{_NOTIFY}CREATE", f"{_NOTIFY}WRITE", f"{_NOTIFY}ALL"),
    ("watch", "PUT"): (f"{_NOTIFY}UPDATE", f"{_NOTIFY}WRITE", f"{_NOTIFY}ALL"),
    ("watch", "PATCH"): (f"{_NOTIFY}UPDATE", f"{_NOTIFY}WRITE", f"{_NOTIFY}ALL"),
}
RECORD_KINDS = frozenset(
    {"read", "update", "insert", "upsert", "timeline"}
    | {"related_update", "related_read", "related_delete"}
)


def _granted(kind: str, method: str, module: str | None, scopes: Collection[str]) -> bool:
    accepted = ACCEPTED.get((kind, None)) or ACCEPTED.get((kind, method))
    if accepted is not None:
        return any(s in scopes for s in accepted)
    if kind in RECORD_KINDS and module:
        prefix = f"ZohoCRM.modules.{module.replace('_', '').lower()}."
        return "ZohoCRM.modules.ALL" in scopes or any(s.startswith(prefix) for s in scopes)
    return True


def scope_refusal(
    kind: str, method: str, module: str | None, scopes: Collection[str]
) -> Response | None:
    """Zoho's answer to a call the grant holds no scope for, or None."""
    if _granted(kind, method, module, scopes):
        return None
    return zoho_error("OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL", 401)
