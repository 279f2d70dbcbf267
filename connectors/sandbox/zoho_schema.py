"""Field metadata of the Zoho sandbox org: what ``GET /crm/v2/settings/fields`` answers.

zcrmsdk reads this metadata before its first operation on a module and types every value
it reads or writes by it (picklists as ``Choice``, dates as ``date``, ...), and it validates
picklist values client-side against ``pick_list_values``. So the metadata is derived from
the same sources crmtier uses, and cannot drift from them: customer fields from the shipped
default mapping (typed by the canonical model), write-back fields from the outputs'
declaration (``tiering_core/outputs.py``) through Zoho's type for each output type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_origin

from connectors.mapping import CANONICAL_TYPES, DefaultMapping
from connectors.sandbox.generator import (
    HIGH_RISK_COUNTRIES,
    ORDINARY_COUNTRIES,
    PRODUCTS,
    TEXT_IMPORTED_INPUTS,
)
from connectors.sandbox.optional import writeback_targets
from connectors.zoho.mapping import FIELD_TYPES
from tiering_core import models
from tiering_core.outputs import output_type

CUSTOMER_MODULE = "Contacts"
TASK_MODULE = "Tasks"
CAMPAIGN_MODULE = "Campaigns"
#: ``Household_Role`` values of a household member (connectors.zoho.households).
HOUSEHOLD_ROLES = ("Primary", "Spouse", "Partner", "Child", "Parent", "Family Member", "Business")
MODULES = (CUSTOMER_MODULE, "Leads", "Accounts", TASK_MODULE, CAMPAIGN_MODULE)
TASK_KEY_FIELD = "Crmtier_Key"

#: Picklists of canonical *input* fields, as a bank's Zoho admin would set them up.
INPUT_PICKLISTS: dict[str, tuple[str, ...]] = {
    "kind": models.CUSTOMER_KINDS,
    "credit.loan_class": models.LOAN_CLASSES,
    "aml.industry_risk": models.LEVELS,
    "currency": ("CNY", "USD", "HKD", "EUR"),
    "activity.products_held": PRODUCTS,
    "aml.high_risk_countries": ORDINARY_COUNTRIES + HIGH_RISK_COUNTRIES,
}

TASK_STATUS = ("Not Started", "Deferred", "In Progress", "Completed", "Waiting for input")
TASK_PRIORITY = ("Highest", "High", "Normal", "Low", "Lowest")
CAMPAIGN_STATUS = ("Planning", "Active", "Inactive", "Complete")


@dataclass(frozen=True)
class ZohoField:
    api_name: str
    data_type: str
    picklist: tuple[str, ...] = ()
    mandatory: bool = False
    custom: bool = True
    unique: bool = False
    lookup_module: str | None = None
    read_only: bool = False

    def as_json(self, field_id: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(field_id),
            "api_name": self.api_name,
            "field_label": self.api_name.replace("_", " "),
            "data_type": self.data_type,
            "json_type": _JSON_TYPES.get(self.data_type, "string"),
            "custom_field": self.custom,
            "system_mandatory": self.mandatory,
            "read_only": self.read_only,
            "length": 255 if self.data_type in ("text", "picklist") else None,
            "unique": {"casesensitive": "false"} if self.unique else {},
            "visible": True,
        }
        if self.picklist:
            out["pick_list_values"] = [
                {"display_value": v, "actual_value": v, "sequence_number": i + 1, "type": "used"}
                for i, v in enumerate(("-None-", *self.picklist))
            ]
        else:
            out["pick_list_values"] = []
        if self.lookup_module is not None:
            out["lookup"] = {
                "module": self.lookup_module,
                "api_name": self.lookup_module,
                "display_label": self.lookup_module,
            }
        return out


_JSON_TYPES = {
    "double": "double",
    "currency": "double",
    "integer": "integer",
    "boolean": "boolean",
    "multiselectpicklist": "jsonarray",
    "lookup": "jsonobject",
    "ownerlookup": "jsonobject",
}


def _canonical_type(path: str) -> str:
    # Zoho returns a text field's values as text and its metadata says ``text``: this is
    # how a real org holds non-numbers among numbers. An Integer or Decimal field only ever
    # holds numbers or nothing (Zoho's "Custom Field Types", bigin.com/developer/docs/
    # toppings/custom-field-types.html: an Integer field takes "integer numbers with a
    # limit of maximum 9 digits", a single-line text field "characters and numbers").
    if path in TEXT_IMPORTED_INPUTS:
        return "text"
    typ = CANONICAL_TYPES[path]
    if path in INPUT_PICKLISTS:
        return "multiselectpicklist" if get_origin(typ) is tuple else "picklist"
    if typ is float:
        return "double"
    if typ is int:
        return "integer"
    if typ is bool:
        return "boolean"
    return "text"


def _system_fields(*names: tuple[str, str, bool]) -> list[ZohoField]:
    return [ZohoField(n, t, mandatory=m, custom=False) for n, t, m in names]


@dataclass
class OrgSchema:
    """All modules' fields. Tests may change a picklist (``set_picklist``) to model an org
    whose admin did not add a value."""

    modules: dict[str, dict[str, ZohoField]] = field(default_factory=dict)

    def fields(self, module: str) -> dict[str, ZohoField]:
        return self.modules.get(module, {})

    def set_picklist(self, module: str, api_name: str, values: Iterable[str]) -> None:
        old = self.modules[module][api_name]
        self.modules[module][api_name] = ZohoField(
            old.api_name, old.data_type, tuple(values), old.mandatory, old.custom, old.unique
        )

    def as_json(self, module: str) -> list[dict[str, Any]]:
        base = 5725767000000002000 + MODULES.index(module) * 1000 if module in MODULES else 0
        return [f.as_json(base + i) for i, f in enumerate(self.fields(module).values())]


def build_schema(default: DefaultMapping) -> OrgSchema:
    contact: list[ZohoField] = _system_fields(
        ("Last_Name", "text", True),
        ("First_Name", "text", False),
        ("Email", "email", False),
        ("Phone", "phone", False),
        ("Modified_Time", "datetime", False),
        ("Created_Time", "datetime", False),
    )
    contact.append(ZohoField("Owner", "ownerlookup", custom=False))
    contact.append(ZohoField("National_ID", "text"))
    contact.append(ZohoField("Account_Name", "lookup", custom=False, lookup_module="Accounts"))
    contact.append(ZohoField("Household_Role", "picklist", HOUSEHOLD_ROLES))
    for path, api_name in default.mapping.fields.items():
        contact.append(ZohoField(api_name, _canonical_type(path), INPUT_PICKLISTS.get(path, ())))
    for output, api_name in writeback_targets("zoho", default).items():
        typ = output_type(output)  # a picklist holds every value the engine can emit
        contact.append(ZohoField(api_name, FIELD_TYPES[typ.kind], typ.values))
    task = [
        ZohoField("Subject", "text", mandatory=True, custom=False),
        ZohoField("Due_Date", "date", custom=False),
        ZohoField("Status", "picklist", TASK_STATUS, custom=False),
        ZohoField("Priority", "picklist", TASK_PRIORITY, custom=False),
        ZohoField("Owner", "ownerlookup", custom=False),
        ZohoField("What_Id", "lookup", custom=False, lookup_module="se_module"),
        ZohoField("Who_Id", "lookup", custom=False, lookup_module=CUSTOMER_MODULE),
        ZohoField("Description", "textarea", custom=False),
        ZohoField(TASK_KEY_FIELD, "text", unique=True),
    ]
    campaign = [
        ZohoField("Campaign_Name", "text", mandatory=True, custom=False),
        ZohoField("Status", "picklist", CAMPAIGN_STATUS, custom=False),
        ZohoField("Owner", "ownerlookup", custom=False),
    ]
    lead_or_account = _system_fields(("Last_Name", "text", True), ("Email", "email", False))
    account = _system_fields(("Account_Name", "text", True))
    return OrgSchema(
        {
            CUSTOMER_MODULE: {f.api_name: f for f in contact},
            "Leads": {f.api_name: f for f in lead_or_account},
            "Accounts": {f.api_name: f for f in account},
            TASK_MODULE: {f.api_name: f for f in task},
            CAMPAIGN_MODULE: {f.api_name: f for f in campaign},
        }
    )


def stored_value(f: ZohoField, value: Any) -> Any:
    """``value`` as this org's field holds it: numbers in a text field as their text. A
    value the field's type cannot hold at all is a ValueError: a real org never returns
    one, and zcrmsdk could not read it. A picklist may hold a value its list no longer
    has (an option removed after records used it), so list membership is not checked."""
    if f.data_type in ("text", "textarea") and isinstance(value, int | float):
        value = str(value) if not isinstance(value, bool) else value
    expected = invalid_value(f, value, listed=False)
    if expected is not None:
        raise ValueError(f"{f.api_name}: a Zoho {expected} field cannot hold {value!r}")
    return value


def invalid_value(f: ZohoField, value: Any, *, listed: bool = True) -> str | None:
    """Why Zoho would reject ``value`` for this field (``INVALID_DATA``), or None; with
    ``listed`` a picklist value must also be in the field's list."""
    if value is None:
        return None
    kind = f.data_type
    if kind in ("double", "currency"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "picklist":
        ok = isinstance(value, str) and (not listed or not f.picklist or value in f.picklist)
    elif kind == "multiselectpicklist":
        ok = isinstance(value, list)
    elif kind == "date":
        ok = isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-"
    elif kind in ("lookup", "ownerlookup"):
        ok = isinstance(value, Mapping) and "id" in value
    else:
        ok = isinstance(value, str)
    return None if ok else kind
