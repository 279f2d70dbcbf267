"""Bulk API 2.0 job data: field updates as CSV, made once in the form the job takes.

A job's CSV is written here straight from the rows (a tuple a record, in column order)
and handed to the client as it is, cut only where it would pass the upload limit; nothing
reads it back to count or re-split it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

#: Bytes of CSV in one Bulk API 2.0 upload. Salesforce takes up to 150 MB base64-encoded
#: ("Bulk API 2.0 Limits", Bulk API 2.0 Developer Guide), about 100 MB of CSV, which is
#: simple-salesforce's own cut (``bulk2.MAX_INGEST_JOB_FILE_SIZE``).
BULK_UPLOAD_BYTES = 100 * 1024 * 1024


def csv_bodies(
    columns: Sequence[str], rows: Sequence[Sequence[str]], limit: int = BULK_UPLOAD_BYTES
) -> Iterator[tuple[str, int]]:
    """Bulk API 2.0 job data (CSV, LF line endings, as the job is created) with its row
    count: one body, or halves of the rows until each is within ``limit`` bytes."""
    body = _csv_text(columns, rows)
    if len(rows) <= 1 or len(body.encode("utf-8")) <= limit:
        yield body, len(rows)
        return
    half = len(rows) // 2
    yield from csv_bodies(columns, rows[:half], limit)
    yield from csv_bodies(columns, rows[half:], limit)


def _csv_text(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The rows as CSV with minimal quoting and LF line ends, as ``csv.writer`` writes
    them, a column at a time: ids, tiers, numbers and dates never need quoting, and a
    column none of whose cells holds a comma, quote or line break is taken as it is; only
    the cells that do (the reasons' text) are quoted. A third of the writer's cost on the
    sync's rows. A carriage return is quoted too, which Python 3.11's writer leaves bare
    when lines end in LF (a CSV reader may take it for a line end)."""
    cells: list[tuple[str, ...]] = list(zip(*rows, strict=True))  # a tuple a column
    for i, column in enumerate(cells):
        if _SPECIAL.search("\x00".join(column)):
            cells[i] = tuple(map(_minimal, column))
    lines = (",".join(map(_minimal, columns)), *map(",".join, zip(*cells, strict=True)))
    return "\n".join(lines) + "\n"


def _minimal(text: str) -> str:
    """One cell: quoted (its quotes doubled) only if it holds a comma, quote or line break."""
    return '"' + text.replace('"', '""') + '"' if _SPECIAL.search(text) else text


#: what makes a cell quoted: the delimiter, the quote, a line break
_SPECIAL = re.compile('[,"\r\n]')


def cell(value: Any) -> str:
    """A Bulk API CSV cell: ``#N/A`` writes null, booleans in lower case."""
    if type(value) is str:  # most cells
        return value
    if value is None:
        return "#N/A"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
