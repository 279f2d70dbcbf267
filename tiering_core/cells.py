"""Customer records as validated cells, one list per canonical field: no model per record.

``CustomerProfile`` (models.py) stays the one definition of what a readable record is; this
module checks a batch against it field by field instead of record by record. For each
canonical field it takes the column of cells of the whole batch and accepts it in one
step when every cell already has the plain type the model would keep (a JSON number where
a number belongs, ``true``/``false`` where a flag does, text within the length limit);
any other column (CSV text, dates, a float where an integer belongs) is validated by
pydantic-core as one list of the field's own type, so a cell means exactly what it means
in the model. Rows that fail anywhere are handed back for the caller to validate as a
whole record with the model, which gives the one-line reasons per field that users see;
the rest of the batch proceeds.

``Cells`` is policy-free; ``Columns.from_cells`` lays it out for the rules.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from itertools import chain, repeat
from operator import is_not, itemgetter
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from tiering_core.models import TEXT_MAX, CustomerProfile, Integer, Number


@dataclass(frozen=True, slots=True)
class Field:
    """One canonical leaf field: its dotted ``path``, the ``block`` holding it (None at the
    top level), its attribute name and how a column of its cells is checked."""

    path: str
    block: str | None
    attr: str
    check: Callable[[list[Any]], bool]
    adapter: TypeAdapter[list[Any]]
    required: bool  # not optional: a missing cell is refused, and a placeholder is text


def _optional(annotation: Any) -> Any:
    """``X`` of ``X | None`` (anything else unchanged)."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


NONE = type(None)


def _typed(*allowed: type) -> Callable[[list[Any]], bool]:
    kinds = frozenset((*allowed, NONE))
    return lambda cells: set(map(type, cells)) <= kinds


# The checks below iterate in C (map, filter, min, fsum): a Python-level pass per column
# cost about as much as parsing the JSON (bench/core.py, ingest).
_LIMIT = 2**53  # integers beyond it are left to the model (a float64 column loses them)
_present = partial(filter, partial(is_not, None))


def _texts(cells: list[Any]) -> bool:
    if not set(map(type, cells)) <= {str, NONE}:
        return False
    return max(map(len, filter(None, cells)), default=0) <= TEXT_MAX


def _integers(cells: list[Any]) -> bool:
    kinds = set(map(type, cells))
    if not kinds <= {int, NONE}:
        return False
    present = list(_present(cells)) if NONE in kinds else cells
    return not present or (min(present) >= -_LIMIT and max(present) <= _LIMIT)


def _numbers(cells: list[Any]) -> bool:
    """JSON numbers: a finite float, or an integer within ±2**53, is certainly a number
    the model keeps (a literal beyond float range parses as infinity: left to the model)."""
    kinds = set(map(type, cells))
    if not kinds <= {int, float, NONE}:
        return False
    present = list(_present(cells)) if NONE in kinds else cells
    if int in kinds and not (min(present) >= -_LIMIT and max(present) <= _LIMIT):
        ints = [c for c in cells if type(c) is int]  # a float that large is no matter
        if not (min(ints) >= -_LIMIT and max(ints) <= _LIMIT):
            return False
    try:  # an infinity or NaN makes the exact sum so; so can a huge but finite one
        return math.isfinite(math.fsum(present))
    except OverflowError:
        return False


def _lists(cells: list[Any]) -> bool:
    if not set(map(type, cells)) <= {list, tuple, NONE}:
        return False
    items = list(chain.from_iterable(filter(None, cells)))
    return set(map(type, items)) <= {str} and max(map(len, items), default=0) <= TEXT_MAX


def _never(cells: list[Any]) -> bool:
    """Dates and datetimes: text to parse, always left to pydantic-core."""
    return cells.count(None) == len(cells)


def _check(annotation: Any, metadata: list[Any]) -> Callable[[list[Any]], bool]:
    """The fast check of a field's column: a field that is not optional refuses a missing
    cell, and a minimum length (the id's) is checked too."""
    typed = _check_type(annotation)
    if _optional(annotation) is not annotation:
        return typed  # optional fields have no minimum length
    shortest = max((getattr(m, "min_length", 0) for m in metadata), default=0)

    def present(cells: list[Any]) -> bool:
        if None in cells or not typed(cells):
            return False
        return not shortest or min(map(len, cells), default=shortest) >= shortest

    return present


