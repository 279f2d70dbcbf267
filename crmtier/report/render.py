"""Render a ``ReportData`` as one self-contained HTML file.

Self-contained means: inline CSS, inline SVG, no JavaScript, no web fonts, no images by
URL, and a Content-Security-Policy that forbids loading anything at all, so the file shows
the same on an air-gapped workstation as on the machine that wrote it and cannot phone
home. Each chart is followed by the table of numbers it draws (accessible, copyable,
checkable by an auditor).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from connectors.contract import data_calls
from crmtier.report.coverage import CoverageReport
from crmtier.report.households import render_households
from crmtier.report.html import _CSP, _CSS, _matrix, _note, _section, _share, _table
from crmtier.report.model import (
    ApiUse,
    DeadLetterRow,
    Distribution,
    FeedbackRow,
    LinkRow,
    Matrix,
    ReportData,
    RunRow,
)
from crmtier.report.svg import bar_chart


def _distribution(dist: Distribution) -> str:
    items = [(level, float(n)) for level, n in dist.counts.items()]
    chart = bar_chart(f"dist-{dist.dimension}", items, caption=f"{dist.title}: customers per level")
    table = _table(
        ["Level", "Customers", "Share"],
        [(level, n, _share(n, dist.total)) for level, n in dist.counts.items()],
        table_id=f"dist-{dist.dimension}",
    )
    return f"<figure><h3>{escape(dist.title)}</h3>{chart}{table}</figure>"


#: what each linked kind is, and the command that writes it
_LINK_KINDS = {
    "simulation": "Simulation (crmtier simulate --output-json)",
    "simulation page": "Simulation page (crmtier simulate --output-html)",
    "calibration": "Calibration figures (crmtier calibrate --report)",
    "proposal": "Proposed policy (crmtier calibrate --output)",
    "explanation": "Explanation (crmtier explain --output)",
}


def _linked(rows: Sequence[LinkRow]) -> str:
    """Links to the simulate, calibrate and explain outputs next to the report."""
    if not rows:
        return _note(
            "None found next to this report. Write them to the report's directory (crmtier "
            "simulate --output-json/--output-html, crmtier calibrate --output/--report, "
            "crmtier explain --output), or pass them with crmtier report --link."
        )
    body = "".join(
        f"<tr><td>{escape(_LINK_KINDS.get(r.kind, r.kind))}</td>"
        f'<td><a href="{escape(r.href)}" data-link="{escape(r.kind)}">{escape(r.name)}</a></td>'
        f"<td>{escape(r.summary)}</td><td>{escape(r.written)}</td></tr>"
        for r in rows
    )
    head = "".join(f"<th>{h}</th>" for h in ("Output", "File", "Summary", "Written (UTC)"))
    return (
        f'<table data-table="lifecycle"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


def _runs(runs: Sequence[RunRow]) -> str:
    if not runs:
        return _note("No sync run is recorded in the state store yet.")
    return _table(
        [
            "Run",
            "Trigger",
            "Status",
            "Started (UTC)",
            "Finished (UTC)",
            "Read",
            "Written",
            "Unchanged",
            "Dead-lettered",
            "Skipped",
            "Dry run",
            "Reason",
        ],
        [
            (
                r.run_id[:12],
                r.trigger,
                r.status,
                r.started_at,
                r.finished_at,
                r.read,
                r.written,
                r.unchanged,
                r.dead_lettered,
                r.skipped,
                r.dry_run,
                r.reason or "",
            )
            for r in runs
        ],
        table_id="runs",
    )


def _dead_letters(letters: Sequence[DeadLetterRow], total: int) -> str:
    if not total:
        return _note("No open dead letter: every planned write reached the CRM.")
    table = _table(
        ["CRM record id", "Write", "Error code", "Attempts", "Last attempt (UTC)"],
        [(d.crm_id, d.kind, d.error_code, d.attempts, d.last_at) for d in letters],
        table_id="dead-letters",
    )
    more = total - len(letters)
    if more:
        table += _note(f"… and {more:,} more: crmtier sync --dead-letters lists them all.")
    return table


def _restricted(items: Sequence[Distribution | Matrix]) -> str:
    parts = [
        _distribution(item) if isinstance(item, Distribution) else _matrix(f"restricted-{i}", item)
        for i, item in enumerate(items)
    ]
    return '<div class="grid">' + "".join(parts) + "</div>"


def _migration(matrix: Matrix | None) -> str:
    if matrix is None or not matrix.total:
        return _note("The last run changed no value tier.")
    return _matrix("migration", matrix)


def _dq(issues: dict[str, int]) -> str:
    if not issues:
        return _note("No data-quality issue was found in this run.")
    ordered = sorted(issues.items(), key=lambda kv: (-kv[1], kv[0]))
    chart = bar_chart("dq", [(k, float(v)) for k, v in ordered], caption="DQ issues by kind")
    return chart + _table(["Kind", "Issues"], ordered, table_id="dq")


def _api(api: ApiUse | None) -> str:
    if api is None:
        return _note("No API usage is recorded (no finished run read records yet).")
    items = [(kind, float(n)) for kind, n in sorted(api.calls.items())]
    items.append(("total", float(api.total)))
    marker = ("minimum", float(api.minimum)) if api.minimum is not None else None
    chart = bar_chart("api", items, caption="API calls by kind", marker=marker)
    rows: list[tuple[object, ...]] = [(kind, n) for kind, n in sorted(api.calls.items())]
    rows.append(("total", api.total))
    if api.minimum is not None:
        ratio = f"{data_calls(api.calls) / api.minimum:.2f}" if api.minimum else "–"
        rows.append(("theoretical minimum", api.minimum))
        rows.append(("data calls / minimum", ratio))
    return chart + _table(["Calls", "Count"], rows, table_id="api")


def _feedback(rows: Sequence[FeedbackRow] | None) -> str:
    if rows is None:
        return _note(
            "Feedback was not collected for this report (the state store keeps no customer "
            "inputs); run `crmtier report` with --feedback to read CSAT/NPS from the CRM."
        )
    if not rows:
        return _note("No customer has feedback data.")
    csat = bar_chart(
        "feedback-csat",
        [(r.tier, r.csat_mean or 0.0) for r in rows],
        caption="Mean CSAT (1-5) by value tier",
    )
    complaints = bar_chart(
        "feedback-complaints",
        [(r.tier, round(r.complaints_per_100, 2)) for r in rows],
        caption="Complaints in 12 months per 100 customers, by value tier",
    )
    table = _table(
        [
            "Value tier",
            "Customers",
            "CSAT answers",
            "Mean CSAT",
            "NPS answers",
            "Mean NPS",
            "Detractors",
            "Open complaints",
            "Complaints 12m",
            "per 100",
        ],
        [
            (
                r.tier,
                r.customers,
                r.csat_answers,
                r.csat_mean,
                r.nps_answers,
                r.nps_mean,
                r.detractors,
                r.open_complaints,
                r.complaints_12m,
                r.complaints_per_100,
            )
            for r in rows
        ],
        table_id="feedback",
    )
    return (
        f'<div class="grid"><figure><h3>Mean CSAT</h3>{csat}</figure>'
        f"<figure><h3>Complaints per 100 customers</h3>{complaints}</figure></div>{table}"
    )


def _coverage(report: CoverageReport) -> str:
    """Coverage per tier, then RM books fullest first."""
    tiers = _table(
        ["Value tier", "Customers", "Covered", "of which proposed", "Waiting for an RM"],
        [(r.tier, r.customers, r.covered, r.proposed, r.waiting) for r in report.tiers],
        table_id="coverage-tiers",
    )
    books = _table(
        ["RM", "Clients", "Load (private-equivalents)", "Capacity", "Used"],
        [
            (b.advisor_id, b.clients, b.load, b.capacity, f"{100.0 * b.load / b.capacity:.0f}%")
            for b in report.books
        ],
        table_id="coverage-books",
    )
    waiting = (
        _note(f"{report.waiting:,} customer(s) wait for an RM: no RM on the roster has room.")
        if report.waiting
        else ""
    )
    return f"<h3>Coverage per tier</h3>{tiers}{waiting}<h3>RM load against capacity</h3>{books}"


def render(data: ReportData) -> str:
    """The whole report page as one HTML string."""
    facts = [
        ("CRM", data.crm),
        ("Stream", data.stream),
        ("Policy", data.policy_version or "–"),
        ("Customers", f"{data.customers:,}"),
        ("Generated (UTC)", data.generated_at),
    ]
    header = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in facts)
    effects = ""
    if data.side_effects:
        effects = _table(
            ["Side effect in the CRM", "Active"],
            sorted(data.side_effects.items()),
            table_id="side-effects",
        )
    sections = [
        _section(
            "runs",
            "Sync runs",
            "The most recent runs, newest first. Read = unchanged + written + "
            "dead-lettered + skipped; the reason says why a run failed, paused or "
            "skipped records.",
            _runs(data.runs) + effects,
        ),
        _section(
            "dead-letters",
            "Open dead letters",
            f"{data.dead_letters_open:,} write(s) outlived their retries, oldest "
            "first; each is retried on every run until it succeeds or is acknowledged.",
            _dead_letters(data.dead_letters, data.dead_letters_open),
        ),
        _section(
            "distribution",
            "Tier distribution",
            "Customers per level of each dimension, as last written to the CRM.",
            '<div class="grid">' + "".join(_distribution(d) for d in data.distributions) + "</div>",
        ),
        _section(
            "migration",
            "Value-tier migration",
            f"From → to in {data.migration_scope}: rows are the tier before, columns the "
            "tier after; customers whose value tier stayed are not counted.",
            _migration(data.migration),
        ),
        _section(
            "value-risk",
            "Value × risk",
            "Where value and risk meet: high-value customers with high risk need both "
            "the advisor and the control functions.",
            '<div class="grid">'
            + "".join(_matrix(f"value-risk-{i}", m) for i, m in enumerate(data.value_risk))
            + "</div>",
        ),
        _section(
            "dq",
            "Data-quality issues",
            f"Issues found by {data.focus_label}, by kind.",
            _dq(dict(data.dq_issues)),
        ),
        _section(
            "api",
            "API usage",
            f"Calls made by {data.focus_label}, against the minimum "
            "the same work needs (target ratio 1.00).",
            _api(data.api),
        ),
        _section(
            "feedback",
            "Satisfaction and complaints by tier",
            "CSAT, NPS and complaints per value tier, so recurring problems are visible.",
            _feedback(data.feedback),
        ),
    ]
    sections.append(
        _section(
            "households",
            "Household versus individual tiers",
            "Customers whose household's summed assets lift their value tier "
            "(HOUSEHOLD_AUM), per tier; and each member's value tier against its best "
            "household's tier.",
            render_households(data.households),
        )
    )
    if data.coverage is not None:
        sections.append(
            _section(
                "coverage",
                "Advisor coverage",
                "Customers of the tiers that need a dedicated RM: covered by a suitable "
                "owner or a proposed RM, or waiting; each RM's load against capacity.",
                _coverage(data.coverage),
            )
        )
    sections.append(
        _section(
            "lifecycle",
            "Policy lifecycle: simulations, calibrations, explanations",
            "What a candidate policy would change, what the bank's history proposes, and "
            "why a customer has its tiers: the newest outputs next to this report.",
            _linked(data.linked),
        )
    )
    if data.restricted:
        sections.append(
            _section(
                "restricted",
                "Restricted: AML risk",
                "Confidential (PBOC 保密原则): for staff entitled to see AML ratings only.",
                _restricted(data.restricted),
            )
        )
    notes = "".join(_note(n) for n in data.notes)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(data.title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{escape(data.title)}</h1><dl>{header}</dl></header>"
        f"<main>{notes}{''.join(sections)}</main>"
        "<footer>Aggregate counts, and the CRM record ids of open dead letters: this report "
        "holds no customer name or amount. Its restricted section (AML risk) is "
        "confidential (PBOC 保密原则): share this file only with staff entitled to see AML "
        "ratings.</footer></body></html>\n"
    )
