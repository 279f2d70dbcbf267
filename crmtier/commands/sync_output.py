"""What ``crmtier sync`` shows: the progress bar, the run summary, the dry run's plan and
the run report as JSON. Apart from the command so that the command module holds only how a
run is started, scheduled and stopped. rich is imported by what draws (``--json`` and
``--quiet`` runs draw nothing and skip its import)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from connectors.contract import data_calls
from sync.disclosure import Disclosure
from sync.engine import (
    PlannedWrite,
    RunReport,
)
from sync.preview import OUTCOMES
from sync.runs import RunCounts

if TYPE_CHECKING:
    from rich.console import Console


class ProgressView:
    """Rich progress on stderr: pages, customers, writes, API calls."""

    def __init__(self, console: Console) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("starting", total=None)

    def update(self, counts: RunCounts, api_calls: int) -> None:
        writes = sum(counts.writes.values())
        self.progress.update(
            self.task,
            description=(
                f"pages {counts.pages}  customers {counts.read}  writes {writes}  "
                f"API calls {api_calls}"
            ),
        )


def summary(
    console: Console,
    report: RunReport,
    dry_run: bool,
    disclosure: Disclosure,
    only_fields: bool = False,
) -> None:
    from rich.table import Table

    c = report.counts
    head = Table(title=f"crmtier sync {report.stream}: {report.status}", show_header=False)
    head.add_row("run", report.run_id)
    head.add_row(
        "customers",
        f"read {c.read} = unchanged {c.unchanged} + {'would write' if dry_run else 'written'} "
        f"{c.written} + dead-lettered {c.dead_lettered} + skipped {sum(c.skipped.values())}"
        + (f" {dict(c.skipped)}" if c.skipped else ""),
    )
    if c.recovered:
        head.add_row("recovered", f"{c.recovered} decisions of an interrupted run completed")
    minimum = sum(report.min_calls.values())
    used = data_calls(report.api_calls)
    if dry_run:
        ratio = "; nothing was written"
    elif minimum:
        ratio = f" (data calls / minimum = {used / minimum:.2f})"
    else:
        ratio = ""
    head.add_row(
        "API calls",
        f"{report.api_total} used {dict(sorted(report.api_calls.items()))}; "
        f"minimum {minimum} {dict(sorted(report.min_calls.items()))}{ratio}",
    )
    head.add_row("dead letters open", str(report.dead_letters_open))
    if c.tasks_deferred or c.tasks_waiting:
        head.add_row(
            "tasks waiting",
            f"{sum(c.tasks_waiting.values())} wait for the next run (deferred now: "
            f"{sum(c.tasks_deferred.values())}); per-run budgets and per-owner caps of the "
            "policy's task rules",
        )
    if only_fields:
        head.add_row(
            "staged", "tier fields only; the next run makes the tasks and campaign memberships"
        )
    if report.error:
        head.add_row("error", report.error)
    console.print(head)
    for title, counter in (
        ("value tiers", c.tiers),
        ("changes (from -> to)", c.changes),
        ("writes by kind", c.writes),
        ("failed writes by kind", c.write_failures),
        ("data-quality issues", c.dq_issues),
        ("tasks waiting for the next run, by rule", c.tasks_waiting),
    ):
        if counter:
            table = Table(title=title)
            table.add_column("")
            table.add_column("count", justify="right")
            for name, n in counter.most_common():
                table.add_row(name, str(n))
            console.print(table)
    if dry_run:
        _show_plan(console, report, disclosure)


#: preview rows a dry run prints on a terminal (all of them go to a pipe, a file, --json)
PREVIEW_ROWS = 200


def _show_plan(console: Console, report: RunReport, disclosure: Disclosure) -> None:
    """A dry run's planned writes, customer by customer (restricted values hidden), then
    its totals per field, task rule and campaign."""
    from rich.table import Table

    preview = _disclosed(report.preview, disclosure)
    if preview:
        table = Table(title="would write (dry run: nothing was sent)")
        for col in ("customer", "kind", "detail"):
            table.add_column(col)
        shown = preview[:PREVIEW_ROWS] if console.is_terminal else preview
        for item in shown:
            detail = ", ".join(f"{k}={v}" for k, v in item.detail.items())
            table.add_row(item.customer_id, item.kind, detail)
        console.print(table)
        if len(shown) < len(preview):
            console.print(f"... and {len(preview) - len(shown)} more (use --json for all)")
    totals = Table(title="dry run totals: created / closed / unchanged")
    for col in ("", "name", "created", "closed", "unchanged"):
        totals.add_column(col, justify="right" if col in OUTCOMES else "left")
    for group, name, by_outcome in report.totals.rows():
        totals.add_row(group, name, *(str(by_outcome[o]) for o in OUTCOMES))
    if totals.row_count:
        console.print(totals)
    else:
        console.print("dry run totals: no field, task or campaign is planned")


def _disclosed(preview: list[PlannedWrite], disclosure: Disclosure) -> list[PlannedWrite]:
    """The preview with restricted values hidden and EDD tasks left out."""
    out = []
    for item in preview:
        detail = item.detail
        if item.kind == "task" and disclosure.hides_rule(detail.get("rule")):
            continue
        if item.kind == "field_update":
            name = str(detail.get("field"))
            detail = {
                **detail,
                "old": disclosure.value(name, detail.get("old")),
                "new": disclosure.value(name, detail.get("new")),
            }
        out.append(PlannedWrite(item.customer_id, item.kind, detail))
    return out


def report_json(report: RunReport, disclosure: Disclosure) -> str:
    return json.dumps(
        {
            "run_id": report.run_id,
            "stream": report.stream,
            "status": report.status,
            "error": report.error,
            "counts": report.counts.as_json(),
            "api_calls": report.api_calls,
            "min_calls": report.min_calls,
            "dead_letters_open": report.dead_letters_open,
            "preview": [asdict(p) for p in _disclosed(report.preview, disclosure)],
            "totals": report.totals.as_json(),
        },
        default=str,
    )
