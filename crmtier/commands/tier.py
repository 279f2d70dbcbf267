"""``crmtier tier``: assess customers from a file, without any CRM.

Input is JSON Lines of ``CustomerProfile`` (or CSV whose columns are canonical dotted paths
such as ``assets.deposits``, lists ``;``-separated); output is JSON Lines of ``Assessment``,
one per readable input record, in input order. A record that cannot be read (not UTF-8,
not JSON, a wrongly typed field, a CSV row with more cells than columns, a second record
with the same id) is reported on stderr as ``line N: field <path>: <problem>`` (or
``line N: <problem>`` when no one field is to blame) and skipped; the rest are still
assessed. A record that can be read but is dirty (a negative balance, an amount beyond
any plausible one, an unknown country code, a missing block) is assessed with DQ issues:
dirty data is the rules' business, not the reader's.

Exit status: 0 every record assessed; 1 some skipped; 2 the run could not start (bad
policy, unreadable file, unknown CSV column).
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import IO, Any, get_origin

import click

from connectors.mapping import CANONICAL_TYPES, set_path
from tiering_core import ingest
from tiering_core.collector import collector_paused
from tiering_core.columns import Columns
from tiering_core.lines import assessment_lines
from tiering_core.models import Previous
from tiering_core.policy import Policy, PolicyError, load_policy

PROGRESS_MIN_BYTES = 5_000_000  # smaller files finish before a bar is worth drawing
LIST_SEPARATOR = ";"
BOM = b"\xef\xbb\xbf"  # UTF-8's, as spreadsheet tools write it
_LIST_COLUMNS = frozenset(path for path, typ in CANONICAL_TYPES.items() if get_origin(typ) is tuple)


class FatalInput(click.ClickException):
    """The run cannot start at all (exit 2; 1 means some records were skipped)."""

    exit_code = 2


def _blank(line: bytes) -> bool:
    """Empty or ASCII whitespace only, for JSON Lines and CSV alike. On the bytes, not
    ``str.isspace``: that also counts control characters such as the file separator 0x1C,
    and a line of them would vanish without a word; and not ``strip()``, which copies
    every line."""
    return not line or line.isspace()


def read_jsonl(stream: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Numbered non-blank lines, as bytes: pydantic-core's parser decodes and parses each
    in one step (tiering_core/ingest.py), faster than ``json.loads``, and a line that is
    not UTF-8 costs only itself."""
    for number, line in enumerate(stream, start=1):
        if number == 1:
            line = line.removeprefix(BOM)
        if not _blank(line):
            yield number, line


def read_csv(
    stream: Iterable[bytes], extra_column: Callable[[str], bool] = lambda _: False
) -> Iterator[tuple[int, dict[str, Any] | ingest.Rejected]]:
    """Numbered rows as canonical trees, ready for validation, or the reason a row cannot
    be one. A record is one line: no canonical column holds a line break, so each line is
    parsed on its own, and an unterminated quote costs its own line instead of silently
    swallowing the lines after it."""
    lines = enumerate(stream, start=1)
    columns = _header(lines, extra_column)
    for number, raw in lines:
        cells = _cells(raw)
        if cells is None:
            continue
        if isinstance(cells, ingest.Rejected):
            yield number, cells
        elif len(cells) > len(columns):
            yield (
                number,
                ingest.Rejected(f"{len(cells)} cells, but the header names {len(columns)} columns"),
            )
        else:
            yield number, _tree(zip(columns, cells, strict=False))


def _header(lines: Iterator[tuple[int, bytes]], extra_column: Callable[[str], bool]) -> list[str]:
    """The first non-blank line's column names, all of them canonical (or ``extra_column``:
    ``crmtier calibrate``'s history adds its period, outcome and attributes)."""
    for number, raw in lines:
        cells = _cells(raw.removeprefix(BOM) if number == 1 else raw)
        if isinstance(cells, ingest.Rejected):
            raise FatalInput(f"CSV header (line {number}): {cells.reason}")
        if cells is not None:
            known = set(CANONICAL_TYPES) | {"id"} | {f"previous.{k}" for k in Previous.model_fields}
            unknown = [c for c in cells if c not in known and not extra_column(c)]
            if unknown:
                raise FatalInput(
                    f"CSV column {unknown[0][:80]}: not a canonical field (e.g. assets.deposits)"
                )
            return cells
    return []


