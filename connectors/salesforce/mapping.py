"""Salesforce value translation for write-back fields, in both directions, by output type.

Each output's type is declared once (``tiering_core/outputs.py``); this module says how
Salesforce holds each *type*, never each output, so a new output of a known type needs
nothing here. ``FIELD_TYPES`` names the Salesforce field type of each (as ``describe``
reports it, and as the Metadata API's ``CustomField`` creates it: "Custom Field Types",
Salesforce Help; "CustomField", Metadata API Developer Guide).

The planner compares what it wants to write with what the CRM holds (``CrmRecord.current``)
and writes only differences, so ``from_crm_value(o, encoder(o)(v))`` (what the writer
sends, read back; a ``None`` is sent as it is, clearing the field) must equal the
normalised ``v`` for every output:

* long text (``reasons``): a one-line summary (``CODE text; CODE text``) as is, or a
  sequence of reasons (codes, texts or reason dicts) one per line, ↔ a Long Text Area;
  read back as the stored text. Never cut here: a cut would write less than the audit
  trail records. The config check holds the policy's ``strategy.reasons_max_chars`` to
  the field crmtier creates (``connectors/coverage.py``); text a shorter field cannot
  hold is refused by Salesforce (``STRING_TOO_LONG``), a failed write counted and
  reported like any other;
* date (``next_review``): ``date`` ↔ ``YYYY-MM-DD`` (Salesforce date fields carry no time
  zone);
* number (``value_score``): float ↔ Number field, rounded to the type's scale;
* boolean (``edd_required``): bool ↔ Checkbox;
* picklist and text: their values, as is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from functools import partial
from typing import Any

from tiering_core.outputs import OutputKind, output_type

#: Each output type as a Salesforce field: (``describe`` type, Metadata API type).
FIELD_TYPES: Mapping[OutputKind, tuple[str, str]] = {
    "picklist": ("picklist", "Picklist"),
    "text": ("string", "Text"),
    "long_text": ("textarea", "LongTextArea"),
    "number": ("double", "Number"),
    "date": ("date", "Date"),
    "boolean": ("boolean", "Checkbox"),
}


def _reason_line(item: Any) -> str:
    if isinstance(item, str):  # the usual item: a summary line (and not a Mapping, a slow check)
        return item
    if isinstance(item, Mapping):
        text = item.get("text")
        en = text.get("en") if isinstance(text, Mapping) else getattr(text, "en", None)
        code = item.get("code", "")
        return f"{code}: {en}" if en else str(code)
    code = getattr(item, "code", None)
    if code is not None:
        return f"{code}: {item.text.en}"
    return str(item)


def encoder(output: str) -> Callable[[Any], Any]:
    """How a value of ``output`` is written, by its declared type
    (``tiering_core/outputs.py``). A writer asks once per output and keeps the answer for
    its plans (``writes.PlanWriter``) rather than once per value: a bulk job encodes every
    field of 10,000 updates. Nothing is kept here, so an output declared or changed later
    (a test's, a plugin's) is encoded by what it is now."""
    typ = output_type(output)
    if typ.kind == "long_text":
        return _long_text
    if typ.kind == "date":
        return _date_text
    if typ.kind == "number":
        return partial(_number, typ.scale)
    if typ.kind == "boolean":
        return bool
    return _as_is


def _long_text(value: Any) -> str | None:
    if type(value) is str:  # the usual value: the summary line, as it is
        return value or None
    items = [value] if isinstance(value, str) else list(value)
    return "\n".join(_reason_line(i) for i in items) or None


def _date_text(value: Any) -> str:
    if type(value) is date:  # the usual value
        return value.isoformat()
    return value.date().isoformat() if isinstance(value, datetime) else _as_date(value).isoformat()


def _number(scale: int | None, value: Any) -> float:
    return round(float(value), scale)


def _as_is(value: Any) -> Any:
    return value


def from_crm_value(output: str, raw: Any) -> Any:
    """The CRM's stored value in canonical form (None when empty or unreadable)."""
    return decoder(output)(raw)


def decoder(output: str) -> Callable[[Any], Any]:
    """How a stored value of ``output`` reads back (``from_crm_value``), by its declared
    type, chosen once: a reader asks once a page per write-back field rather than once
    per value (a re-tier reads every field of every record filled)."""
    typ = output_type(output)
    if typ.kind == "long_text":
        return partial(_stored, str)
    if typ.kind == "date":
        return partial(_stored, _as_date)
    if typ.kind == "number":
        return partial(_stored, partial(_number, typ.scale))
    if typ.kind == "boolean":
        return partial(_stored, _checkbox)
    return partial(_stored, _as_is)


def _stored(read: Callable[[Any], Any], raw: Any) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return read(raw)
    except (TypeError, ValueError):
        return None


def _checkbox(raw: Any) -> bool:
    return raw if isinstance(raw, bool) else str(raw).lower() == "true"


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def missing_values(output: str, field: Mapping[str, Any]) -> list[str]:
    """The declared values of a picklist output that the org's restricted picklist
    (``describe``'s ``picklistValues``, active ones) lacks: Salesforce refuses a value a
    restricted picklist does not list (INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST), so each
    is a write that would fail. An unrestricted picklist or another field type takes any
    text, so nothing is missing from it."""
    if field.get("type") != "picklist" or not field.get("restrictedPicklist"):
        return []
    listed = {v.get("value") for v in field.get("picklistValues") or () if v.get("active", True)}
    return [v for v in output_type(output).values if v not in listed]
