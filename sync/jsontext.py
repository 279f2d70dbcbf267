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

from collections.abc import Iterable, Iterator
from typing import Any

import pydantic_core


def dumps(value: Any) -> str:
    """``value`` as compact JSON text."""
    return pydantic_core.to_json(value).decode("utf-8")


def dumps_each(values: Iterable[Any]) -> Iterator[str]:
    """``dumps`` of each value, the two C calls mapped in C: a column of values written in
    bulk (``sync.bulkwrite``) without a Python call a value (a fifth of ``dumps``'s cost)."""
    return map(bytes.decode, map(pydantic_core.to_json, values))


def loads(text: str | bytes) -> Any:
    """The value of JSON ``text``."""
    return pydantic_core.from_json(text)
