"""JSON made column by column: a batch's output lines as columns of byte fragments.

pydantic-core's serializer costs per value, not per byte (docs/operations.md, "``crmtier
tier``, where the time goes"), and most values of an output line repeat across a batch:
a tier, a level, a reason with its texts, a set-field action. So each distinct value is
serialised once a batch (by pydantic-core itself, so the bytes are the ones it writes for
the whole structure) and a customer's line is its fragments joined: the steps below are
C-level ``map``s over a column, with a Python step per distinct value only.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from itertools import accumulate, chain, repeat
from typing import Any, TypeVar

import pydantic_core

#: What ``Fragments.lines`` joins: a fragment per row, or one for every row.
Column = Sequence[bytes] | bytes

to_json: Callable[[Any], bytes] = pydantic_core.to_json
_Made = TypeVar("_Made")


class Fragments:
    """A batch's lines as columns laid side by side, joined row by row at the end;
    neighbouring constants are merged as they are added."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._columns: list[Column] = []

    def add(self, column: Column) -> None:
        """The next fragment of every row (``bytes``: the same for every row)."""
        columns = self._columns
        if isinstance(column, bytes):
            if columns and isinstance(columns[-1], bytes):
                columns[-1] += column
            elif column:
                columns.append(column)
        else:
            columns.append(column)

    def lines(self) -> bytes:
        """Every row's fragments joined, rows one after the other."""
        parts = [repeat(c, self.n) if isinstance(c, bytes) else c for c in self._columns]
        return b"".join(map(b"".join, zip(*parts, strict=True)))


def keyed(keys: Sequence[Hashable], render: Callable[[Any], _Made]) -> list[_Made]:
    """Each row's ``render(key)``, called once per distinct key and shared by the rows
    that have it (a fragment here; a reason dict in ``row_reasons``)."""
    distinct: dict[Hashable, Any] = dict.fromkeys(keys)
    for key in distinct:
        distinct[key] = render(key)
    return list(map(distinct.__getitem__, keys))


def column(values: Sequence[Hashable]) -> list[bytes]:
    """Each row's JSON of its value, serialised once per distinct value where values
    repeat (a tier, a level, a date), else value by value (a text of the customer's own).
    Not for floats: a dict key does not tell 0.0 from -0.0, nor 1 from 1.0."""
    if len(set(values)) * 2 <= len(values):
        return keyed(values, to_json)
    return each(values)


def each(values: Iterable[Any]) -> list[bytes]:
    """Every value's JSON, one by one (for a column whose values rarely repeat)."""
    return list(map(to_json, values))


def arrays(rows: Sequence[Sequence[Any]]) -> list[bytes]:
    """Each row's list of objects as JSON array items (without the brackets), every
    object serialised once, the rows' items cut out of one flat column."""
    return joined(each(chain.from_iterable(rows)), list(accumulate(map(len, rows))))


def joined(items: list[bytes], ends: list[int]) -> list[bytes]:
    """Each row's ``items`` (a flat column, rows one after the other; ``ends``: where
    each row's end) joined as JSON array items."""
    cuts = map(slice, chain((0,), ends), ends)
    return list(map(b",".join, map(items.__getitem__, cuts)))
