"""``crmtier doctor`` for Salesforce: is the org set up the way the config says?

Each check is one line with a fix an admin can act on: auth works, the customer object and
every mapped field exist with a compatible type, write-back fields exist and are writable,
Task and CampaignMember carry the external-id field, and every configured campaign exists.
The checks of the integration user's rights (docs/targets.md S6) are in ``rights_checks.py``
and those of the task owners in ``owner_checks.py``; ``run_checks`` runs them all.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date
from typing import Any, get_origin

from connectors.contract import HOUSEHOLDS_CHECK, SchemaCheck, WriteKind
from connectors.errors import ConfigError, ConnectorError
from connectors.mapping import CANONICAL_TYPES, FieldMapping, WritebackConfig
from connectors.salesforce.client import SalesforceClient, select, soql
from connectors.salesforce.config import SalesforceSettings
from connectors.salesforce.households import RELATION, RELATION_FIELDS
from connectors.salesforce.mapping import missing_values
from connectors.salesforce.owner_checks import owner_checks
from connectors.salesforce.rights_checks import rights_checks
from connectors.salesforce.writes import MEMBER_STATUS

_TEXT = {"string", "picklist", "textarea", "combobox", "reference", "id", "email", "phone", "url"}
_ACCOUNTS_AS_MEMBERS_FIX = (
    "enable 'Accounts as Campaign Members' in Setup, or set accounts_as_campaign_members = false"
)
_NUMBER = {"double", "int", "currency", "percent", "long"}


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
    checks += _person_account_check(settings, mapping.object, described)
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
    checks += _member_status_check(client, writeback)
    checks += owner_checks(client, writeback)
    checks += rights_checks(
        client, mapping, writeback, fields=described, deletable=bool(obj.get("deletable"))
    )
    return checks


#: What every read selects while ``[crm] person_accounts`` is on (``connector._select``).
PERSON_ACCOUNT_FIELDS = ("IsPersonAccount", "PersonContactId")


def _person_account_check(
    settings: SalesforceSettings, sobject: str, described: Mapping[str, Any]
) -> list[SchemaCheck]:
    """With ``person_accounts`` on (the default) every read selects ``IsPersonAccount`` and
    ``PersonContactId``, the fields of person accounts ("Record types are person account
    record types if the Account field IsPersonAccount is set to true ... the ID of the
    corresponding person contact record is stored in the PersonContactId field": SOAP API
    Developer Guide, "Person Account Record Types"), a feature an org must have enabled
    ("Enable Person Accounts", Salesforce Help). An org without it has neither field, and
    every read would fail with INVALID_FIELD; ``describe`` shows which it is before the
    first sync."""
    if not settings.person_accounts:
        return []
    missing = [name for name in PERSON_ACCOUNT_FIELDS if name not in described]
    if not missing:
        return [
            SchemaCheck("person accounts", True, f"{sobject}.{' and '.join(PERSON_ACCOUNT_FIELDS)}")
        ]
    return [
        SchemaCheck(
            "person accounts",
            False,
            f"{sobject} has no {', '.join(missing)}: Person Accounts are not enabled, or the "
            "integration user cannot read them",
            "set [crm] person_accounts = false if the org has no Person Accounts; otherwise "
            f"grant the integration user Read on {sobject}.{', '.join(missing)}",
        )
    ]


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


def _external_id_checks(
    client: SalesforceClient, settings: SalesforceSettings
) -> list[SchemaCheck]:
    return [
        *external_id_check(client, settings, "Task"),
        *external_id_check(client, settings, settings.campaign_member_object),
    ]


def external_id_check(
    client: SalesforceClient, settings: SalesforceSettings, sobject: str
) -> list[SchemaCheck]:
    """One ``describe`` of ``sobject`` (a refusal is the object's line): ``_key_lines``."""
    obj = _describe(client, sobject)
    return [obj] if isinstance(obj, SchemaCheck) else _key_lines(settings, sobject, obj)


#: What must go before the Task key can be made Unique (``_key_lines``).
DUPLICATES = (
    "duplicate values from Tasks (Recycle Bin too: Salesforce refuses Unique while two share one)"
)


def _key_lines(
    settings: SalesforceSettings, sobject: str, described: Mapping[str, Any]
) -> list[SchemaCheck]:
    """Whether ``sobject`` carries the External ID field its writes find records by (and,
    for campaign members, ``AccountId`` when accounts are members). Without the field
    Salesforce refuses the whole upsert (``INVALID_FIELD``).

    On Task, which crmtier upserts by that field, it must be Unique too ("Do not allow
    duplicate values"; describe's ``unique``): "If you're upserting a record for an object
    that has the External ID attribute selected but not the Unique attribute selected (a
    non-unique index), your client application must have the permission 'View All Data'"
    ("Upsert Records Using sObject Rows by External ID", REST API Developer Guide), a right
    the integration user must not hold (``rights_checks``), and only Unique makes a rerun
    meet the one Task it made. An Activity custom field may be Unique (see
    docs/salesforce-api-audit.md). Salesforce will not set Unique while two records, those
    in the Recycle Bin included, share a value ("Duplicate value found when building
    unique index", Salesforce Help 000385434), so the fix names them (``DUPLICATES``).
    Campaign members are inserted, never upserted: their key needs no Unique."""
    fields = _fields(described)
    field_name = settings.external_id_field
    field = fields.get(field_name) or {}
    keyed = bool(field.get("externalId"))
    unique = bool(field.get("unique")) or sobject != "Task"
    name = f"external id {sobject}.{field_name}"
    if keyed and unique:
        out = [SchemaCheck(name, True)]
    elif keyed:
        out = [
            SchemaCheck(
                name,
                False,
                "not Unique: an upsert by a non-unique External ID needs View All Data",
                f"tick Unique (case-sensitive) on {sobject}.{field_name} in Setup, "
                f"after removing {DUPLICATES}",
            )
        ]
    else:
        out = [
            SchemaCheck(
                name,
                False,
                "missing or not marked External ID",
                f"create a unique External ID text field {field_name} on {sobject}",
            )
        ]
    if sobject == settings.campaign_member_object and settings.accounts_as_campaign_members:
        has = "AccountId" in fields
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


def write_checks(
    client: SalesforceClient, settings: SalesforceSettings, kinds: Collection[WriteKind]
) -> list[SchemaCheck]:
    """What these write kinds need beyond the mapped fields, the same lines ``run_checks``
    prints, one ``describe`` each: tasks (and their closures, which find tasks by it) the
    External ID field on Task, memberships the one on the campaign member object. The
    first upsert would otherwise be refused whole, after the run wrote tier fields. A
    refused ``describe`` (the credentials, the object) raises as any call would."""
    wanted = ["Task"] if "task" in kinds or "task_close" in kinds else []
    if "membership" in kinds:
        wanted.append(settings.campaign_member_object)
    return [line for s in wanted for line in _key_lines(settings, s, client.describe(s))]


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


def _member_status_check(client: SalesforceClient, writeback: WritebackConfig) -> list[SchemaCheck]:
    """Memberships are created with Status ``MEMBER_STATUS``, a value each campaign defines
    for itself: its ``CampaignMemberStatus`` rows ("One or more member status values
    defined for a campaign", Object Reference for the Salesforce Platform,
    "CampaignMemberStatus"), which marketing users may rename or remove. What an org does
    with a Status its campaign lacks the documentation does not say, so each campaign
    without it is a warning. The object "is accessible only to those users that are enabled
    as marketing users" (same page): a refused query is a warning too, since adding
    campaign members needs a Marketing User (docs/admin-setup.md). One query; none with
    ``campaign_memberships`` off, the set-up docs/admin-setup.md offers a user who may not
    be a Marketing User, which makes no membership to check a status for."""
    ids = sorted(set(writeback.campaigns.values()))
    if not ids or not writeback.campaign_memberships:
        return []
    name = "campaign member statuses"
    query = select(["CampaignId", "Label"], "CampaignMemberStatus", "WHERE CampaignId IN {}", ids)
    try:
        rows = client.query_all(query)
    except ConnectorError as exc:
        return [
            SchemaCheck(
                name,
                False,
                f"could not read CampaignMemberStatus: {exc}",
                "select Marketing User on the integration user's User record (docs/admin-setup.md)",
                "warning",
            )
        ]
    having = {str(r["CampaignId"])[:15] for r in rows if r.get("Label") == MEMBER_STATUS}
    lacking = [key for key, cid in sorted(writeback.campaigns.items()) if cid[:15] not in having]
    if not lacking:
        return [SchemaCheck(name, True, f'"{MEMBER_STATUS}" defined on every campaign')]
    return [
        SchemaCheck(
            name,
            False,
            f'no member status "{MEMBER_STATUS}" on {", ".join(lacking)}',
            f'add the member status "{MEMBER_STATUS}" to these campaigns in Salesforce',
            "warning",
        )
    ]
