"""The objects of the FXiaoke sandbox tenant and their ``describe`` metadata.

Shapes and where they come from (FXiaoke Open API v2 docs, developer.fxiaoke.com/openapi_v2):

* documented: ``AccountObj`` with system fields ``_id``, ``name``, ``owner`` (employee list),
  ``last_modified_time`` / ``create_time`` (epoch ms), ``life_status``, ``lock_status``
  (``"0"`` in the documented query answers, ``"1"`` once locked), ``record_type``,
  ``version``; custom fields ``field_<name>__c``; ``describe`` as
  ``data.describe.fields.<api_name>.{type, label, options:[{label, value}]}``; field types
  ``select_one``, ``select_many``, ``number``, ``true_or_false``, ``date``, ``text``,
  ``long_text``; ``MarketingEventObj`` (市场活动) and ``CampaignMembersObj`` (活动成员) exist.
* our best reading (UNVERIFIED in the docs): the field names of ``CampaignMembersObj``
  (``marketing_event_id``, ``account_id``), and the follow-up object: the official object
  list has no generic Task object, so the tenant holds a custom object
  ``object_followup__c``, as the reference recommends; crmtier's dedupe keys live in a custom
  ``field_crmtier_key__c`` on both.

The customer object's custom fields are derived from the shipped default mapping, so the
sandbox and ``connectors/fxiaoke/default_mapping.toml`` cannot drift apart; the write-back
fields are typed from the outputs' declaration (``tiering_core/outputs.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, get_origin

from connectors.fxiaoke.households import (
    CONTACT,
    HOUSEHOLD_FIELD,
    MEMBER_FIELD,
    ROLE_FIELD,
    ROLES,
)
from connectors.fxiaoke.mapping import FIELD_TYPES
from connectors.mapping import CANONICAL_TYPES, DefaultMapping
from connectors.sandbox.generator import (
    HIGH_RISK_COUNTRIES,
    ORDINARY_COUNTRIES,
    PRODUCTS,
    TEXT_IMPORTED_INPUTS,
)
from connectors.sandbox.optional import writeback_targets
from tiering_core.models import CUSTOMER_KINDS, LEVELS, LOAN_CLASSES
from tiering_core.outputs import output_type

ACCOUNT = "AccountObj"
FOLLOWUP = "object_followup__c"
CAMPAIGN_MEMBER = "CampaignMembersObj"
MARKETING_EVENT = "MarketingEventObj"
KEY_FIELD = "field_crmtier_key__c"

#: Options of the input select fields (by canonical path) and of the follow-up priority.
_OPTIONS: dict[str, tuple[str, ...]] = {
    "kind": CUSTOMER_KINDS,
    "credit.loan_class": LOAN_CLASSES,
    "aml.industry_risk": LEVELS,
    "activity.products_held": PRODUCTS,
    "aml.high_risk_countries": (*HIGH_RISK_COUNTRIES, *ORDINARY_COUNTRIES),
    "priority": ("high", "normal", "low"),
}


@dataclass(frozen=True)
class FieldSpec:
    type: str
    label: str
    options: tuple[str, ...] = ()
    #: ``is_required`` of the describe ("Object Description Query": every field carries
    #: it); an admin can make a custom field required, and a create without it is refused
    required: bool = False
    #: ``time_zone`` of a date or time field's describe ("GMT+8" in the documented example)
    time_zone: str = "GMT+8"

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "label": self.label}
        out["is_required"] = self.required
        if self.type in ("date", "date_time"):
            out["time_zone"] = self.time_zone
        if self.options:
            out["options"] = [{"label": v, "value": v, "child_options": []} for v in self.options]
        return out


@dataclass(frozen=True)
class ObjectSpec:
    api_name: str
    label: str
    fields: Mapping[str, FieldSpec] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {
            "api_name": self.api_name,
            "display_name": self.label,
            "fields": {name: spec.describe() for name, spec in self.fields.items()},
        }


_SYSTEM: dict[str, FieldSpec] = {
    "_id": FieldSpec("text", "ID"),
    "name": FieldSpec("text", "名称"),
    "owner": FieldSpec("employee", "负责人"),
    "create_time": FieldSpec("date_time", "创建时间"),
    "last_modified_time": FieldSpec("date_time", "最后修改时间"),
    "life_status": FieldSpec(
        "select_one",
        "生命状态",
        ("normal", "invalid", "ineffective", "under_review", "in_change"),
    ),
    "lock_status": FieldSpec("select_one", "锁定状态", ("0", "1")),
    "record_type": FieldSpec("record_type", "业务类型"),
    "version": FieldSpec("number", "版本"),
}


def _input_type(path: str) -> FieldSpec:
    if path in TEXT_IMPORTED_INPUTS:  # how a tenant holds text among numbers
        return FieldSpec("text", path)
    typ = CANONICAL_TYPES[path]
    if path in _OPTIONS:
        many = get_origin(typ) is tuple
        return FieldSpec("select_many" if many else "select_one", path, _OPTIONS[path])
    if typ in (int, float):
        return FieldSpec("number", path)
    if typ is bool:
        return FieldSpec("true_or_false", path)
    if get_origin(typ) is tuple:
        return FieldSpec("select_many", path)
    return FieldSpec("text", path)


def _output_type(output: str) -> FieldSpec:
    typ = output_type(output)
    return FieldSpec(FIELD_TYPES[typ.kind][0], output, typ.values)


def build_objects(default: DefaultMapping) -> dict[str, ObjectSpec]:
    account: dict[str, FieldSpec] = dict(_SYSTEM)
    account.update(
        {
            "tel": FieldSpec("phone_number", "电话"),
            "email": FieldSpec("email", "邮件"),
            "field_national_id__c": FieldSpec("text", "证件号码"),
        }
    )
    for path, crm_field in default.mapping.fields.items():
        account[crm_field] = _input_type(path)
    for output, crm_field in writeback_targets("fxiaoke", default).items():
        account[crm_field] = _output_type(output)
    followup = {
        **_SYSTEM,
        "field_customer__c": FieldSpec("object_reference", "客户"),
        "field_due_date__c": FieldSpec("date", "截止日期"),
        "field_priority__c": FieldSpec("select_one", "优先级", _OPTIONS["priority"]),
        "field_queue__c": FieldSpec("text", "队列"),
        "field_description__c": FieldSpec("long_text", "描述"),
        KEY_FIELD: FieldSpec("text", "crmtier key"),
    }
    member = {
        **_SYSTEM,
        "marketing_event_id": FieldSpec("object_reference", "市场活动"),
        "account_id": FieldSpec("object_reference", "客户"),
        "campaign_members_obj_type": FieldSpec("select_one", "成员类型", ("account",)),
        KEY_FIELD: FieldSpec("text", "crmtier key"),
    }
    event = {**_SYSTEM, "begin_time": FieldSpec("date", "开始日期")}
    contact = {  # household members (connectors/fxiaoke/households.py)
        **_SYSTEM,
        HOUSEHOLD_FIELD: FieldSpec("object_reference", "客户"),
        MEMBER_FIELD: FieldSpec("object_reference", "家庭成员客户"),
        ROLE_FIELD: FieldSpec("select_one", "家庭角色", ROLES),
    }
    return {
        ACCOUNT: ObjectSpec(ACCOUNT, "客户", account),
        FOLLOWUP: ObjectSpec(FOLLOWUP, "跟进任务", followup),
        CAMPAIGN_MEMBER: ObjectSpec(CAMPAIGN_MEMBER, "活动成员", member),
        MARKETING_EVENT: ObjectSpec(MARKETING_EVENT, "市场活动", event),
        CONTACT: ObjectSpec(CONTACT, "联系人", contact),
    }


def missing_required(spec: ObjectSpec, values: Mapping[str, Any]) -> str | None:
    """Why a create of ``values`` would be refused for a required field it leaves empty
    (None when none is). The refusal's code is undocumented: 32000, as for the other
    field errors."""
    for name, fspec in spec.fields.items():
        if fspec.required and values.get(name) in (None, "", []):
            return f"字段 {name} 必填 (field {name} is required on {spec.api_name})"
    return None


#: Fields an API client may not set (system-managed).
READ_ONLY = frozenset(
    {"_id", "create_time", "last_modified_time", "version", "life_status", "lock_status"}
)


def validate(spec: ObjectSpec, values: Mapping[str, Any]) -> str | None:
    """Why FXiaoke would reject these field values (None when it would accept them).

    The real per-field error codes are UNVERIFIED; the sandbox answers 32000 with a message
    naming the field, which is the documented generic parameter error."""
    for name, value in values.items():
        if name == "dataObjectApiName" or value is None:
            continue
        fspec = spec.fields.get(name)
        if fspec is None:
            return f"字段 {name} 不存在 (field {name} does not exist on {spec.api_name})"
        if name in READ_ONLY:
            return f"字段 {name} 不允许修改 (field {name} is read-only)"
        problem = _check_value(fspec, value)
        if problem:
            return f"字段 {name}: {problem}"
    return None


#: Field types whose values FXiaoke's read APIs return as decimal text.
NUMERIC_TEXT = frozenset({"number", "currency"})


def on_the_wire(spec: ObjectSpec, row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored record as FXiaoke's query and get answers carry it: number and currency
    fields as decimal text (``"payment_amount": "1.00"``, ``"probability": "30"``,
    ``"UDCal2__c": "88.00"`` in the answers of "根据条件查询回款对象的列表" and
    "查询单个线索对象详细信息", fxiaoke.apifox.cn/api-12901184 and /api-12970967), dates and
    times as epoch-millisecond numbers, booleans as JSON booleans. A client that only works
    with JSON numbers fails here, as it would on a tenant."""
    out = dict(row)
    for name, value in row.items():
        fspec = spec.fields.get(name)
        if fspec is None or fspec.type not in NUMERIC_TEXT:
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = format(Decimal(str(value)), "f")
    return out


