"""How a configuration problem reads: one sentence naming the table and key, with a
"did you mean" where the key is a near miss.

A typo in a key (``valu_tier``) must fail with the key it was probably meant to be, so an
admin fixes it in one step instead of comparing lists by eye; and pydantic's own wording
("Extra inputs are not permitted", "Value error, ...") is turned into plain sentences.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic_core import ErrorDetails


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``"; did you mean X?"`` for the closest of ``known``, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def where(loc: Sequence[Any]) -> str:
    """``("writeback", "fields", "x")`` -> ``"[writeback.fields] x"``: the TOML table, then
    the key, as the admin sees them in the file."""
    parts = [str(p) for p in loc]
    if len(parts) < 2:
        return f"[{parts[0]}]" if parts else "file"
    return f"[{'.'.join(parts[:-1])}] {parts[-1]}"


def sentence(err: ErrorDetails, known: Iterable[str] = ()) -> str:
    """A pydantic error as the problem in words; ``known`` are the keys the table accepts,
    for a did-you-mean on an unknown one."""
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        key = str(err["loc"][-1]) if err["loc"] else ""
        return "unknown key" + did_you_mean(key, known)
    if kind == "missing":
        return "required"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if msg.startswith("Input should be"):
        return "must be" + msg.removeprefix("Input should be")
    return msg[:1].lower() + msg[1:]