def _cells(raw: bytes) -> list[str] | ingest.Rejected | None:
    """One line's cells; None for a blank line (``_blank``)."""
    if _blank(raw):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ingest.Rejected(f"not UTF-8 text (at column {exc.start + 1})")
    try:
        return next(csv.reader((text,), strict=True))
    except csv.Error as exc:
        return ingest.Rejected(_csv_problem(str(exc)))


def _csv_problem(error: str) -> str:
    """The csv module's complaint as a reader of this command's input understands it."""
    if error.startswith("unexpected end of data"):
        return "unterminated quote (a record is one line)"
    if error.startswith("field larger than field limit"):
        return f"a cell is longer than {csv.field_size_limit():,} characters"
    return f"not a CSV row ({error})"


def _tree(cells: Iterable[tuple[str, str]]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, cell in cells:
        value = cell.strip()
        if not value:
            continue  # an empty cell is missing, never zero
        if path in _LIST_COLUMNS:
            set_path(tree, path, [v.strip() for v in value.split(LIST_SEPARATOR) if v.strip()])
        else:
            set_path(tree, path, value)
    return tree


def first_of_each_id(validate: ingest.Validate) -> ingest.Validate:
    """``validate``, keeping only the first record of each customer id: the output has one
    assessment per customer, and which of two records to trust is the user's call, so a
    later one is reported (``field id: duplicate of line N``) and skipped."""
    seen: dict[str, int] = {}

    def unique(numbered: Iterable[tuple[int, Any]]) -> ingest.Chunk:
        chunk = validate(numbered)
        lines = chunk.lines
        firsts = list(map(seen.setdefault, chunk.cells.ids, lines))
        if firsts == lines:  # no id seen before: the usual chunk
            return chunk
        rows = []
        for row, (line, first) in enumerate(zip(lines, firsts, strict=True)):
            if first == line:
                rows.append(row)
            else:
                reason = f"field id: duplicate of line {first}; skipped"
                chunk.unreadable.append(ingest.Unreadable(line, (reason,)))
        return ingest.Chunk(
            chunk.cells.take(rows), [chunk.lines[i] for i in rows], chunk.unreadable
        )

    return unique


def run(
    source: Iterable[bytes], fmt: str, policy: Policy, as_of: date, out: IO[str], err: IO[str]
) -> tuple[int, int]:
    """Assess every readable record of ``source``; return (assessed, skipped).

    Records are validated and assessed a chunk at a time, as columns: no model or
    decision dict is built for a record, and the output lines are joined from columns
    of JSON fragments, each distinct value serialised once a chunk
    (tiering_core/ingest.py, tiering_core/lines.py).

    The cyclic garbage collector is paused for the run (and restored after it): a chunk
    makes tens of thousands of small acyclic containers, freed by reference counting
    once written, and the collector's passes over them cost about as much as making
    them (bench/core.py). This is the command's one collector setting; the core has none.
    """
    numbered, validate = _reader(fmt, source)
    with collector_paused():
        return ingest.in_chunks(numbered, validate, partial(_assess_chunk, policy, as_of, out, err))


def _reader(fmt: str, source: Iterable[bytes]) -> tuple[Iterator[tuple[int, Any]], ingest.Validate]:
    """The numbered records of ``source`` and the validation that turns them into cells."""
    if fmt == "csv":
        return read_csv(source), first_of_each_id(ingest.from_records)
    return read_jsonl(source), first_of_each_id(ingest.from_json_lines)


def _assess_chunk(
    policy: Policy, as_of: date, out: IO[str], err: IO[str], chunk: ingest.Chunk
) -> None:
    """Report the chunk's unreadable records and write its assessments."""
    for bad in sorted(chunk.unreadable, key=lambda u: u.line):
        for reason in bad.reasons:
            err.write(f"line {bad.line}: {reason}\n")
    data = assessment_lines(Columns.from_cells(chunk.cells, policy), policy, as_of)
    if data:
        binary = getattr(out, "buffer", None)  # a file or stdout: the UTF-8 bytes as they are
        if binary is None or getattr(out, "encoding", "").lower().replace("-", "") != "utf8":
            out.write(data.decode("utf-8"))
        else:
            out.flush()
            binary.write(data)


def open_input(path: Path) -> IO[bytes]:
    """The input as bytes, read a line at a time: each line is decoded on its own, so one
    that is not UTF-8 costs only itself (a BOM, as spreadsheet tools write, is dropped)."""
    return path.open("rb")


@contextmanager
def _progress(path: Path, lines: Iterable[bytes]) -> Iterator[Iterable[bytes]]:
    """``lines`` counted into a progress bar on stderr for an interactive run over a large
    file; untouched otherwise (pipes, CI, tests), so stderr carries only the per-line
    problems and the summary."""
    if not sys.stderr.isatty() or path.stat().st_size < PROGRESS_MIN_BYTES:
        yield lines
        return
    from rich.console import Console  # the bar's only: a run without one skips rich's import
    from rich.progress import Progress

    # stdout is the assessments' (a file or a pipe, often): rich's default would route it
    # through the bar's console on stderr, wrapped to the terminal, behind a proxy whose
    # ``encoding`` is None (which ``_assess_chunk`` could not read: a traceback)
    with Progress(transient=True, console=Console(stderr=True), redirect_stdout=False) as bar:
        task = bar.add_task(f"assessing {path.name}", total=path.stat().st_size)
        yield _counted(lines, lambda n: bar.advance(task, n))


def _counted(lines: Iterable[bytes], advance: Callable[[int], None]) -> Iterator[bytes]:
    for line in lines:
        advance(len(line))
        yield line


def format_option(what: str) -> Any:
    """``--format`` of a command that reads a customer file (``tier``, ``calibrate``)."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["auto", "jsonl", "csv"]),
        default="auto",
        show_default=True,
        help=f"{what} format; auto = csv for *.csv, else jsonl.",
    )


@click.command(name="tier")
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON Lines of CustomerProfile, or CSV with dotted column names.",
)
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Policy TOML merged over the built-in default (default: built-in).",
)
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Assessment date YYYY-MM-DD (default: today, UTC).",
)
@click.option(
    "--output",
    "output_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write JSON Lines here (default: stdout).",
)
@format_option("Input")
def command(
    input_path: Path,
    policy_path: Path | None,
    as_of: datetime | None,
    output_path: Path | None,
    fmt: str,
) -> None:
    """Assess customers from a JSON Lines or CSV file; print Assessments as JSON Lines."""
    try:
        policy = load_policy(policy_path)
    except PolicyError as exc:
        raise FatalInput(str(exc)) from None
    day = as_of.date() if as_of else datetime.now(UTC).date()
    if fmt == "auto":
        fmt = "csv" if input_path.suffix.lower() == ".csv" else "jsonl"
    try:
        with open_input(input_path) as source, _progress(input_path, source) as lines:
            if output_path is None:
                assessed, skipped = run(lines, fmt, policy, day, sys.stdout, sys.stderr)
            else:
                with output_path.open("w", encoding="utf-8") as out:
                    assessed, skipped = run(lines, fmt, policy, day, out, sys.stderr)
    except OSError as exc:
        raise FatalInput(f"{exc.filename or input_path}: {exc.strerror or exc}") from None
    click.echo(
        f"crmtier tier: {assessed} assessed, {skipped} skipped "
        f"(policy {policy.version}, as of {day.isoformat()})",
        err=True,
    )
    click.get_current_context().exit(1 if skipped else 0)
