"""Listings on stdout (``audit show``, ``sync --dead-letters``): a table for a person, JSON
Lines for a program, and neither cut short when stdout is a pipe or a file.

Rich sizes a table to the terminal, and to 80 columns when there is none, squeezing cells
into ellipses: a listing piped to ``grep`` or saved to a file then lost the very ids it was
run for. Off a terminal the table is laid out at its natural width instead.

rich is imported when a table or console is made, not with the module: ``--format json``
and ``crmtier sync --json`` draw nothing and skip its import (docs/operations.md,
"Start-up").
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

FORMATS = ("table", "json")
#: wide enough for any row; a table that does not expand is drawn at its own width
UNBOUNDED = 1_000_000

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table, or json: one JSON object per line.",
)


def stdout_console() -> Console:
    """A console on stdout that wraps and cuts nothing when stdout is not a terminal."""
    from rich.console import Console

    interactive = sys.stdout.isatty()
    return Console(file=sys.stdout, soft_wrap=True, width=None if interactive else UNBOUNDED)


def emit(fmt: str, title: str, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """``rows`` as a table of ``columns`` (each a key of the row) or as JSON Lines of the
    whole rows."""
    if fmt == "json":
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False, default=str))
        return
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row[c]) for c in columns))
    stdout_console().print(table)