def stored_value(spec: FieldSpec, value: Any) -> Any:
    """``value`` as the tenant's field holds it: a number in a text field as its text. A
    value the field's type cannot hold (text in a number field) is a ValueError: FXiaoke
    returns a number field's value as a number or not at all. Option values a list no
    longer has stay, as records keep an option removed after they used it."""
    if spec.type in ("text", "long_text") and isinstance(value, int | float):
        value = value if isinstance(value, bool) else str(value)
    problem = None if value is None else _check_value(spec, value, listed=False)
    if problem:
        raise ValueError(f"a FXiaoke {spec.type} field cannot hold {value!r}: {problem}")
    return value


def _check_value(spec: FieldSpec, value: Any, *, listed: bool = True) -> str | None:
    kind = spec.type
    if kind == "select_one":
        ok = isinstance(value, str) and (not listed or value in spec.options)
        return None if ok else f"选项值 {value!r} 不存在 (no such option)"
    if kind == "select_many":
        if not isinstance(value, list):
            return "expected a list of option values"
        bad = [v for v in value if listed and spec.options and v not in spec.options]
        return f"选项值 {bad!r} 不存在 (no such option)" if bad else None
    if kind in ("number", "date", "date_time"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "expected a number"
    if kind == "true_or_false":
        return None if isinstance(value, bool) else "expected true or false"
    if kind == "employee":
        return None if isinstance(value, list) else "expected a list of employee ids"
    return None if isinstance(value, str) else "expected text"
