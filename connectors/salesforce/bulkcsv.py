"""Bulk API 2.0 job data: field updates as CSV, made once in the form the job takes.

A job's CSV is written here straight from the rows (a tuple a record, in column order)
and handed to the client as it is, cut only where it would pass the upload limit; nothing
reads it back to count or re-split it.
"""

from __future__ import annotations

import csv
import io
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
    """The rows as CSV, as ``csv.writer`` (minimal quoting, LF) writes them. Tier values,
    ids, numbers and dates need no quoting: joined with commas they are the same text at
    a fifteenth of the writer's cost, and the counts of commas and line ends (and no
    quote or carriage return) prove that no cell held one; else the writer quotes."""
    body = "\n".join(map(",".join, (columns, *rows))) + "\n"
    lines = len(rows) + 1
    if (
        body.count("\n") == lines
        and body.count(",") == lines * (len(columns) - 1)
        and '"' not in body
        and "\r" not in body
    ):
        return body
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def cell(value: Any) -> str:
    """A Bulk API CSV cell: ``#N/A`` writes null, booleans in lower case."""
    if type(value) is str:  # most cells
        return value
    if value is None:
        return "#N/A"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