def _check_type(annotation: Any) -> Callable[[list[Any]], bool]:
    inner = _optional(annotation)
    if inner == _optional(Number):
        return _numbers
    if inner == _optional(Integer):
        return _integers
    if inner is float:
        return _typed(int, float)
    if inner is bool:
        return _typed(bool)
    if inner is str:
        return _texts
    if get_origin(inner) is tuple:
        return _lists
    if inner in (date, datetime):
        return _never
    raise TypeError(f"no column check for {annotation!r}")  # a new field type: add one


_CONFIG = ConfigDict(str_max_length=TEXT_MAX, allow_inf_nan=False)


def _fields() -> tuple[tuple[Field, ...], dict[str, frozenset[str]]]:
    """Every leaf field of ``CustomerProfile`` and the keys each block allows."""
    fields: list[Field] = []
    blocks: dict[str, frozenset[str]] = {}
    for name, info in CustomerProfile.model_fields.items():
        inner = _optional(info.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            blocks[name] = frozenset(inner.model_fields)
            leaves: list[tuple[str | None, str, FieldInfo]] = [
                (name, attr, sub) for attr, sub in inner.model_fields.items()
            ]
        else:
            leaves = [(None, name, info)]
        for block, attr, leaf in leaves:
            annotation = Annotated[leaf.annotation, *leaf.metadata] if leaf.metadata else None
            typ = annotation if annotation is not None else leaf.annotation
            fields.append(
                Field(
                    f"{block}.{attr}" if block else attr,
                    block,
                    attr,
                    _check(leaf.annotation, leaf.metadata),
                    TypeAdapter(list[typ], config=_CONFIG),  # type: ignore[valid-type]
                    _optional(leaf.annotation) is leaf.annotation,
                )
            )
    return tuple(fields), blocks


FIELDS, BLOCK_KEYS = _fields()
#: The paths the model holds as integers (a DQ issue shows such an input as one).
INTEGER_PATHS = frozenset(f.path for f in FIELDS if f.check is _integers)
TOP_KEYS = frozenset(CustomerProfile.model_fields)


@dataclass
class Cells:
    """A batch of readable records, one list of validated cells per canonical field path
    (None where missing), and per block whether each record has it. A number field may
    hold an int where the model holds the same number as a float (columns are float64)."""

    n: int
    values: dict[str, list[Any]]
    blocks: dict[str, list[bool]]

    @property
    def ids(self) -> list[str]:
        return self.values["id"]

    @classmethod
    def from_profiles(cls, profiles: Sequence[CustomerProfile]) -> Cells:
        """The cells of validated profiles (the sync's and the webhook's input)."""
        return _extract(profiles)

    def take(self, rows: Sequence[int]) -> Cells:
        """The cells of ``rows``, in that order (one C-level gather per column)."""
        if not rows:
            return Cells(0, {k: [] for k in self.values}, {k: [] for k in self.blocks})
        get = itemgetter(*rows)
        if len(rows) == 1:
            return Cells(
                1,
                {k: [get(v)] for k, v in self.values.items()},
                {k: [get(v)] for k, v in self.blocks.items()},
            )
        return Cells(
            len(rows),
            {k: list(get(v)) for k, v in self.values.items()},
            {k: list(get(v)) for k, v in self.blocks.items()},
        )

    def drop(self, rows: Sequence[int]) -> None:
        """Remove ``rows`` (ascending, distinct) in place: a chunk's few refused records
        cost a ``del`` a column each, where ``take`` of the rest copies every column
        (2 ms against 18 ms a 20,000-record book with 93 refused; docs/operations.md)."""
        for column in (*self.values.values(), *self.blocks.values()):
            for i in reversed(rows):
                del column[i]
        self.n -= len(rows)

    @classmethod
    def concat(cls, parts: Sequence[Cells]) -> Cells:
        first = parts[0]
        return Cells(
            sum(p.n for p in parts),
            {k: [x for p in parts for x in p.values[k]] for k in first.values},
            {k: [x for p in parts for x in p.blocks[k]] for k in first.blocks},
        )


#: The attributes of each holder, in FIELDS order; the record's own (None) end with its
#: blocks.
_ATTRS: dict[str | None, tuple[str, ...]] = {
    holder: tuple(f.attr for f in FIELDS if f.block == holder) for holder in (None, *BLOCK_KEYS)
}
_ATTRS[None] += tuple(BLOCK_KEYS)


def _transposed(holders: list[Any], block: str | None, by_key: bool) -> dict[str, list[Any]]:
    """Every holder's cells (None: all missing) as one list per field path (a block's
    path for the record's own blocks). From profiles: one C-level gather per holder makes
    its row, one transposition makes the columns. From parsed records (``by_key``): one
    C-level ``dict.get`` pass per field, as a record may leave keys out (optional fields
    mostly are): a row gather raised KeyError on the first such record and started over
    key by key, which cost the top level and ``credit`` 1.6 to 2.4 times what this does
    (all of ``validated``: 14 % less CPU; docs/operations.md, "crmtier tier, where the
    time goes")."""
    attrs = _ATTRS[block]
    prefix = f"{block}." if block else ""
    if by_key:
        return _by_key(holders, attrs, prefix)
    # a validated model keeps its fields in its ``__dict__``: one C-level item gather from
    # it costs half the attribute gather (each attribute looked up on the class first)
    get = itemgetter(*attrs)
    if len(attrs) == 1:  # a lone item's getter returns the cell, not a row
        return {prefix + attrs[0]: [None if h is None else get(h.__dict__) for h in holders]}
    missing = (None,) * len(attrs)
    rows = [missing if h is None else get(h.__dict__) for h in holders]
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in attrs]
    return {prefix + attr: list(column) for attr, column in zip(attrs, columns, strict=True)}


