"""What the sandbox org is built of: a field (``FieldSpec``: how ``describe`` reports it and
the value checks an org applies on write), an object (``ObjectSpec``), and the integration
user's rights (``IntegrationRights``). ``salesforce_schema.py`` says which objects and
fields the org has; kept apart so that module stays about the org's shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from connectors.sandbox.salesforce_wire import PREFIXES, is_valid_id


@dataclass(frozen=True)
class IntegrationRights:
    """What the integration user's profile and permission sets grant, as far as crmtier's
    API calls can see it: field-level security on the customer object (``describe``'s
    ``updateable``/``createable``, enforced on writes), Delete on customers (``deletable``)
    and the system permissions ``UserPermissionAccess`` reports.

    The default is the set-up docs/admin-setup.md prescribes (docs/targets.md S6): the
    "Minimum Access - API Only Integrations" profile plus a permission set with Read on the
    input fields, Edit only on the tier fields, nothing org-wide. ``broad()`` is a
    System Administrator used as the integration user, the set-up doctor warns about.
    """

    edit_input_fields: bool = False
    delete_customers: bool = False
    modify_all_data: bool = False
    view_all_data: bool = False
    customize_application: bool = False
    api_only: bool = True

    @classmethod
    def broad(cls) -> IntegrationRights:
        return cls(
            edit_input_fields=True,
            delete_customers=True,
            modify_all_data=True,
            view_all_data=True,
            customize_application=True,
            api_only=False,
        )

    def permissions(self) -> dict[str, bool]:
        """The ``UserPermissionAccess`` fields the sandbox answers (Salesforce names each
        ``Permissions<PermissionName>``; these four are the ones crmtier reads)."""
        return {
            "PermissionsModifyAllData": self.modify_all_data,
            "PermissionsViewAllData": self.view_all_data,
            "PermissionsCustomizeApplication": self.customize_application,
            "PermissionsApiUserOnly": self.api_only,
        }


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str  # id, string, textarea, double, int, boolean, date, datetime, picklist, ...
    updateable: bool = True
    createable: bool = True
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    external_id: bool = False
    #: the Unique attribute ("Do not allow duplicate values"), which describe reports as
    #: ``unique`` apart from ``externalId``: an External ID need not be unique, and an
    #: upsert by one that is not needs View All Data ("Upsert Records Using sObject Rows
    #: by External ID", REST API Developer Guide)
    unique: bool = False
    nillable: bool = True
    #: characters a text field holds; a longer value is refused with STRING_TOO_LONG ("The
    #: String specified is longer than allowed": StatusCode, SOAP API Developer Guide,
    #: "Core Data Types Used in API Calls"); None: not modelled
    length: int | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.name.removesuffix("__c").replace("_", " "),
            "type": self.type,
            "length": self.length or 0,
            "updateable": self.updateable,
            "createable": self.createable,
            "nillable": self.nillable,
            "externalId": self.external_id,
            "unique": self.unique,
            "custom": self.name.endswith("__c"),
            "restrictedPicklist": self.restricted,
            "picklistValues": [
                {"value": v, "label": v, "active": True, "defaultValue": False}
                for v in self.picklist
            ],
        }

    def check(self, value: Any) -> tuple[str, str] | None:
        """(statusCode, message) if the org would reject ``value`` for this field."""
        if value is None:
            return None
        label = self.name.removesuffix("__c")
        if self.type in ("picklist", "multipicklist") and self.restricted:
            values = str(value).split(";") if self.type == "multipicklist" else [str(value)]
            for v in values:
                if v not in self.picklist:
                    return (
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        f"{label}: bad value for restricted picklist field: {v}",
                    )
        ok = {
            "double": isinstance(value, int | float) and not isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
            "date": isinstance(value, str) and _is_date(value),
            "reference": is_valid_id(value),
        }.get(self.type, isinstance(value, str))
        if not ok:
            return (
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                f"{label}: value not of required type: {value}",
            )
        if self.length is not None and isinstance(value, str) and len(value) > self.length:
            return ("STRING_TOO_LONG", f"{label}: data value too large (max length={self.length})")
        return None


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


@dataclass
class ObjectSpec:
    name: str
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    deletable: bool = True  # for the integration user

    def add(self, spec: FieldSpec) -> None:
        self.fields[spec.name] = spec

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.name,
            "keyPrefix": PREFIXES.get(self.name),
            "createable": True,
            "updateable": True,
            "deletable": self.deletable,
            "queryable": True,
            "custom": False,
            "fields": [f.describe() for f in self.fields.values()],
        }
