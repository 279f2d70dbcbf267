"""``crmtier doctor --fix`` for Salesforce: create the fields crmtier writes, through the
Metadata API, and grant them to the integration user.

What is created: the ``[writeback.fields]`` that the customer object lacks, typed from the
outputs' declaration (``tiering_core/outputs.py``) through Salesforce's type for each
output type (``mapping.FIELD_TYPES``), so the two cannot drift: a picklist becomes a
restricted picklist of exactly the declared values, a number a Number of the declared
scale, a boolean a Checkbox, a date a Date, text a Text and long text a Long Text Area of
the declared length; and the unique External ID text field on Task and on the
campaign-member object that tasks and memberships are upserted by. Task fields are defined
on Activity, as Salesforce requires.

What is not: input fields (``[mapping.fields]``) hold the bank's own data, so a missing
one is a mapping or data-model question for the bank, never something crmtier invents;
campaigns are referenced by id in ``[writeback.campaigns]``, and an id cannot be created.

A field created through the Metadata API is granted to no profile or permission set, so
the integration user cannot see it until someone grants it. With ``[crm] permission_set``
set, the grant (Read and Edit) is added to that permission set here; without it, the step
is reported to do by hand. Every claim is checked: a field counts as fixed only when the
integration user's ``describe`` afterwards shows it, writable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.errors import ConnectorError
from connectors.mapping import WritebackConfig
from connectors.salesforce.checks import DUPLICATES
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.client_metadata import MetadataApi
from connectors.salesforce.config import SalesforceSettings
from connectors.salesforce.mapping import FIELD_TYPES
from tiering_core.outputs import declared

#: Custom fields of Task and Event live on Activity in the Metadata API.
DEFINED_ON = {"Task": "Activity"}
KEY_LENGTH = 255  # the External ID text field: room for any deterministic key


@dataclass
class SchemaFix:
    """What ``fix_schema`` did (``fixed``) and what is left to an admin (``by_hand``).
    ``handled`` names the fields a ``by_hand`` line already covers, so the caller does not
    print the generic check line for them as well."""

    fixed: list[str] = field(default_factory=list)
    by_hand: list[str] = field(default_factory=list)
    handled: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Wanted:
    sobject: str  # as describe names it (Task, Account, ...)
    name: str
    component: Mapping[str, Any]

    @property
    def full_name(self) -> str:
        return f"{DEFINED_ON.get(self.sobject, self.sobject)}.{self.name}"

    @property
    def label(self) -> str:
        return f"{self.sobject}.{self.name} ({self.component['type']})"


def writeback_component(output: str, full_name: str) -> dict[str, Any]:
    """The ``CustomField`` metadata for a write-back output, typed from its declaration."""
    spec = declared(output)
    typ = spec.type
    name = full_name.partition(".")[2]
    base: dict[str, Any] = {
        "fullName": full_name,
        "label": name.removesuffix("__c").replace("_", " ")[:40],
        "description": f"Written by crmtier ({output}: {spec.label}); do not edit by hand.",
        "type": FIELD_TYPES[typ.kind][1],
    }
    if typ.kind == "picklist":
        values = [{"fullName": v, "label": v, "default": False} for v in typ.values]
        value_set = {"restricted": True, "valueSetDefinition": {"sorted": False, "value": values}}
        return {**base, "valueSet": value_set}
    if typ.kind == "boolean":
        return {**base, "defaultValue": "false"}
    if typ.kind == "number":
        return {**base, "precision": 18, "scale": typ.scale or 0}
    if typ.kind == "long_text":
        return {**base, "length": typ.max_length, "visibleLines": 5}
    if typ.kind == "text":
        return {**base, "length": typ.max_length}
    return base  # a Date needs nothing more


def key_component(full_name: str) -> dict[str, Any]:
    """The External ID text field tasks and campaign members are upserted by."""
    return {
        "fullName": full_name,
        "label": "crmtier key",
        "description": "crmtier's deterministic key for upserts; do not edit.",
        "type": "Text",
        "length": KEY_LENGTH,
        "externalId": True,
        "unique": True,
        "caseSensitive": True,
    }


def fix_schema(
    client: SalesforceClient,
    settings: SalesforceSettings,
    customer_object: str,
    writeback: WritebackConfig,
) -> SchemaFix:
    """Create the missing write-back and External ID fields, grant what crmtier writes to
    the integration user, and report each field as fixed only once ``describe`` shows it
    writable. Connector errors end the attempt with one by-hand line."""
    fix = SchemaFix()
    metadata = MetadataApi(client)
    try:
        described = {
            sobject: {f["name"]: f for f in client.describe(sobject).get("fields", [])}
            for sobject in (customer_object, "Task", settings.campaign_member_object)
        }
        wanted, to_grant = _plan(described, settings, customer_object, writeback, fix)
        created, hidden = _create(metadata, wanted, fix)
        to_grant += created + hidden
        granted = _grant(metadata, settings, to_grant, fix) if to_grant else False
        _confirm(client, created, to_grant, granted, settings, fix)
    except ConnectorError as exc:
        fix.by_hand.append(f"Salesforce Metadata API: {exc}; create the fields in Setup")
    finally:
        metadata.close()
    return fix


def _plan(
    described: Mapping[str, Mapping[str, Mapping[str, Any]]],
    settings: SalesforceSettings,
    customer_object: str,
    writeback: WritebackConfig,
    fix: SchemaFix,
) -> tuple[list[_Wanted], list[_Wanted]]:
    """(fields to create, existing fields to grant Edit on)."""
    create: list[_Wanted] = []
    grant: list[_Wanted] = []
    customer = described[customer_object]
    for output, name in sorted(writeback.fields.items()):
        item = _Wanted(
            customer_object, name, writeback_component(output, f"{customer_object}.{name}")
        )
        existing = customer.get(name)
        if existing is None:
            create.append(item)
        elif not existing.get("updateable"):
            grant.append(item)
    key = settings.external_id_field
    for sobject in ("Task", settings.campaign_member_object):
        full_name = f"{DEFINED_ON.get(sobject, sobject)}.{key}"
        existing = described[sobject].get(key)
        if existing is None:
            create.append(_Wanted(sobject, key, key_component(full_name)))
        elif not existing.get("externalId"):
            fix.by_hand.append(
                f"{sobject}.{key} exists but is not an External ID: mark it External ID and "
                "Unique in Setup (crmtier does not change an existing field's definition)"
            )
            fix.handled.add(f"{sobject}.{key}")
        elif sobject == "Task" and not existing.get("unique"):  # upserted: ``checks._key_lines``
            fix.by_hand.append(
                f"{sobject}.{key} is an External ID but not Unique: tick Unique in Setup "
                f"after removing {DUPLICATES} (crmtier does not change an existing field's "
                "definition)"
            )
            fix.handled.add(f"{sobject}.{key}")
    return create, grant


def _create(
    metadata: MetadataApi, wanted: Sequence[_Wanted], fix: SchemaFix
) -> tuple[list[_Wanted], list[_Wanted]]:
    """(fields created, fields that already exist). ``describe`` lists only the fields the
    integration user may read, so a field made by an earlier ``--fix`` that granted it to
    nobody looks missing; creating it again answers DUPLICATE_DEVELOPER_NAME, and what
    it needs is the grant, not another create."""
    if not wanted:
        return [], []
    results = metadata.create("CustomField", [w.component for w in wanted])
    by_name = {str(r.get("fullName")): r for r in results}
    created, hidden = [], []
    for item in wanted:
        result = by_name.get(item.full_name, {})
        if result.get("success"):
            created.append(item)
            continue
        errors = result.get("errors") or [{}]
        if any(e.get("statusCode") == "DUPLICATE_DEVELOPER_NAME" for e in errors):
            hidden.append(item)
            continue
        reason = "; ".join(
            f"{e.get('statusCode', 'no result')}: {e.get('message', '')}".rstrip(": ")
            for e in errors
        )
        fix.by_hand.append(f"could not create {item.label}: {reason}; create it in Setup")
        fix.handled.update({item.name, f"{item.sobject}.{item.name}"})
    return created, hidden


def _grant(
    metadata: MetadataApi,
    settings: SalesforceSettings,
    fields: Sequence[_Wanted],
    fix: SchemaFix,
) -> bool:
    """Read and Edit on ``fields`` in the integration user's permission set; True if the
    Metadata API accepted it. Read first: upserting a set that does not exist would
    create one nobody is assigned to."""
    name = settings.permission_set
    if not name:
        return False
    existing = metadata.read("PermissionSet", [name])
    if not existing:
        fix.by_hand.append(
            f"permission set {name} ([crm] permission_set) does not exist: create it, assign "
            "it to the integration user, and rerun crmtier doctor --fix"
        )
        return False
    # The whole set goes back with our grants merged in: an update may replace the
    # component's definition, and the set holds the bank's other permissions.
    ours = {f.full_name for f in fields}
    component = dict(existing[0])
    kept = [g for g in component.get("fieldPermissions") or [] if g["field"] not in ours]
    grants = [{"field": f, "readable": True, "editable": True} for f in sorted(ours)]
    component["fieldPermissions"] = [*kept, *grants]
    component["label"] = component.get("label") or name  # required by the WSDL
    result = metadata.upsert("PermissionSet", [component])
    if result and result[0].get("success"):
        return True
    errors = (result[0].get("errors") if result else None) or [{}]
    fix.by_hand.append(
        f"could not grant the fields in permission set {name}: "
        + "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in errors)
    )
    return False


def _confirm(
    client: SalesforceClient,
    created: Sequence[_Wanted],
    to_grant: Sequence[_Wanted],
    granted: bool,
    settings: SalesforceSettings,
    fix: SchemaFix,
) -> None:
    """``describe`` again: only a field the integration user now sees as writable
    (``updateable``) is reported fixed. A key's External ID flag is not checked again here:
    ``_plan`` already sent an existing key without it to ``by_hand``, and a key created here
    carries it in its definition (``key_component``)."""
    if not to_grant:
        return
    described = {
        s: {f["name"]: f for f in client.describe(s).get("fields", [])}
        for s in {w.sobject for w in to_grant}
    }
    where = f"permission set {settings.permission_set}" if granted else ""
    for item in to_grant:
        now = described[item.sobject].get(item.name)
        ok = now is not None and bool(now.get("updateable"))
        new = item in created
        if ok:
            verb = "created" if new else "granted Edit on"
            through = f", editable through {where}" if where else ""
            fix.fixed.append(f"{verb} {item.label}{through}")
            continue
        fix.handled.update({item.name, f"{item.sobject}.{item.name}"})
        state = "was created, but" if new else "exists, but"
        fix.by_hand.append(
            f"{item.sobject}.{item.name} {state} the integration user cannot edit it yet: "
            f"grant Read and Edit on "
            f"{item.full_name} in the integration user's permission set"
            + (
                ""
                if settings.permission_set
                else " (or name it in [crm] permission_set and rerun crmtier doctor --fix)"
            )
        )
