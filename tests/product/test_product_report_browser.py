"""The report as a browser shows it: charts drawn, nothing failed, nothing fetched."""

from __future__ import annotations

from pathlib import Path

import pytest
from product_chromium import assert_report_drawn, needs_chromium
from product_report_data import VALUE, sample_report

from crmtier.report.render import render

pytestmark = [pytest.mark.browser, needs_chromium]


def test_sample_report_renders_in_chromium(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text(render(sample_report()), encoding="utf-8")
    widths = assert_report_drawn(
        path,
        {
            "dist-value_tier": len(VALUE),
            "migration": 12,
            "value-risk-0": 20,
            "dq": 3,
            "api": 3,
            "feedback-csat": 2,
        },
    )
    assert max(widths) == widths[list(VALUE).index("mass")]
