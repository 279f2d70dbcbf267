"""The report as a browser shows it: charts drawn, nothing failed, nothing fetched."""

from __future__ import annotations

from pathlib import Path

import pytest
from product_chromium import assert_report_drawn, needs_chromium, open_file
from product_report_data import VALUE, sample_report

from crmtier.report.render import render

pytestmark = [pytest.mark.browser, needs_chromium]


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
