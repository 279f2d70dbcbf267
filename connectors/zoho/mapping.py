"""Zoho-specific value translation between Zoho rows and crmtier's canonical values.

Reading: a Zoho row (plain values from ``client.py``) becomes a ``CrmRecord``: the mapped
fields through ``profile_from_crm``, the record ``Owner`` as the relationship manager unless
it is the configured "unassigned" user, ``Modified_Time`` as the modstamp, and the present
write-back values as ``current`` (picklist labels translated back to canonical values).

Writing: a canonical output value becomes what its Zoho field accepts, judged by the field
metadata. A picklist value the field does not list is a ``ConfigError`` raised *before any
write call*, naming the output, the Zoho field, the value and what the field allows: zcrmsdk
would refuse it client-side anyway, and a half-applied batch is worse than none. A text
longer than the field's metadata ``length`` is ``TextTooLong``, refused before the write
call too, but for its record only (named by its length, never its text): how long a text
is depends on the customer, so one long reasons text must not stop every other customer's
write; it was once cut to fit, which wrote less than the audit trail records as decided.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from connectors.contract import CrmRecord, TaskUpsert
from connectors.errors import ConfigError
from connectors.mapping import FieldMapping, WritebackConfig, profile_from_crm
from connectors.task_text import fitted
from tiering_core import models
from tiering_core.outputs import OUTPUTS, OutputKind

#: Every value the engine can write to each picklist-typed output, from the outputs'
#: declaration (doctor checks the org's picklists hold them all).
OUTPUT_VALUES: dict[str, tuple[str, ...]] = {
    o.name: o.type.values for o in OUTPUTS if o.type.kind == "picklist"
}
#: Each declared output type as a Zoho field ``data_type`` (Fields Metadata API,
#: ``/settings/fields``): what the sandbox creates; ``zoho_value`` encodes a value by the
#: org's actual field type, so any of these (and the other text and number types) works.
FIELD_TYPES: Mapping[OutputKind, str] = {
    "picklist": "picklist",
    "text": "text",
    "long_text": "textarea",
    "number": "double",
    "date": "date",
    "boolean": "boolean",
}
#: The key that bounds each text output, for the refusal of a text its field cannot hold.
_SHORTEN = {
    "reasons": "the policy's strategy.reasons_max_chars",
    "explanation": "[writeback] explanation_max_chars",
}
TASK_PRIORITY = {"high": "High", "normal": "Normal", "low": "Low"}
MODSTAMP_FIELD = "Modified_Time"
OWNER_FIELD = "Owner"
NUMERIC = ("double", "currency", "integer", "decimal", "percent", "bigint")
#: The Zoho field types a text is written to whole, within the field's ``length``.
TEXT_TYPES = ("text", "textarea", "email", "phone", "website")


class TextTooLong(ValueError):
    """A text longer than its Zoho field holds: one record's write refused before the
    call (``writes._update_rows`` answers it failed, not retried), not the whole plan's."""


@dataclass(frozen=True)
class FieldInfo:
    """A Zoho field as its metadata describes it (``/settings/fields``)."""

    api_name: str
    data_type: str
    picklist: tuple[str, ...] = ()  # actual values, without "-None-"
    read_only: bool = False
    unique: bool = False
    length: int | None = None


def read_fields(mapping: FieldMapping, writeback: WritebackConfig) -> list[str]:
    """What a read requests: mapped inputs, write-back fields, owner and modstamp only."""
    wanted = set(mapping.crm_fields()) | set(writeback.fields.values())
    return sorted(wanted | {OWNER_FIELD, MODSTAMP_FIELD})


#: The cap on a read's ``fields`` that Zoho documents from API v5 on: "you can include a
#: maximum of 50 field API names in this parameter" (Zoho CRM API v5/v7 "Get Records",
#: get-records.html). The v2 API crmtier speaks documents ``fields`` as optional with no cap
#: ("To retrieve specific field values", v2 "Get Records API"), so reads always name their
#: fields; ``crmtier doctor`` makes one such read and names this cap if the org refuses it.
LATER_VERSIONS_FIELDS_CAP = 50


def fields_param(fields: Sequence[str]) -> str:
    """The ``fields`` value of every Zoho read: exactly the names asked for, never left out
    (a read without it answers every field, names and IDs included)."""
    return ",".join(fields)


