"""``crmtier doctor`` for Salesforce, docs/targets.md S6 (least privilege, verified at
start-up): the ``integration user rights`` lines.

They read what the API tells the running user about itself. ``describe`` reports
field-level security and object permissions *for the caller* (``updateable`` per field,
``deletable`` per object), and ``UserPermissionAccess`` (API 41.0+, readable without View
Setup) its effective system permissions. Broader rights than the manifest are warnings, not
errors: they do not stop a sync, but a bank's security review will ask about them. Apart
from ``checks.py`` because these lines judge the user's rights, not the org's set-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.contract import RIGHTS_CHECK, RIGHTS_DOC, SchemaCheck
from connectors.errors import ConnectorError
from connectors.mapping import FieldMapping, WritebackConfig
from connectors.salesforce.client import SalesforceClient, select

#: ``UserPermissionAccess`` fields (``Permissions<PermissionName>``) that exceed the
#: manifest, with the names Setup shows
_BROAD_PERMISSIONS = {
    "PermissionsModifyAllData": "Modify All Data",
    "PermissionsViewAllData": "View All Data",
    "PermissionsCustomizeApplication": "Customize Application",
}
_API_ONLY = "PermissionsApiUserOnly"
_PERMISSION_QUERY = select([*_BROAD_PERMISSIONS, _API_ONLY], "UserPermissionAccess")
_NAMES_SHOWN = 5


def rights_checks(
    client: SalesforceClient,
    mapping: FieldMapping,
    writeback: WritebackConfig,
    fields: Mapping[str, Mapping[str, Any]],
    deletable: bool,
) -> list[SchemaCheck]:
    """docs/targets.md S6 for the integration user: edit only on the tier fields, no delete on
    customers, no org-wide system permissions, and API-only login. ``fields``: the customer
    object's described fields by name; ``deletable``: its ``describe`` says the user may
    delete its records."""
    tier = set(writeback.fields.values())
    inputs = sorted(set(mapping.fields.values()) - tier)
    editable = [n for n in inputs if n in fields and fields[n].get("updateable")]
    return [
        SchemaCheck(f"{RIGHTS_CHECK}: field edit", True, f"read-only on {len(inputs)} input fields")
        if not editable
        else SchemaCheck(
            f"{RIGHTS_CHECK}: field edit",
            False,
            f"edit on {len(editable)} non-tier fields: {_names(editable)}",
            "remove Edit on these fields from the integration user's permission set and "
            f"profile; Read is enough ({RIGHTS_DOC})",
            "warning",
        ),
        SchemaCheck(f"{RIGHTS_CHECK}: delete {mapping.object}", True, "no delete")
        if not deletable
        else SchemaCheck(
            f"{RIGHTS_CHECK}: delete {mapping.object}",
            False,
            f"the integration user can delete {mapping.object} records",
            f"remove Delete on {mapping.object} from its permission set and profile",
            "warning",
        ),
        *_permission_checks(client),
    ]


def _permission_checks(client: SalesforceClient) -> list[SchemaCheck]:
    name = f"{RIGHTS_CHECK}: system permissions"
    try:
        rows = client.query_all(_PERMISSION_QUERY)
    except ConnectorError as exc:
        return [
            SchemaCheck(
                name,
                False,
                f"could not read UserPermissionAccess: {exc}",
                "use API version 41.0 or later, and check the user's system permissions in "
                "Setup by hand",
                "warning",
            )
        ]
    granted = rows[0] if rows else {}
    broad = [label for field, label in _BROAD_PERMISSIONS.items() if granted.get(field)]
    checks = [
        SchemaCheck(name, True, "none beyond API access")
        if not broad
        else SchemaCheck(
            name,
            False,
            ", ".join(broad),
            "remove these from the integration user's profile and permission sets; it needs "
            f"none of them ({RIGHTS_DOC})",
            "warning",
        )
    ]
    if granted.get(_API_ONLY):
        checks.append(SchemaCheck(f"{RIGHTS_CHECK}: API only", True, "API Only User"))
    else:
        checks.append(
            SchemaCheck(
                f"{RIGHTS_CHECK}: API only",
                True,
                "the integration user can also log in to the Salesforce UI",
                "give it the Salesforce Integration license and the 'Minimum Access - API "
                "Only Integrations' profile",
                "warning",
            )
        )
    return checks


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_NAMES_SHOWN])
    return shown + ("…" if len(names) > _NAMES_SHOWN else "")
