"""The report as a browser shows it: charts drawn, nothing failed, nothing fetched."""

from __future__ import annotations

from pathlib import Path

import pytest
from product_chromium import needs_chromium, open_file
from product_report_data import VALUE, sample_report

from crmtier.report.render import render

pytestmark = [pytest.mark.browser, needs_chromium]


def assert_report_drawn(path: Path, expected_bars: dict[str, int]) -> None:
    """Shared by the renderer test and the demo test: every chart is laid out with the
    expected marks, no console error, no failed or outgoing request."""
    with open_file(path) as loaded:
        page = loaded.page
        for chart, count in expected_bars.items():
            marks = page.locator(f'svg[data-chart="{chart}"] rect.bar, '
                                 f'svg[data-chart="{chart}"] rect.cell')
            assert marks.count() == count, chart
            box = page.locator(f'svg[data-chart="{chart}"]').bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 10, chart
        assert loaded.console_errors == []
        assert loaded.failed_requests == []
        assert loaded.requests == [path.resolve().as_uri()]


def test_sample_report_renders_in_chromium(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text(render(sample_report()), encoding="utf-8")
    assert_report_drawn(
        path,
        {"dist-value_tier": len(VALUE), "migration": 12, "value-risk-0": 20, "dq": 3, "api": 3,
         "feedback-csat": 2},
    )
    with open_file(path) as loaded:
        bars = loaded.page.locator('svg[data-chart="dist-value_tier"] rect.bar')
        widths = [bars.nth(i).bounding_box()["width"] for i in range(bars.count())]
        assert max(widths) == widths[list(VALUE).index("mass")]
