"""Schema-validated ingest: numbered input records -> ``CustomerProfile``, a chunk at a time.

Every record is validated on its own by pydantic-core (a JSON line parsed and validated in
one step), so one unreadable record costs only itself: it is kept as ``Unreadable`` with
its line number and a one-line reason per failing field, and the rest of the chunk
proceeds. Validating a whole chunk as one ``list[CustomerProfile]`` was measured and
rejected: it is slower even on clean data (about 80k against 115k records/s), and a
realistic input has an unreadable record in nearly every chunk, which would then be
validated twice.

What does make ingest fast is memory, not validation (docs/targets.md P3, bench/core.py): a
profile is about 5.5 KB of small objects, so

* chunks are small (``CHUNK``): the next chunk reuses the memory the previous one freed
  while it is still in cache, where 2,000 records (11 MB) measured 80k records/s and 250
  measured 110-120k. A chunk is also what ``crmtier tier`` assesses at once; 250 keeps
  the evaluation vectorised and measured faster end to end too (5.3k against 4.5k/s);
* ``in_chunks`` keeps the garbage collector paused over a chunk's whole life, from
  validation through the caller's handling until the chunk is dropped: a collector resumed
  while the chunk is alive scans all of its objects at least once, which measured as up to
  a quarter of the ingest cost.

No I/O here: the caller reads the lines or rows and writes the outcome.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from pydantic import ValidationError

from tiering_core.collector import collector_paused
from tiering_core.models import CustomerProfile

_PARSER_LINE = re.compile(r"at line \d+ column")
CHUNK = 250  # records validated and assessed together (see the module docstring)

# The model's own pydantic-core validator, called directly: ``model_validate_json`` and
# ``model_validate`` only forward to it, and skipping that Python frame is 3-4% of ingest.
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
    """The readable profiles of a chunk, in input order, with their line numbers, and its
    unreadable records."""

    profiles: list[CustomerProfile] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # of each profile
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
    return how many records were readable and how many not. The chunk's objects are acyclic
    and freed by reference counting, so pausing the collector for it loses nothing."""
    readable = unreadable = 0
    while True:
        with collector_paused():
            chunk = validate(islice(numbered, CHUNK))
            if not chunk.profiles and not chunk.unreadable:
                return readable, unreadable
            handle(chunk)
            readable += len(chunk.profiles)
            unreadable += len(chunk.unreadable)
            del chunk  # dropped before the collector resumes


def from_json_lines(lines: Iterable[tuple[int, str | bytes | Rejected]]) -> Chunk:
    """Validate numbered JSON texts (one record each, as ``crmtier tier`` reads JSON Lines):
    as ``bytes`` they are decoded by the validator too, and a line that is not UTF-8 is
    unreadable like one that is not JSON."""
    return _validated(lines, _VALIDATE_JSON)


def from_records(records: Iterable[tuple[int, Any]]) -> Chunk:
    """Validate numbered Python records (dicts, as a CSV row or a CRM page becomes)."""
    return _validated(records, _VALIDATE_PYTHON)


def _validated(numbered: Iterable[tuple[int, Any]], one: Callable[[Any], CustomerProfile]) -> Chunk:
    chunk = Chunk()
    for number, data in numbered:
        if data.__class__ is Rejected:
            chunk.unreadable.append(Unreadable(number, (data.reason,)))
            continue
        try:
            chunk.profiles.append(one(data))
        except ValidationError as exc:
            chunk.unreadable.append(Unreadable(number, reasons(exc)))
        else:
            chunk.lines.append(number)
    return chunk
