"""``crmtier doctor``'s checklist lines: how one is made, shown and counted.

Shared by the local set-up checks (``doctor_local.py``), the CRM checks and the command
(``doctor.py``), so every line is worded, coloured and counted alike: a failed line is an
error or a warning, and only errors make ``doctor`` exit 1.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from connectors.contract import SchemaCheck


def ok(name: str, detail: str = "") -> SchemaCheck:
    return SchemaCheck(name, True, detail)


def error(name: str, detail: str, fix: str) -> SchemaCheck:
    return SchemaCheck(name, False, detail, fix)


def warn(name: str, detail: str, fix: str = "", ok: bool = True) -> SchemaCheck:
    return SchemaCheck(name, ok, detail, fix, "warning")


def _glyph(check: SchemaCheck) -> str:
    if check.ok and check.severity == "warning" and (check.fix or check.detail):
        return "[yellow]![/yellow]"
    if check.ok:
        return "[green]✓[/green]"
    return "[red]✗[/red]" if check.severity == "error" else "[yellow]![/yellow]"


def print_checklist(console: Console, title: str, checks: list[SchemaCheck]) -> None:
    table = Table(title=title, title_justify="left", show_lines=False)
    for col in ("", "check", "detail", "fix"):
        table.add_column(col, overflow="fold")
    for c in checks:
        fix = "" if c.ok and not c.fix else c.fix
        table.add_row(_glyph(c), Text(c.name), Text(c.detail), Text(fix))
    console.print(table)


def is_error(check: SchemaCheck) -> bool:
    return not check.ok and check.severity == "error"


def finish(console: Console, checks: list[SchemaCheck]) -> int:
    """Print the verdict; the exit status (1 with any error)."""
    errors = sum(is_error(c) for c in checks)
    warnings = sum(c.severity == "warning" and (not c.ok or bool(c.fix)) for c in checks)
    verdict = "[red]not ready[/red]" if errors else "[green]ready[/green]"
    console.print(f"{verdict}: {errors} error(s), {warnings} warning(s)")
    return 1 if errors else 0
