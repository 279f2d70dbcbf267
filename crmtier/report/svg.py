"""Inline SVG charts for the HTML report: horizontal bars and a heat-map table.

Hand-written SVG instead of a charting library, because the report must open from a mail
attachment on a bank workstation with no network and no script execution: no JavaScript,
no external fonts or stylesheets, nothing fetched. Every drawn mark carries a ``<title>``
(hover text and screen readers) and a class (``bar``, ``cell``) that tests count.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from crmtier.report.model import Matrix

_LABEL_W = 190
_BAR_H = 22
_GAP = 6
_PLOT_W = 420
_VALUE_W = 90


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def bar_chart(
    chart_id: str,
    items: Sequence[tuple[str, float]],
    *,
    caption: str,
    marker: tuple[str, float] | None = None,
) -> str:
    """Horizontal bars, one per ``(label, value)``; ``marker`` draws a labelled reference
    line (e.g. the minimum number of API calls) across the plot."""
    peak = max([v for _, v in items] + [marker[1] if marker else 0.0, 0.0])
    scale = _PLOT_W / peak if peak > 0 else 0.0
    height = max(len(items), 1) * (_BAR_H + _GAP) + _GAP + (18 if marker else 0)
    width = _LABEL_W + _PLOT_W + _VALUE_W
    parts = [
        f'<svg class="chart" data-chart="{escape(chart_id)}" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(caption)}</title>'
    ]
    for i, (label, value) in enumerate(items):
        y = _GAP + i * (_BAR_H + _GAP)
        w = max(value * scale, 0.0)
        parts.append(
            f'<text class="label" x="{_LABEL_W - 8}" y="{y + _BAR_H * 0.7:.1f}" '
            f'text-anchor="end">{escape(label)}</text>'
            f'<rect class="bar" data-label="{escape(label)}" data-value="{_fmt(value)}" '
            f'x="{_LABEL_W}" y="{y}" width="{w:.1f}" height="{_BAR_H}" rx="3">'
            f"<title>{escape(label)}: {_fmt(value)}</title></rect>"
            f'<text class="value" x="{_LABEL_W + w + 6:.1f}" y="{y + _BAR_H * 0.7:.1f}">'
            f"{_fmt(value)}</text>"
        )
    if marker is not None:
        x = _LABEL_W + marker[1] * scale
        parts.append(
            f'<line class="marker" x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height - 16}"/>'
            f'<text class="marker-label" x="{x:.1f}" y="{height - 4}" text-anchor="middle">'
            f"{escape(marker[0])} {_fmt(marker[1])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


_CELL_W = 92
_CELL_H = 30
_HEAD_H = 24
_ROW_HEAD_W = 110


def heatmap(chart_id: str, matrix: Matrix) -> str:
    """A cross-table drawn as shaded cells (darker = more customers), one ``cell`` rect per
    row x column, with the count written in the cell."""
    width = _ROW_HEAD_W + len(matrix.cols) * _CELL_W
    height = _HEAD_H + len(matrix.rows) * _CELL_H
    peak = matrix.peak
    parts = [
        f'<svg class="chart" data-chart="{escape(chart_id)}" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(matrix.title)}</title>'
    ]
    for j, col in enumerate(matrix.cols):
        x = _ROW_HEAD_W + j * _CELL_W + _CELL_W / 2
        parts.append(
            f'<text class="col-head" x="{x:.1f}" y="{_HEAD_H - 8}" '
            f'text-anchor="middle">{escape(col)}</text>'
        )
    for i, row in enumerate(matrix.rows):
        y = _HEAD_H + i * _CELL_H
        parts.append(
            f'<text class="row-head" x="{_ROW_HEAD_W - 8}" y="{y + _CELL_H * 0.65:.1f}" '
            f'text-anchor="end">{escape(row)}</text>'
        )
        for j, col in enumerate(matrix.cols):
            count = matrix.cell(row, col)
            shade = 0.06 + 0.94 * (count / peak) if peak and count else 0.0
            ink = "light" if shade > 0.55 else "dark"
            x = _ROW_HEAD_W + j * _CELL_W
            parts.append(
                f'<rect class="cell" data-row="{escape(row)}" data-col="{escape(col)}" '
                f'data-value="{count}" x="{x + 1}" y="{y + 1}" width="{_CELL_W - 2}" '
                f'height="{_CELL_H - 2}" fill-opacity="{shade:.3f}">'
                f"<title>{escape(row)} / {escape(col)}: {count:,}</title></rect>"
                f'<text class="cell-value {ink}" x="{x + _CELL_W / 2:.1f}" '
                f'y="{y + _CELL_H * 0.65:.1f}" text-anchor="middle">{count:,}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
