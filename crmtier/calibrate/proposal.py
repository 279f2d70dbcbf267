"""The proposed policy as a file: the current policy file with the calibrated keys replaced.

The output is an ordinary policy file (merged over the built-in default like any other),
so ``crmtier policy validate`` checks it and ``crmtier simulate --policy`` runs it. It
starts from the bank's current policy file, not from the default, so that every key the
bank set and calibration does not touch stays as the bank set it. A header comment says
it is a proposal for review; crmtier never reads it unless a person points a config at it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from connectors.mapping import set_path

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")  # whole key: fullmatch (``$`` allows a final "\n")
_CHAR = {'"': '\\"', "\\": "\\\\"}  # TOML basic strings escape these two ...


def proposed_document(current: Mapping[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``current`` (the parsed current policy file, ``{}`` for the default) with each dotted
    key of ``overrides`` set."""
    doc = copy.deepcopy(dict(current))
    for path, value in overrides.items():
        set_path(doc, path, value)
    return doc


def to_toml(doc: Mapping[str, Any], header: list[str]) -> str:
    """TOML text of a policy tree (tables, strings, numbers, booleans, lists of those)."""
    lines = [f"# {line}".rstrip() for line in header]
    _table(doc, [], lines)
    return "\n".join(lines) + "\n"


def _table(table: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, Mapping)}
    tables = {k: v for k, v in table.items() if isinstance(v, Mapping)}
    if path and (scalars or not tables):
        lines += ["", f"[{'.'.join(_key(p) for p in path)}]"]
    lines += [f"{_key(k)} = {_value(v)}" for k, v in scalars.items()]
    for key, sub in tables.items():
        _table(sub, [*path, key], lines)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _value(key)


def _escaped(c: str) -> str:
    """... and control characters (TOML 1.0, "Basic strings"); the rest is written as is."""
    return f"\\u{ord(c):04X}" if ord(c) < 0x20 or ord(c) == 0x7F else c


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + "".join(_CHAR.get(c) or _escaped(c) for c in v) + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise ValueError(f"cannot write a {type(v).__name__} to a policy file")
