"""The report page's building blocks, shared by every page crmtier writes (the report,
the simulation page, the household section): the page's CSS and Content-Security-Policy,
tables, cross-tables with their heatmap, sections and notes. Kept apart from
``render.py`` so a section of its own module can use them without importing the page.

The names keep their underscore: they are the report package's internals, not an API.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from crmtier.report.model import Matrix
from crmtier.report.svg import heatmap

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_CSS = """
:root { --ink:#1d2733; --muted:#5b6776; --accent:#1f5fa8; --line:#d9dee5; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "PingFang SC",
       "Microsoft YaHei", sans-serif; color: var(--ink); margin: 0; background: #fff; }
header { background: var(--accent); color: #fff; padding: 20px 32px; }
header h1 { margin: 0 0 6px; font-size: 22px; }
header dl { display: flex; flex-wrap: wrap; gap: 4px 24px; margin: 0; font-size: 13px; }
header dt { opacity: .75; } header dd { margin: 0 0 0 6px; font-weight: 600; }
header div { display: flex; }
main { padding: 8px 32px 32px; max-width: 1180px; }
section { border-bottom: 1px solid var(--line); padding: 12px 0 20px; }
h2 { font-size: 18px; margin: 12px 0 8px; } h3 { font-size: 15px; margin: 14px 0 6px; }
p.lead { color: var(--muted); margin: 0 0 10px; }
.grid { display: grid; gap: 8px 28px;
        grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); }
figure { margin: 0; }
svg.chart { max-width: 100%; height: auto; font-size: 12px; }
svg .bar { fill: var(--accent); } svg .cell { fill: var(--accent); stroke: var(--line); }
svg .label, svg .row-head, svg .col-head { fill: var(--ink); }
svg .value, svg .marker-label { fill: var(--muted); }
svg .cell-value.light { fill: #fff; } svg .cell-value.dark { fill: var(--ink); }
svg .marker { stroke: #c0392b; stroke-width: 2; stroke-dasharray: 4 3; }
svg .marker-label { fill: #c0392b; }
table { border-collapse: collapse; margin: 6px 0 4px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: var(--bg); }
.note { background: #fff8e1; border-left: 4px solid #f0b429; padding: 6px 12px; margin: 6px 0; }
footer { color: var(--muted); font-size: 12px; padding: 16px 32px; }
a { color: var(--accent); }
"""


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return escape(str(value))


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, table_id: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<table data-table="{escape(table_id)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _share(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "–"


def _matrix(chart_id: str, matrix: Matrix) -> str:
    headers = [f"{matrix.row_label} \\ {matrix.col_label}", *matrix.cols, "Total"]
    rows = [
        (
            row,
            *(matrix.cell(row, col) for col in matrix.cols),
            sum(matrix.cell(row, col) for col in matrix.cols),
        )
        for row in matrix.rows
    ]
    return (
        f"<figure><h3>{escape(matrix.title)}</h3>{heatmap(chart_id, matrix)}"
        f"{_table(headers, rows, table_id=chart_id)}</figure>"
    )


def _section(section_id: str, title: str, lead: str, body: str) -> str:
    return (
        f'<section id="{section_id}"><h2>{escape(title)}</h2>'
        f'<p class="lead">{escape(lead)}</p>{body}</section>'
    )


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'
