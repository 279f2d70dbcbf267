"""``crmtier doctor`` for Salesforce: is the org set up the way the config says?

Each check is one line with a fix an admin can act on: auth works, the customer object and
every mapped field exist with a compatible type, write-back fields exist and are writable,
Task and CampaignMember carry the external-id field, and every configured campaign exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, get_origin

from connectors.contract import SchemaCheck
from connectors.errors import ConnectorError
from connectors.mapping import CANONICAL_TYPES, FieldMapping, WritebackConfig
from connectors.salesforce.client import SalesforceClient, soql
from connectors.salesforce.config import SalesforceSettings

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


def _describe(client: SalesforceClient, sobject: str) -> dict[str, Mapping[str, Any]] | SchemaCheck:
    try:
        fields = client.describe(sobject).get("fields", [])
    except ConnectorError as exc:
        return SchemaCheck(
            f"object {sobject}",
            False,
            str(exc),
            f"check that {sobject} exists and the integration user can read it",
        )
    return {f["name"]: f for f in fields}


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
    described = _describe(client, mapping.object)
    if isinstance(described, SchemaCheck):
        return [*checks, described]
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
        checks.append(
            SchemaCheck(
                f"write-back {name}",
                ok,
                f"{output}: {detail}",
                "" if ok else f"create {name} and grant edit access to the integration user",
            )
        )
    checks += _external_id_checks(client, settings)
    checks += _campaign_checks(client, writeback)
    return checks


def _external_id_checks(
    client: SalesforceClient, settings: SalesforceSettings
) -> list[SchemaCheck]:
    out = []
    for sobject in ("Task", settings.campaign_member_object):
        described = _describe(client, sobject)
        if isinstance(described, SchemaCheck):
            out.append(described)
            continue
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
