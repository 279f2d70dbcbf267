"""The sandbox org's schema: which objects and fields it has, and their types (what a
field and an object are, and the value checks on write, are ``salesforce_specs.py``'s).

The Account fields come from the Salesforce default mapping (``[mapping]`` feeds read
fields, ``[writeback]`` the fields crmtier writes), so the sandbox always matches the
shipped mapping, and a mapping edit that names a field the org lacks fails the same way as
in a real org (``INVALID_FIELD``). Record ids and the forms values are written in are
``salesforce_wire.py``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from typing import get_origin

from connectors.mapping import CANONICAL_TYPES, DefaultMapping
from connectors.salesforce.mapping import FIELD_TYPES
from connectors.salesforce.metadata import KEY_LENGTH
from connectors.salesforce.override_audit import history_object
from connectors.sandbox.generator import TEXT_IMPORTED_INPUTS
from connectors.sandbox.optional import writeback_targets
from connectors.sandbox.salesforce_specs import FieldSpec, IntegrationRights, ObjectSpec
from tiering_core.outputs import output_type

EXTERNAL_KEY_FIELD = "Crmtier_Key__c"


#: A standard org's Task Status picklist, each value with its TaskStatus.IsClosed (only
#: Completed closes a task). An org may add values, closed ones too: "Multiple task status
#: values can represent a closed task" (Object Reference, "TaskStatus"); the sandbox's
#: ``SalesforceOrg.add_task_status`` does that.
TASK_STATUSES: Mapping[str, bool] = {
    "Not Started": False,
    "In Progress": False,
    "Completed": True,
    "Waiting on someone else": False,
    "Deferred": False,
}


def key_field(*, unique: bool = True) -> FieldSpec:
    """crmtier's key field on Task and CampaignMember as ``doctor --fix`` creates it
    (``metadata.key_component``): text, External ID and Unique; ``unique=False`` for an
    org whose admin left Unique off."""
    return FieldSpec(
        EXTERNAL_KEY_FIELD, "string", external_id=True, unique=unique, length=KEY_LENGTH
    )


def _system_fields(obj: ObjectSpec) -> None:
    obj.add(FieldSpec("Id", "id", updateable=False, createable=False, nillable=False))
    obj.add(FieldSpec("SystemModstamp", "datetime", updateable=False, createable=False))
    obj.add(FieldSpec("CreatedDate", "datetime", updateable=False, createable=False))
    obj.add(FieldSpec("OwnerId", "reference"))


def _canonical_type(path: str) -> tuple[str, tuple[str, ...]]:
    # A Number field only ever holds a number or null ("Number" in Salesforce Help, Custom
    # Field Types): an org that imported text among numbers keeps that input in a Text
    # field, and describe says so.
    if path in TEXT_IMPORTED_INPUTS:
        return "string", ()
    if path == "kind":
        return "picklist", ("individual", "corporate")
    if path == "credit.loan_class":
        return "picklist", ("normal", "special_mention", "substandard", "doubtful", "loss")
    if path == "aml.industry_risk":
        return "picklist", ("low", "medium", "high")
    if path == "currency":
        return "picklist", ("CNY", "USD", "HKD", "EUR")
    typ = CANONICAL_TYPES.get(path, str)
    if get_origin(typ) is tuple:
        return "multipicklist", ()
    return {bool: "boolean", int: "double", float: "double", date: "date"}.get(typ, "string"), ()


def writeback_spec(output: str, name: str) -> FieldSpec:
    """The org's field for a write-back output: Salesforce's type for the output's declared
    type (``tiering_core/outputs.py``); a picklist restricted to the declared values, so a
    wrong value fails as in a real org."""
    typ = output_type(output)
    return FieldSpec(
        name,
        FIELD_TYPES[typ.kind][0],
        picklist=typ.values,
        restricted=bool(typ.values),
        length=typ.max_length,
    )


def build_schema(
    mapping: DefaultMapping,
    *,
    accounts_as_members: bool,
    multiple_accounts: bool = True,
    person_accounts: bool = True,
    rights: IntegrationRights | None = None,
    task_statuses: Mapping[str, bool] = TASK_STATUSES,
) -> dict[str, ObjectSpec]:
    """The org as the integration user sees it through ``rights`` (default: least
    privilege), its Task Status picklist ``task_statuses``'s values. Rights only narrow
    what the API may do: the sandbox's seeding and its control API write the store
    directly, as a CRM user or an import would."""
    rights = rights or IntegrationRights()
    account = ObjectSpec(mapping.mapping.object, deletable=rights.delete_customers)
    _system_fields(account)
    for name, typ in (
        ("Name", "string"),
        ("Phone", "phone"),
        ("PersonEmail", "email"),
        ("National_ID__c", "string"),
    ):
        account.add(FieldSpec(name, typ))
    if person_accounts:  # an org without Person Accounts has neither field
        account.add(FieldSpec("IsPersonAccount", "boolean", updateable=False, createable=False))
        account.add(FieldSpec("PersonContactId", "reference", updateable=False, createable=False))
    for path, crm_field in mapping.mapping.fields.items():
        typ, values = _canonical_type(path)
        if path == "owner_id":
            typ = "reference"
        account.add(FieldSpec(crm_field, typ, picklist=values))
    for output, crm_field in writeback_targets("salesforce", mapping).items():
        account.add(writeback_spec(output, crm_field))
    if not rights.edit_input_fields:  # field-level security: Read only on everything else
        # but OwnerId, which has no field-level security: changing it takes Edit on the
        # record and the Transfer Record permission ("Account", Object Reference for the
        # Salesforce Platform: OwnerId is Create, Update), what advisor coverage's
        # opt-in owner changes use.
        tier = set(writeback_targets("salesforce", mapping).values()) | {"OwnerId"}
        for name, spec in list(account.fields.items()):
            if name not in tier:
                account.fields[name] = replace(spec, updateable=False, createable=False)

    task = ObjectSpec("Task")
    _system_fields(task)
    for spec in (
        # lengths as the Object Reference's "Task" states them (Subject 255, Description
        # 32,000) and as doctor --fix creates the key (metadata.KEY_LENGTH)
        FieldSpec("Subject", "combobox", length=255),
        FieldSpec("ActivityDate", "date"),
        FieldSpec("Status", "picklist", picklist=tuple(task_statuses), restricted=True),
        # read-only, set by the org from the Status's TaskStatus.IsClosed (label "Closed",
        # Salesforce Field Reference "Task"); ``OrgSaves.view`` derives it
        FieldSpec("IsClosed", "boolean", updateable=False, createable=False, nillable=False),
        # read-only: "Archived" and "Deleted" (Salesforce Field Reference, "Task"); archived
        # by the org's archival of old closed activities, deleted into the Recycle Bin
        FieldSpec("IsArchived", "boolean", updateable=False, createable=False, nillable=False),
        FieldSpec("IsDeleted", "boolean", updateable=False, createable=False, nillable=False),
        FieldSpec("Priority", "picklist", picklist=("High", "Normal", "Low"), restricted=True),
        FieldSpec("WhatId", "reference"),
        FieldSpec("WhoId", "reference"),
        FieldSpec("Description", "textarea", length=32_000),
        key_field(),
    ):
        task.add(spec)

    campaign = ObjectSpec("Campaign")
    _system_fields(campaign)
    campaign.add(FieldSpec("Name", "string"))
    campaign.add(FieldSpec("IsActive", "boolean"))

    member = ObjectSpec("CampaignMember")
    _system_fields(member)
    member.add(FieldSpec("CampaignId", "reference", updateable=False))
    member.add(FieldSpec("ContactId", "reference", updateable=False))
    member.add(FieldSpec("LeadId", "reference", updateable=False))
    if accounts_as_members:
        member.add(FieldSpec("AccountId", "reference", updateable=False))
    member.add(FieldSpec("Status", "picklist", picklist=("Sent", "Responded")))
    member.add(key_field())
    return {
        o.name: o
        for o in (
            account,
            task,
            campaign,
            member,
            *([account_contact_relation()] if multiple_accounts else []),
            history_spec(account.name),
            *lookup_objects(),
        )
    }


#: ``Roles`` values the sandbox's household relations use (Financial Services Cloud's
#: household roles: "select Client" for the primary member, "the member's role relative to
#: the primary household member's role, such as Dependent or Spouse": "Add Household
#: Members and Relationships", help.salesforce.com).
HOUSEHOLD_ROLES = (
    "Client",
    "Spouse",
    "Partner",
    "Dependent",
    "Parent",
    "Family Member",
    "Business",
)


def account_contact_relation() -> ObjectSpec:
    """``AccountContactRelation`` (API 37.0+): "a relationship between a contact and one or
    more accounts"; it "supports person accounts ... A person account can also be related
    to another person account" (Object Reference for the Salesforce Platform,
    sforce_api_objects_accountcontactrelation.htm). Read-only to the integration user."""
    acr = ObjectSpec("AccountContactRelation", deletable=False)
    _system_fields(acr)
    for name, typ in (
        ("AccountId", "reference"),
        ("ContactId", "reference"),
        ("IsActive", "boolean"),
        ("IsDirect", "boolean"),
    ):
        acr.add(FieldSpec(name, typ, updateable=False, createable=False))
    acr.add(
        FieldSpec(
            "Roles", "multipicklist", updateable=False, createable=False, picklist=HOUSEHOLD_ROLES
        )
    )
    return acr


def history_spec(sobject: str) -> ObjectSpec:
    """The customer object's field history (``AccountHistory``), query-only: the rows
    field history tracking keeps of the tracked override fields (docs/overrides.md)."""
    name, parent = history_object(sobject)
    spec = ObjectSpec(name, deletable=False)
    for field_name, typ in (
        ("Id", "id"),
        (parent, "reference"),
        ("Field", "picklist"),
        ("OldValue", "anyType"),
        ("NewValue", "anyType"),
        ("CreatedById", "reference"),
        ("CreatedDate", "datetime"),
        ("IsDeleted", "boolean"),
    ):
        spec.add(FieldSpec(field_name, typ, updateable=False, createable=False))
    return spec


#: The custom User field a bank keeps each RM's capacity in (private-equivalent clients);
#: the sandbox seeds it on every record owner ("Create Custom Fields" on the User object,
#: Salesforce Help; the User sObject carries custom fields like any other).
RM_CAPACITY_FIELD = "RM_Capacity__c"


def lookup_objects() -> tuple[ObjectSpec, ...]:
    """What doctor and the owner checks look up, read-only through the API here: what a
    Task's ``OwnerId`` may name, ``User`` (only an active one owns records) and queues,
    which are ``Group`` rows of ``Type`` Queue whose ``QueueSobject`` rows list the objects
    each accepts ("A queue is a Group whose Type is Queue"; QueueSobject "Represents the
    mapping between a queue Group and the sObject types associated with the queue": Object
    Reference for the Salesforce Platform, developer.salesforce.com/docs/platform/
    object-reference/references/standard-objects/object-queuesobject.html); and each
    campaign's ``CampaignMemberStatus`` rows ("One or more member status values defined
    for a campaign", same reference), the values a member's Status takes."""
    user = ObjectSpec("User", deletable=False)
    group = ObjectSpec("Group", deletable=False)
    queue_object = ObjectSpec("QueueSobject", deletable=False)
    status = ObjectSpec("CampaignMemberStatus", deletable=False)
    for spec, fields in (
        (user, (("Name", "string"), ("IsActive", "boolean"), (RM_CAPACITY_FIELD, "double"))),
        (group, (("Name", "string"), ("DeveloperName", "string"), ("Type", "picklist"))),
        (queue_object, (("QueueId", "reference"), ("SobjectType", "picklist"))),
        (status, (("CampaignId", "reference"), ("Label", "string"), ("IsDefault", "boolean"))),
    ):
        spec.add(FieldSpec("Id", "id", updateable=False, createable=False, nillable=False))
        spec.add(FieldSpec("SystemModstamp", "datetime", updateable=False, createable=False))
        for name, typ in fields:
            spec.add(FieldSpec(name, typ, updateable=False, createable=False))
    return user, group, queue_object, status


def user_permission_access(rights: IntegrationRights) -> ObjectSpec:
    """``UserPermissionAccess`` (API 41.0+, query and describe only): one row, the running
    user's effective system permissions, readable without "View Setup and Configuration"."""
    spec = ObjectSpec("UserPermissionAccess", deletable=False)
    spec.add(FieldSpec("LastCacheUpdate", "datetime", updateable=False, createable=False))
    for name in rights.permissions():
        spec.add(FieldSpec(name, "boolean", updateable=False, createable=False, nillable=False))
    return spec
