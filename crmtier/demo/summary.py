"""The demo's closing summary, printed with rich."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from crmtier.demo.orchestrate import DemoResult
from crmtier.demo.outcomes import grouped


def _counts_table(
    title: str, rows: list[tuple[str, int]], total: int | None = None, unit: str = "customers"
) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("")
    table.add_column(unit, justify="right")
    if total:
        table.add_column("share", justify="right")
    for name, n in rows:
        cells = [name, f"{n:,}"]
        if total:
            cells.append(f"{100 * n / total:.1f}%")
        table.add_row(*cells)
    return table


def _planned_table(result: DemoResult) -> Table:
    """The first sync's tasks (by rule) and memberships (by campaign): what it planned,
    what the CRM acknowledged, and the tasks its budgets left waiting for a later run."""
    table = Table(title="First sync by task rule and campaign", title_justify="left")
    for col in ("", "planned", "written", "waiting"):
        table.add_column(col, justify="right" if col else "left")
    waiting = {f"task {rule}": n for rule, n in result.tasks_waiting.items()}
    for label in sorted({*result.planned, *result.effects, *waiting}):
        table.add_row(
            label,
            f"{result.planned.get(label, 0):,}",
            f"{result.effects.get(label, 0):,}",
            f"{waiting[label]:,}" if label in waiting else "",
        )
    return table


def print_summary(console: Console, result: DemoResult) -> None:
    report = result.report
    console.rule(f"crmtier demo — {result.crm}, {result.customers:,} customers")
    if report is not None:
        value = next(d for d in report.distributions if d.dimension == "value_tier")
        console.print(
            _counts_table("Value tiers in the CRM", list(value.counts.items()), value.total)
        )
        risk = Table(title="Other dimensions", title_justify="left")
        risk.add_column("dimension")
        risk.add_column("levels")
        for dist in report.distributions:
            if dist.dimension != "value_tier":
                risk.add_row(dist.title, ", ".join(f"{k} {v:,}" for k, v in dist.counts.items()))
        console.print(risk)

    changes = Table(
        title="Edits made in the CRM → what crmtier did (through the webhook path)",
        title_justify="left",
    )
    changes.add_column("edit")
    changes.add_column("customers", justify="right")
    changes.add_column("result in the CRM")
    for label, n, text in grouped(result.outcomes):
        changes.add_row(label, str(n), text)
    console.print(changes)

    if report is not None and report.migration is not None and report.migration.total:
        m = report.migration
        moves = [(f"{r} → {c}", m.cell(r, c)) for r in m.rows for c in m.cols if m.cell(r, c)]
        console.print(_counts_table("Value-tier moves after the first sync", moves))

    phases = Table(title="Runs and API calls", title_justify="left")
    for col in ("phase", "runs", "read", "written", "API calls", "minimum", "status"):
        phases.add_column(col, justify="right" if col not in ("phase", "status") else "left")
    for p in result.phases:
        phases.add_row(
            p.name,
            str(p.runs),
            f"{p.read:,}",
            f"{p.written:,}",
            f"{p.api_used:,}",
            f"{p.api_minimum:,}",
            p.status,
        )
    console.print(phases)
    console.print(
        "API calls include the OAuth token request and, for webhooks, the re-fetch of the "
        "notified customers; the minimum counts full pages and full write batches (or one "
        "call per contact, for a CRM whose memberships cost that), as each run recorded it."
    )

    totals = [
        ("follow-up tasks in the CRM", result.tasks),
        ("campaign memberships in the CRM", result.memberships),
        ("webhook notifications received", result.webhook_events),
        *((f"first sync wrote: {kind}", n) for kind, n in sorted(result.writes.items())),
        *(
            (f"tasks waiting after the first sync (budget): {rule}", n)
            for rule, n in sorted(result.tasks_waiting.items())
        ),
    ]
    console.print(_counts_table("Side effects", totals, unit="count"))

    console.print(_planned_table(result))
    unwritten = sorted(k for k, n in result.planned.items() if result.effects.get(k, 0) < n)
    if unwritten:
        console.print(f"[bold red]Planned but not written:[/bold red] {', '.join(unwritten)}")
    else:
        console.print("Every task and membership the first sync planned was written.")

    if report is not None and report.dq_issues:
        dq = sorted(report.dq_issues.items(), key=lambda kv: -kv[1])
        console.print(_counts_table("Data-quality issues (first sync)", dq, unit="issues"))
    else:
        console.print("Data-quality issues (first sync): none found.")

    if result.household is not None:
        console.print(
            f"[bold]Household tiering:[/bold] {result.household.line()}. Decided from the "
            "CRM's households by the tiering core; households are opt-in: the sync writes "
            "this once the policy switches them on ([households] enabled = true)."
        )
    size = f"{result.report_bytes / 1024:.0f} KiB"
    console.print(f"[bold]Report:[/bold] {result.report_path} ({size})")
    kept = f"kept in {result.workdir}" if result.workdir.exists() else "removed"
    console.print(f"Sandbox data and crmtier.toml: {kept}. Finished in {result.seconds:.1f} s.")
