"""A write-back field's value as crmtier compares it with the CRM's and as it stores and
sends it.

A CRM returns what crmtier wrote in its own form (a number as text, a date as ISO text, a
list joined by ``;``), so the planner writes a field only when ``same_value`` says the CRM
does not show it yet (``changed_fields``: the only fields written, ``sync.planner``), and a
settled record is told by the same test (``sync.planning.PagePlanner.settled``). A
decision's fields are stored and sent as ``jsonable`` makes them. Pure functions, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

#: characters a number's text can start with besides digits (float() also takes
#: "inf"/"nan", which start with a letter and stay text, as before)
_NUMBER_START = frozenset("0123456789+-.")


def normalize(value: Any) -> Any:
    """One comparable form for a value as the engine produces it and as a CRM returns it:
    empty means missing, numbers compare as rounded floats, dates as ISO text, lists as
    tuples (a CRM may return a multi-value text joined by ``;`` or new lines)."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return None if math.isnan(value) else round(float(value), 6)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return tuple(normalize(v) for v in value)
    if isinstance(value, str):
        text = value.strip()
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if not text or not (text[0] in _NUMBER_START or text[0].isdigit()):
            return text  # most texts: no float() attempt and its exception
        try:
            return round(float(text), 6)
        except ValueError:
            return text
    return value


def same_value(desired: Any, current: Any) -> bool:
    # Two short cuts for the common cases (planning compares a dozen fields a customer):
    # equal texts normalise alike, and a CRM field with no value equals only an empty one.
    if desired.__class__ is str and desired == current:
        return True
    if current is None:
        # a text is empty only when it is "" (blank text normalises to itself, not None)
        return desired == "" if desired.__class__ is str else normalize(desired) is None
    left, right = normalize(desired), normalize(current)
    if left == right:
        return True
    # A list written as one text field comes back as that text.
    if isinstance(left, tuple) and isinstance(right, str):
        return any(_split(right, sep) == left for sep in (";", "\n", "; ", ","))
    if isinstance(right, tuple) and isinstance(left, str):
        return same_value(right, left)
    return False


def _split(text: str, sep: str) -> tuple[Any, ...]:
    return tuple(normalize(part) for part in text.split(sep) if part.strip())


def changed_fields(desired: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The desired field values the CRM does not show yet: the only fields written. A text
    is settled here as ``same_value`` would settle it when the CRM shows that very text or
    nothing (a first sync's empty fields, an echo of our own write): most of the dozen
    fields a customer, each without a call."""
    out = {}
    for name, value in desired.items():
        now = current.get(name)
        if value.__class__ is str and (now is None or now == value):
            if now is None and value:  # a text where the CRM shows none
                out[name] = value
        elif not same_value(value, now):
            out[name] = value
    return out


#: value classes that are stored and sent as they are (most field values are texts)
_PLAIN = frozenset({str, int, float, bool, type(None)})


def jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    """Field values as stored and sent: dates as ISO text, tuples as lists. Called for
    every customer written: a plain value is looked at by its class only, since
    ``hasattr`` on a text raises and catches an ``AttributeError`` inside."""
    out = {}
    for key, value in values.items():
        if value.__class__ not in _PLAIN:
            if hasattr(value, "isoformat"):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
        out[key] = value
    return out
