"""FXiaoke value translation: raw ``dataList`` records ↔ canonical crmtier values.

What is FXiaoke-specific (FXiaoke Open API v2 docs, developer.fxiaoke.com/openapi_v2):

* time fields (``last_modified_time``, ``create_time``) are epoch **milliseconds**;
* ``date`` fields are epoch milliseconds too, of midnight in the tenant's time zone
  (China Standard Time, UTC+8, no DST); crmtier writes ``next_review`` that way and reads it
  back as a ``date``;
* ``owner`` is a list of employee ids (empty for a customer in the public pool, 公海);
* ``select_one`` values are option *values* (crmtier's tier codes are used as the values of
  the tier picklists), ``select_many`` values are lists;
* long text holds the reasons, one per line.

Values are encoded by their output's declared type (``tiering_core/outputs.py``), never by
output name: ``FIELD_TYPES`` says which FXiaoke field types hold each type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from connectors.contract import CrmRecord
from connectors.mapping import FieldMapping, WritebackConfig, profile_from_crm
from tiering_core.models import DQIssue
from tiering_core.outputs import OutputKind, output_type

#: FXiaoke tenants in mainland China: date fields are midnight Beijing time (the documented
#: answers' dates, e.g. ``"payment_time": 1517328000000``, are 00:00 UTC+8).
TENANT_TZ = timezone(timedelta(hours=8), "CST")
#: How a describe's ``time_zone`` names TENANT_TZ ("GMT+8" in "Object Description Query").
TENANT_ZONE_NAMES = frozenset({"GMT+8", "GMT+08:00", "UTC+8", "UTC+08:00", "Asia/Shanghai"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Fields the connector reads on every customer besides the mapped ones.
SYSTEM_FIELDS = ("_id", "owner", "last_modified_time")
#: The FXiaoke field types (``describe``'s ``type``) that can hold each output type; the
#: first is the one a tenant's admin is asked to create (and the sandbox has).
FIELD_TYPES: Mapping[OutputKind, tuple[str, ...]] = {
    "picklist": ("select_one", "text"),
    "text": ("text", "select_one"),
    "long_text": ("long_text", "text"),
    "number": ("number", "currency"),
    "date": ("date",),
    "boolean": ("true_or_false",),
}


def to_epoch_ms(ts: datetime) -> int:
    return int((ts - _EPOCH) // timedelta(milliseconds=1))


def from_epoch_ms(ms: int | float) -> datetime:
    return _EPOCH + timedelta(milliseconds=int(ms))


def date_to_crm(day: date) -> int:
    return to_epoch_ms(datetime.combine(day, time(0), tzinfo=TENANT_TZ))


def date_from_crm(ms: int | float) -> date:
    return from_epoch_ms(ms).astimezone(TENANT_TZ).date()


def reasons_text(value: Any) -> str:
    """Reasons as FXiaoke long text: a string as is, a sequence one item per line (an item
    with a ``code`` attribute or key is written as that code)."""
    if isinstance(value, str):
        return value
    lines = []
    for item in value:
        code = item.get("code") if isinstance(item, Mapping) else getattr(item, "code", None)
        lines.append(str(code if code is not None else item))
    return "\n".join(lines)


def value_to_crm(output: str, value: Any) -> Any:
    """A canonical write-back value as FXiaoke stores it in the mapped field."""
    if value is None:
        return None
    kind = output_type(output).kind
    if kind == "date":
        day = date.fromisoformat(value) if isinstance(value, str) else value
        return date_to_crm(day)
    if kind == "long_text":
        return reasons_text(value)
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def value_from_crm(output: str, raw: Any) -> Any:
    """The CRM's present write-back value in canonical form, for the planner to compare."""
    if raw is None or raw == "":
        return None
    kind = output_type(output).kind
    if kind == "date" and isinstance(raw, int | float) and not isinstance(raw, bool):
        return date_from_crm(raw)
    if kind == "number" and isinstance(raw, int | float | str):
        try:
            return float(raw)
        except ValueError:
            return raw
    return raw


def owner_of(raw: Mapping[str, Any]) -> str | None:
    owner = raw.get("owner")
    if isinstance(owner, Sequence) and not isinstance(owner, str):
        return str(owner[0]) if owner else None
    return str(owner) if owner not in (None, "") else None


def projection(mapping: FieldMapping, writeback: WritebackConfig) -> list[str]:
    """Exactly the fields crmtier needs (data minimisation): system fields, mapped inputs,
    and the write-back fields whose present values the planner compares against."""
    wanted = set(SYSTEM_FIELDS) | set(mapping.crm_fields()) | set(writeback.fields.values())
    return sorted(wanted)


def record_from_raw(
    raw: Mapping[str, Any], mapping: FieldMapping, writeback: WritebackConfig
) -> CrmRecord:
    """One ``dataList`` entry as a ``CrmRecord``; malformed values become DQ issues."""
    crm_id = str(raw["_id"])
    issues: list[DQIssue] = []
    stamp = raw.get("last_modified_time")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        modstamp = from_epoch_ms(stamp)
    else:
        modstamp = _EPOCH
        issues.append(
            DQIssue(
                code="DQ_BAD_TYPE",
                field="modified_at",
                problem="last_modified_time: expected epoch milliseconds",
            )
        )
    profile, mapped_issues = profile_from_crm(
        crm_id, raw, mapping, modified_at=modstamp, owner_id=owner_of(raw)
    )
    current = {
        output: value_from_crm(output, raw.get(field))
        for output, field in writeback.fields.items()
        if field in raw
    }
    return CrmRecord(
        profile=profile,
        modstamp=modstamp,
        current=current,
        dq_issues=(*issues, *mapped_issues),
    )


def missing_options(output: str, field: Mapping[str, Any]) -> list[str]:
    """The declared values of a picklist output that a ``select_one`` field's ``options``
    lack: FXiaoke refuses an option value the field does not have, so each is a write
    that would fail. A text field takes any value."""
    if field.get("type") != "select_one":
        return []
    listed = {o.get("value") for o in field.get("options") or () if isinstance(o, Mapping)}
    return [v for v in output_type(output).values if v not in listed]
