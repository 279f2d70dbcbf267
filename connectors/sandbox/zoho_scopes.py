"""The OAuth scope each Zoho sandbox route needs, as the Zoho CRM v2 page of the call lists
it ("Scope": any one of several), and the refusal Zoho sends when the grant holds none of
them: 401 ``OAUTH_SCOPE_MISMATCH`` ("Kaizen #25 - Zoho CRM API - Common Errors and Error
Handling", help.zoho.com). The sandbox grants crmtier's documented list
(``connectors/zoho/scopes.py``) unless a test grants less.

Record routes (reads, writes, related records, the timeline) need ``ZohoCRM.modules.ALL``
or a scope of that module (``ZohoCRM.modules.contacts.READ``); the operation type a page
names for each is not checked, so the sandbox is laxer than Zoho there. A COQL query needs
``ZohoCRM.coql.READ`` *and* a scope of the module it selects from: "scope=ZohoCRM.coql.READ
(and) scope=ZohoCRM.modules.all (or) scope=ZohoCRM.modules.{module_name}.{operation_type}",
operation type ALL or READ ("Get Records through a COQL Query", Zoho CRM API v2,
zoho.com/crm/developer/docs/api/v2/Get-Records-through-COQL-Query.html); the module is in
the query, so the COQL route asks ``module_refusal`` once it has parsed it. Disabling a
channel is not checked: crmtier never calls it.
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


#: The operation types of a module scope that serve a COQL query ("Get Records through a
#: COQL Query": "ALL - Full data access", "READ - Get module data").
COQL_OPERATIONS = ("ALL", "READ")


def _module_granted(
    module: str, scopes: Collection[str], operations: Collection[str] | None = None
) -> bool:
    """Whether the grant holds ``ZohoCRM.modules.ALL`` or a scope of ``module`` (of one of
    ``operations``, when named). Zoho writes the module part in lower case (``contacts``)."""
    if "ZohoCRM.modules.ALL" in scopes:
        return True
    prefix = f"ZohoCRM.modules.{module.replace('_', '').lower()}."
    return any(
        s.startswith(prefix) and (operations is None or s[len(prefix) :] in operations)
        for s in scopes
    )


def _granted(kind: str, method: str, module: str | None, scopes: Collection[str]) -> bool:
    accepted = ACCEPTED.get((kind, None)) or ACCEPTED.get((kind, method))
    if accepted is not None:
        return any(s in scopes for s in accepted)
    if kind in RECORD_KINDS and module:
        return _module_granted(module, scopes)
    return True


def _mismatch() -> Response:
    return zoho_error("OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL", 401)


def scope_refusal(
    kind: str, method: str, module: str | None, scopes: Collection[str]
) -> Response | None:
    """Zoho's answer to a call the grant holds no scope for, or None."""
    if _granted(kind, method, module, scopes):
        return None
    return _mismatch()


def coql_module_refusal(module: str, scopes: Collection[str]) -> Response | None:
    """Zoho's answer to a COQL query of ``module`` the grant holds no READ (or ALL) scope of
    that module for, or None (the ``ZohoCRM.coql.READ`` half is the route's own check)."""
    return None if _module_granted(module, scopes, COQL_OPERATIONS) else _mismatch()
