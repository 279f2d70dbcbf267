"""JSON text of the state store's values, through pydantic-core's codec.

A sync writes several JSON values per customer (the pending decision, the outbox payload,
the committed field values) and reads them back on recovery; with the ``json`` module that
was about a tenth of a run's CPU. pydantic-core, which pydantic already brings, reads and
writes the same JSON two to three times faster: compact separators, text kept as UTF-8,
NaN and the infinities written as the ``json`` module writes them. The audit chain keeps
``json.dumps`` for its canonical form (``sync.audit.row_hash``): stored hashes depend on
that exact text.
"""

from __future__ import annotations

from typing import Any

import pydantic_core


def dumps(value: Any) -> str:
    """``value`` as compact JSON text."""
    return pydantic_core.to_json(value).decode("utf-8")


def loads(text: str | bytes) -> Any:
    """The value of JSON ``text``."""
    return pydantic_core.from_json(text)


def text_key(value: Any) -> tuple[Any, ...] | None:
    """A hashable key that two values share only when they are written as the same JSON
    text (by this module or by the ``json`` module alike), or None for a value that has no
    cheap one. Texts, ``None``, lists of texts and dicts of texts to texts qualify: what
    a page's tier blocks and reason codes are, a few distinct values over thousands of
    rows, so an encoder may encode each once. Anything holding numbers or booleans is
    left out: ``1 == 1.0 == True`` in Python, not in JSON."""
    kind = value.__class__
    if kind is str or value is None:
        return (kind, value)
    if kind is dict:
        if all(k.__class__ is str and v.__class__ is str for k, v in value.items()):
            return (dict, *value.items())
        return None
    if kind is list and all(v.__class__ is str for v in value):
        return (list, *value)
    return None