def only_fields(row: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """``row`` cut to the requested fields and the id: a defence in depth, so a server that
    answers more than was named (none should) passes nothing further."""
    keep = set(fields)
    return {k: v for k, v in row.items() if k in keep or k == "id"}


def record_from_row(
    row: Mapping[str, Any],
    mapping: FieldMapping,
    writeback: WritebackConfig,
    *,
    unassigned_owner: str = "",
    labels: Mapping[str, Mapping[str, str]] | None = None,
) -> CrmRecord:
    modstamp = row[MODSTAMP_FIELD]
    if not isinstance(modstamp, datetime):
        raise ValueError(f"record {row.get('id')}: Modified_Time missing")
    owner = (row.get(OWNER_FIELD) or {}).get("id")
    profile, issues = profile_from_crm(
        str(row["id"]),
        row,
        mapping,
        modified_at=modstamp,
        owner_id=None if owner in (None, "", unassigned_owner) else str(owner),
    )
    reverse = {out: {crm: canon for canon, crm in m.items()} for out, m in (labels or {}).items()}
    current = {}
    for output, api_name in writeback.fields.items():
        value = row.get(api_name)
        current[output] = reverse.get(output, {}).get(value, value) if value is not None else None
    return CrmRecord(profile=profile, modstamp=modstamp, current=current, dq_issues=issues)


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "\n".join(_text(v) for v in value)
    if isinstance(value, models.Reason):
        return f"{value.code}: {value.text.en}"
    if isinstance(value, Mapping) and "code" in value:
        text = value.get("text") or {}
        return f"{value['code']}: {text.get('en', '')}".rstrip(": ")
    return str(value)


def zoho_value(
    output: str,
    value: Any,
    field: FieldInfo,
    *,
    module: str,
    labels: Mapping[str, str] | None = None,
) -> Any:
    """``value`` as the Zoho field ``field`` takes it; ConfigError if it cannot, and
    ``TextTooLong`` for a text longer than the field (this record's, not every record's)."""
    if value is None:
        return None
    kind = field.data_type
    where = f"writeback.fields.{output} -> Zoho {module}.{field.api_name}"
    if kind == "picklist":
        text = (labels or {}).get(str(value), str(value))
        if field.picklist and text not in field.picklist:
            raise ConfigError(
                f"{where}: value {text!r} is not in the picklist "
                f"({', '.join(field.picklist)}); add it in Zoho or map it in crm.picklist_labels"
            )
        return text
    try:
        if kind in NUMERIC:
            return int(value) if kind in ("integer", "bigint") else float(value)
        if kind == "boolean":
            if not isinstance(value, bool):
                raise TypeError("expected true/false")
            return value
        if kind == "date":
            return value if isinstance(value, date) else date.fromisoformat(str(value))
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{where}: cannot write {type(value).__name__} to a {kind} field ({exc})"
        ) from None
    if kind in TEXT_TYPES:
        text = _text(value)
        if field.length and len(text) > field.length:
            raise TextTooLong(
                f"{where}: a text of {len(text)} characters does not fit the field (at most "
                f"{field.length} characters); lengthen {field.api_name} in Zoho, or shorten "
                f"what {output} holds ({_SHORTEN.get(output, 'its text')})"
            )
        return text
    raise ConfigError(f"{where}: crmtier cannot write to a {kind} field")


#: How much text each Tasks field crmtier writes holds: ``Subject`` is a single-line text
#: (at most 255 characters) and ``Description`` a multi-line one, 2,000 characters in its
#: small form and 32,000 in its large (Zoho CRM Developer Community, "Kaizen #1 - Fields in
#: CRM"). Which form an org's Tasks use is not documented, so the small one: a longer text
#: is cut, with a warning (``connectors.task_text``), rather than the task refused whole
#: and never reaching its owner.
TASK_TEXT_LIMITS = {"subject": ("Subject", 255), "description": ("Description", 2_000)}


def task_row(
    upsert: TaskUpsert,
    *,
    module: str,
    key_field: str,
    owner_id: str | None,
) -> dict[str, Any]:
    """A Tasks row keyed by the task's dedupe key, for Insert Records only (a task the CRM
    holds is not written: ``writes._write_tasks``). Status is left out: a new task takes
    the org's default."""
    task = upsert.task
    row: dict[str, Any] = {
        "Subject": fitted(task.subject, TASK_TEXT_LIMITS["subject"][1]),
        "Due_Date": task.due,
        "Priority": TASK_PRIORITY[task.priority],
        "Description": fitted(task.description, TASK_TEXT_LIMITS["description"][1]),
        key_field: task.dedupe_key,
    }
    related = {"id": upsert.customer_id}
    if module == "Contacts":
        row["Who_Id"] = related
    else:
        row["What_Id"] = related
        row["$se_module"] = module
    if owner_id:
        row["Owner"] = {"id": owner_id}
    return row


def missing_values(field: FieldInfo, wanted: Sequence[str]) -> list[str]:
    return [v for v in wanted if field.picklist and v not in field.picklist]
