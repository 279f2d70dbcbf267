"""Salesforce value translation for write-back fields, in both directions.

The planner compares what it wants to write with what the CRM holds (``CrmRecord.current``)
and writes only differences, so ``from_crm_value(o, to_crm_value(o, v))`` must equal the
normalised ``v`` for every output, or every run would rewrite unchanged customers:

* ``reasons``: the core's one-line summary (``CODE text; CODE text``) as is, or a sequence
  of reasons (codes, texts or reason dicts) one per line, ↔ a long text area; read back as
  the stored text;
* ``next_review``: ``date`` ↔ ``YYYY-MM-DD`` (Salesforce date fields carry no time zone);
* ``value_score``: float ↔ number field, rounded to 2 decimals (the field's scale);
* ``edd_required``: bool ↔ checkbox;
* everything else: text or picklist values, as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

#: A Salesforce long text area holds up to 131,072 characters; keep reasons far below it.
REASONS_MAX_CHARS = 4000


def _reason_line(item: Any) -> str:
    if isinstance(item, Mapping):
        text = item.get("text")
        en = text.get("en") if isinstance(text, Mapping) else getattr(text, "en", None)
        code = item.get("code", "")
        return f"{code}: {en}" if en else str(code)
    code = getattr(item, "code", None)
    if code is not None:
        return f"{code}: {item.text.en}"
    return str(item)


def to_crm_value(output: str, value: Any) -> Any:
    if value is None:
        return None
    if output == "reasons":
        items = [value] if isinstance(value, str) else list(value)
        return "\n".join(_reason_line(i) for i in items)[:REASONS_MAX_CHARS] or None
    if output == "next_review":
        return (
            value.date().isoformat() if isinstance(value, datetime) else _as_date(value).isoformat()
        )
    if output == "value_score":
        return round(float(value), 2)
    if output == "edd_required":
        return bool(value)
    return value


def from_crm_value(output: str, raw: Any) -> Any:
    """The CRM's stored value in canonical form (None when empty or unreadable)."""
    if raw is None or raw == "":
        return None
    try:
        if output == "reasons":
            return str(raw)
        if output == "next_review":
            return _as_date(raw)
        if output == "value_score":
            return round(float(raw), 2)
        if output == "edd_required":
            return raw if isinstance(raw, bool) else str(raw).lower() == "true"
    except (TypeError, ValueError):
        return None
    return raw


def normalise(output: str, value: Any) -> Any:
    """What ``value`` looks like after a round trip through the CRM."""
    return from_crm_value(output, to_crm_value(output, value))


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
