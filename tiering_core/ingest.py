"""Ingest: numbered input records -> validated columns of cells, a chunk at a time.

No model is built per record. A chunk's records are parsed (JSON Lines by pydantic-core's
JSON parser, CSV rows by the caller) and checked column by column against the canonical
model (``cells.validated``), so a clean chunk costs one pass per field, not one validation
per record. A record that fails a column check is validated on its own by the model's
pydantic-core validator, exactly as before the columns existed: it is kept as
``Unreadable`` with its line number and a one-line reason per failing field (the same
texts), or, if the model reads it after all, it joins the chunk in its place; the rest of
the chunk proceeds either way.

No I/O here: the caller reads the lines or rows and writes the outcome.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import pydantic_core
from pydantic import ValidationError

from tiering_core.cells import Cells, validated
from tiering_core.models import CustomerProfile

_PARSER_LINE = re.compile(r"at line \d+ column")
#: Records validated and assessed together: large enough that numpy's per-call cost and
#: the per-field column checks vanish per record (bench/core.py), small enough to keep a
#: chunk's documents and output in cache-friendly memory.
CHUNK = 2_000

# The model's own pydantic-core validator, for the records the column checks refuse.
_VALIDATE_JSON = CustomerProfile.__pydantic_validator__.validate_json
_VALIDATE_PYTHON = CustomerProfile.__pydantic_validator__.validate_python


@dataclass(frozen=True)
class Unreadable:
    """A record that cannot become a profile: its line and one reason per failing field
    (``field assets.deposits: Input should be a valid number, ...``). Reasons name the
    field and the problem, never the input value (it may be personal data)."""

    line: int
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Rejected:
    """A record its reader could not take apart (bytes that are not UTF-8, a CSV row with
    more cells than columns): it reaches the chunk as ``Unreadable`` with this reason, in
    its place, so every record of the input is accounted for in one way."""

    reason: str


@dataclass
class Chunk:
    """The readable records of a chunk as cells, in input order, with their line numbers,
    and its unreadable records."""

    cells: Cells
    lines: list[int] = field(default_factory=list)  # of each readable record
    unreadable: list[Unreadable] = field(default_factory=list)


def reasons(exc: ValidationError) -> tuple[str, ...]:
    """One line per failing field; a record that is not JSON or not an object at all gets a
    single reason instead of pydantic's per-field noise about it."""
    errors = exc.errors(include_input=False, include_url=False)
    for err in errors:
        if err["type"] == "json_invalid":
            return (_json_problem(str(err.get("ctx", {}).get("error", err["msg"]))),)
        if err["type"] == "model_type" and not err["loc"]:
            return ("not a JSON object",)
    return tuple(
        f"field {'.'.join(str(p) for p in err['loc']) or '(record)'}: {err['msg']}"
        for err in errors
    )


def _json_problem(error: str) -> str:
    """The JSON parser's complaint about one record, placed by column (the record is one
    line: the parser's "line 1" would contradict the input line number it is reported
    under); bytes that do not decode are named as such, not as bad JSON."""
    error = _PARSER_LINE.sub("at column", error)
    if error.startswith("invalid unicode code point"):
        return f"not UTF-8 text ({error.removeprefix('invalid unicode code point ')})"
    return f"not valid JSON ({error})"


Validate = Callable[[Iterable[tuple[int, Any]]], Chunk]


def in_chunks(
    numbered: Iterator[tuple[int, Any]], validate: Validate, handle: Callable[[Chunk], None]
) -> tuple[int, int]:
    """Validate ``numbered`` records ``CHUNK`` at a time and hand each chunk to ``handle``;
    return how many records were readable and how many not."""
    readable = unreadable = 0
    while True:
        chunk = validate(islice(numbered, CHUNK))
        if not chunk.cells.n and not chunk.unreadable:
            return readable, unreadable
        handle(chunk)
        readable += chunk.cells.n
        unreadable += len(chunk.unreadable)


_UNPARSED = object()


def from_json_lines(lines: Iterable[tuple[int, str | bytes | Rejected]]) -> Chunk:
    """Numbered JSON texts (one record each, as ``crmtier tier`` reads JSON Lines); as
    ``bytes`` a line that is not UTF-8 is unreadable like one that is not JSON."""
    numbered = list(lines)
    docs = [_parsed(text) for _, text in numbered]
    return _chunk(numbered, docs, _VALIDATE_JSON)


def _parsed(text: str | bytes | Rejected) -> Any:
    if text.__class__ is Rejected:
        return _UNPARSED
    try:
        return pydantic_core.from_json(text, allow_inf_nan=False)  # type: ignore[arg-type]
    except ValueError:
        return _UNPARSED  # the model's validator reports it, in its words


def from_records(records: Iterable[tuple[int, Any]]) -> Chunk:
    """Numbered Python records (dicts, as a CSV row or a CRM page becomes)."""
    numbered = list(records)
    return _chunk(numbered, [raw for _, raw in numbered], _VALIDATE_PYTHON)


def _chunk(
    numbered: list[tuple[int, Any]], docs: list[Any], whole: Callable[[Any], CustomerProfile]
) -> Chunk:
    """The chunk of these records: their cells, with the rows the column checks refuse
    validated one by one (see the module docstring)."""
    cells, bad = validated(docs)
    if not bad:
        return Chunk(cells, [number for number, _ in numbered])
    unreadable: list[Unreadable] = []
    rescued: list[tuple[int, CustomerProfile]] = []
    for i in bad:
        number, raw = numbered[i]
        if raw.__class__ is Rejected:
            unreadable.append(Unreadable(number, (raw.reason,)))
            continue
        try:
            rescued.append((i, whole(raw)))
        except ValidationError as exc:
            unreadable.append(Unreadable(number, reasons(exc)))
    refused = set(bad)
    rows = [i for i in range(len(numbered)) if i not in refused]
    cells.drop(bad)  # validated's own lists: nothing else holds them
    kept = cells
    if rescued:
        rows += [i for i, _ in rescued]
        kept = Cells.concat([kept, Cells.from_profiles([p for _, p in rescued])])
        order = sorted(range(len(rows)), key=rows.__getitem__)
        kept, rows = kept.take(order), sorted(rows)
    return Chunk(kept, [numbered[i][0] for i in rows], unreadable)