_NO_KEYS: dict[str, Any] = {}


def _by_key(holders: list[Any], attrs: tuple[str, ...], prefix: str) -> dict[str, list[Any]]:
    """Each of ``attrs``' column of cells from parsed dicts (None for a missing holder or
    key); a block no record has costs no pass at all."""
    n = len(holders)
    if None in holders:
        if holders.count(None) == n:
            return {prefix + attr: [None] * n for attr in attrs}
        holders = [_NO_KEYS if h is None else h for h in holders]
    return {prefix + attr: list(map(dict.get, holders, repeat(attr, n))) for attr in attrs}


def _extract(records: Sequence[Any]) -> Cells:
    """The cells of validated profiles (every attribute is there)."""
    values = _transposed(list(records), None, by_key=False)
    blocks = {}
    for block in BLOCK_KEYS:
        column = values.pop(block)
        blocks[block] = [h is not None for h in column]
        values.update(_transposed(column, block, by_key=False))
    return Cells(len(records), values, blocks)


def validated(documents: Sequence[Any]) -> tuple[Cells, list[int]]:
    """The cells of parsed JSON or CSV records (dicts, left untouched), column by column,
    and the indexes of the records that are not readable as they stand: not an object, an
    unknown key, a cell the model would refuse (or one this fast check leaves to the model:
    see the module docstring). Those rows' cells are placeholders; the caller validates
    them whole."""
    bad: set[int] = set()
    tops: list[dict[str, Any] | None] = list(documents)
    if not (set(map(type, documents)) <= {dict} and set().union(*documents) <= TOP_KEYS):
        tops = [d if type(d) is dict and d.keys() <= TOP_KEYS else None for d in documents]
        bad.update(i for i, d in enumerate(tops) if d is None)
    values = _transposed(tops, None, by_key=True)
    # the model's default currency; an explicit null is refused below
    values["currency"] = ["CNY" if d is None else d.get("currency", "CNY") for d in tops]
    blocks: dict[str, list[bool]] = {}
    for block, keys in BLOCK_KEYS.items():
        column = values.pop(block)
        # one C-level pass over every key of the column: a clean column ends here
        present: list[dict[str, Any]] = list(filter(None, column))
        if not (set(map(type, column)) <= {dict, NONE} and set().union(*present) <= keys):
            odd = [
                i
                for i, h in enumerate(column)
                if h is not None and (type(h) is not dict or not h.keys() <= keys)
            ]
            for i in odd:
                column[i] = None
            bad.update(odd)
        blocks[block] = [h is not None for h in column]
        values.update(_transposed(column, block, by_key=True))
    for f in FIELDS:
        column = values[f.path]
        if not f.check(column):
            values[f.path] = _validated_column(f, column, bad)
    return Cells(len(tops), values, blocks), sorted(bad)


def _validated_column(f: Field, column: list[Any], bad: set[int]) -> list[Any]:
    """The column as the model's own field type validates it; failing rows join ``bad``."""
    try:
        return f.adapter.validate_python(column)
    except ValidationError as exc:
        failed = {int(e["loc"][0]) for e in exc.errors(include_url=False) if e["loc"]}
    bad.update(failed)
    placeholder = "-" if f.required else None  # the row is validated whole later
    kept = [placeholder if i in failed else c for i, c in enumerate(column)]
    return f.adapter.validate_python(kept)
