"""``crmtier doctor`` for Salesforce: is the org set up the way the config says?

Each check is one line with a fix an admin can act on: auth works, the customer object and
every mapped field exist with a compatible type, write-back fields exist and are writable,
Task and CampaignMember carry the external-id field, and every configured campaign exists.

docs/targets.md S6 (least privilege, verified at start-up): the ``integration user rights`` lines
read what the API tells the running user about itself. ``describe`` reports field-level
security and object permissions *for the caller* (``updateable`` per field, ``deletable``
per object), and ``UserPermissionAccess`` (API 41.0+, readable without View Setup) its
effective system permissions. Broader rights than the manifest are warnings, not errors:
they do not stop a sync, but a bank's security review will ask about them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, get_origin

from connectors.contract import HOUSEHOLDS_CHECK, RIGHTS_CHECK, RIGHTS_DOC, SchemaCheck
from connectors.errors import ConfigError, ConnectorError
from connectors.mapping import CANONICAL_TYPES, FieldMapping, WritebackConfig
from connectors.salesforce.client import SalesforceClient, select, soql
from connectors.salesforce.config import SalesforceSettings
from connectors.salesforce.households import RELATION, RELATION_FIELDS
from connectors.salesforce.mapping import missing_values

_TEXT = {"string", "picklist", "textarea", "combobox", "reference", "id", "email", "phone", "url"}
_ACCOUNTS_AS_MEMBERS_FIX = (
    "enable 'Accounts as Campaign Members' in Setup, or set accounts_as_campaign_members = false"
)
_NUMBER = {"double", "int", "currency", "percent", "long"}
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


def compatible_types(canonical: Any) -> set[str]:
    if canonical is bool:
        return {"boolean"}
    if canonical in (int, float):
        return _NUMBER | {"string"}
    if canonical is date:
        return {"date", "datetime"}
    if get_origin(canonical) is tuple:
        return {"multipicklist", "string", "textarea"}
    return _TEXT


def _describe(client: SalesforceClient, sobject: str) -> Mapping[str, Any] | SchemaCheck:
    try:
        return client.describe(sobject)
    except ConnectorError as exc:
        return SchemaCheck(
            f"object {sobject}",
            False,
            str(exc),
            f"check that {sobject} exists and the integration user can read it",
        )


def _fields(described: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {f["name"]: f for f in described.get("fields", [])}


def run_checks(
    client: SalesforceClient,
    settings: SalesforceSettings,
    mapping: FieldMapping,
    writeback: WritebackConfig,
) -> list[SchemaCheck]:
    try:
        client.login()
    except ConnectorError as exc:
        return [
            SchemaCheck(
                "auth",
                False,
                str(exc),
                "check base_url, client credentials and the connected app policy",
            )
        ]
    checks = [SchemaCheck("auth", True, f"{settings.auth} against {settings.base_url}")]
    obj = _describe(client, mapping.object)
    if isinstance(obj, SchemaCheck):
        return [*checks, obj]
    described = _fields(obj)
    checks.append(SchemaCheck(f"object {mapping.object}", True))
    for path, name in sorted(mapping.fields.items()):
        field = described.get(name)
        if field is None:
            checks.append(
                SchemaCheck(
                    f"field {name}",
                    False,
                    f"missing (feeds {path})",
                    f"create {mapping.object}.{name} or fix [mapping.fields]",
                )
            )
            continue
        wanted = compatible_types(CANONICAL_TYPES.get(path, str))
        ok = field.get("type") in wanted
        checks.append(
            SchemaCheck(
                f"field {name}",
                ok,
                f"{field.get('type')} → {path}",
                "" if ok else f"use a field of type {'/'.join(sorted(wanted))}",
            )
        )
    for output, name in sorted(writeback.fields.items()):
        field = described.get(name)
        ok = field is not None and bool(field.get("updateable"))
        detail = (
            "missing"
            if field is None
            else ("writable" if ok else "read-only for the integration user")
        )
        fix = "" if ok else f"create {name} and grant edit access to the integration user"
        lacks = missing_values(output, field) if ok and field is not None else []
        if lacks:
            ok, detail = False, f"restricted picklist lacks {', '.join(lacks)}"
            fix = f"add {', '.join(lacks)} to the values of {mapping.object}.{name} in Setup"
        checks.append(SchemaCheck(f"write-back {name}", ok, f"{output}: {detail}", fix))
    checks += _external_id_checks(client, settings)
    checks += _campaign_checks(client, writeback)
    checks += owner_checks(client, writeback)
    checks += rights_checks(client, mapping, writeback, obj)
    return checks


_RELATION_FIX = (
    "enable Contacts to Multiple Accounts (Setup > Account Settings; help.salesforce.com/s/"
    "articleView?id=sf.shared_contacts_set_up.htm) and let the integration user read Accounts "
    "and Contacts"
)


def household_check(client: SalesforceClient) -> SchemaCheck:
    """Households are read through ``AccountContactRelation`` (connectors/salesforce/
    households.py), which an org has once Contacts to Multiple Accounts is enabled
    (docs/households.md cites the Object Reference and the set-up page). One ``describe``:
    an org without it, or a user who cannot see it, answers NOT_FOUND."""
    try:
        fields = _fields(client.describe(RELATION))
    except ConfigError as exc:
        return SchemaCheck(
            HOUSEHOLDS_CHECK, False, f"{RELATION} is not readable ({exc})", _RELATION_FIX
        )
    missing = [f for f in (*RELATION_FIELDS, "IsActive") if f not in fields]
    if missing:
        return SchemaCheck(
            HOUSEHOLDS_CHECK,
            False,
            f"{RELATION} lacks {', '.join(missing)} for the integration user",
            f"grant the integration user Read on {RELATION}.{', '.join(missing)}",
        )
    return SchemaCheck(HOUSEHOLDS_CHECK, True, f"{RELATION} readable")


def rights_checks(
    client: SalesforceClient,
    mapping: FieldMapping,
    writeback: WritebackConfig,
    described: Mapping[str, Any],
) -> list[SchemaCheck]:
    """docs/targets.md S6 for the integration user: edit only on the tier fields, no delete on
    customers, no org-wide system permissions, and API-only login."""
    fields = _fields(described)
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
        if not described.get("deletable")
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


def _external_id_checks(
    client: SalesforceClient, settings: SalesforceSettings
) -> list[SchemaCheck]:
    out = []
    for sobject in ("Task", settings.campaign_member_object):
        obj = _describe(client, sobject)
        if isinstance(obj, SchemaCheck):
            out.append(obj)
            continue
        described = _fields(obj)
        field_name = settings.external_id_field
        field = described.get(field_name)
        ok = field is not None and bool(field.get("externalId"))
        out.append(
            SchemaCheck(
                f"external id {sobject}.{field_name}",
                ok,
                "" if ok else "missing or not marked External ID",
                "" if ok else f"create a unique External ID text field {field_name} on {sobject}",
            )
        )
        if sobject == settings.campaign_member_object and settings.accounts_as_campaign_members:
            has = "AccountId" in described
            out.append(
                SchemaCheck(
                    "accounts as campaign members",
                    has,
                    "" if has else "CampaignMember.AccountId is missing",
                    "" if has else _ACCOUNTS_AS_MEMBERS_FIX,
                    "warning",
                )
            )
    return out


def _campaign_checks(client: SalesforceClient, writeback: WritebackConfig) -> list[SchemaCheck]:
    if not writeback.campaigns:
        return []
    try:
        found = {
            str(r["Id"])
            for r in client.query_all(
                soql(
                    "SELECT Id FROM Campaign WHERE Id IN {}",
                    sorted(set(writeback.campaigns.values())),
                )
            )
        }
    except ConnectorError as exc:
        return [
            SchemaCheck(
                "campaigns", False, str(exc), "grant the integration user read access to Campaign"
            )
        ]
    return [
        SchemaCheck(
            f"campaign {key}",
            cid in found,
            cid,
            "" if cid in found else f"create the campaign or fix [writeback.campaigns].{key}",
        )
        for key, cid in sorted(writeback.campaigns.items())
    ]


_USER_PREFIX, _GROUP_PREFIX = "005", "00G"


def owner_checks(client: SalesforceClient, writeback: WritebackConfig) -> list[SchemaCheck]:
    """Every ``[writeback.queues]`` owner can own a Task: a User id must be an active user
    (a task for an inactive one is refused, INACTIVE_OWNER_OR_USER), a queue id a Group of
    Type Queue whose QueueSobject rows list Task among its supported objects (a queue made
    for Leads or Cases refuses a Task). Three queries, whatever the number of owners."""
    if not writeback.queues:
        return []
    ids = sorted(set(writeback.queues.values()))
    users = [i for i in ids if i.startswith(_USER_PREFIX)]
    queues = [i for i in ids if i.startswith(_GROUP_PREFIX)]
    try:
        active = {_id15(r["Id"]): r for r in _rows(client, ["Id", "IsActive"], "User", users)}
        groups = {_id15(r["Id"]): r for r in _rows(client, ["Id", "Type"], "Group", queues)}
        accepts: dict[str, set[str]] = {}
        for row in _rows(client, ["QueueId", "SobjectType"], "QueueSobject", queues, "QueueId"):
            accepts.setdefault(_id15(row["QueueId"]), set()).add(str(row["SobjectType"]))
    except ConnectorError as exc:
        return [
            SchemaCheck(
                "task owners",
                False,
                f"could not read User, Group or QueueSobject: {exc}",
                "grant the integration user read access to users and queues, or check the "
                "[writeback.queues] ids in Setup by hand",
                "warning",
            )
        ]
    return [
        _owner_check(key, owner, active, groups, accepts)
        for key, owner in sorted(writeback.queues.items())
    ]


def _rows(
    client: SalesforceClient, fields: list[str], sobject: str, ids: list[str], key: str = "Id"
) -> list[dict[str, Any]]:
    """The rows of ``sobject`` whose ``key`` is one of ``ids`` (no call for none)."""
    if not ids:
        return []
    return client.query_all(select(fields, sobject, f"WHERE {key} IN {{}}", ids))


def _id15(rid: Any) -> str:
    """Salesforce ids compare on their case-sensitive 15-character form: a config may hold
    either the 15- or the 18-character (case-safe) id."""
    return str(rid)[:15]


def _owner_check(
    key: str,
    owner: str,
    users: Mapping[str, Mapping[str, Any]],
    groups: Mapping[str, Mapping[str, Any]],
    accepts: Mapping[str, set[str]],
) -> SchemaCheck:
    name = f"task owner {key}"
    where = f"[writeback.queues].{key}"
    if owner.startswith(_USER_PREFIX):
        user = users.get(_id15(owner))
        if user is None:
            return SchemaCheck(name, False, f"user {owner} not found", f"fix {where}")
        if not user.get("IsActive"):
            return SchemaCheck(
                name,
                False,
                f"user {owner} is inactive: Salesforce refuses tasks for it",
                f"set {where} to an active user or a Task queue",
            )
        return SchemaCheck(name, True, f"active user {owner}")
    if not owner.startswith(_GROUP_PREFIX):
        return SchemaCheck(
            name,
            False,
            f"{owner} is neither a user (005…) nor a queue (00G…) id",
            f"fix {where}",
        )
    group = groups.get(_id15(owner))
    if group is None or group.get("Type") != "Queue":
        return SchemaCheck(
            name, False, f"queue {owner} not found", f"create the queue in Setup or fix {where}"
        )
    supported = accepts.get(_id15(owner), set())
    if "Task" not in supported:
        return SchemaCheck(
            name,
            False,
            f"queue {owner} does not accept Tasks (supported: "
            f"{', '.join(sorted(supported)) or 'none'})",
            "add Task to the queue's Supported Objects in Setup > Queues, or name a Task "
            f"queue in {where}",
        )
    return SchemaCheck(name, True, f"Task queue {owner}")
