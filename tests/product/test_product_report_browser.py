"""The report as a browser shows it: charts drawn, nothing failed, nothing fetched."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from product_chromium import assert_report_drawn, needs_chromium, open_file
from product_lifecycle_files import write_all
from product_report_data import HOUSEHOLD_CELLS, VALUE, sample_report

from crmtier.report.links import discover
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
            "households-members": HOUSEHOLD_CELLS,
        },
    )
    assert max(widths) == widths[list(VALUE).index("mass")]


def test_the_lifecycle_links_lead_to_their_files_in_chromium(tmp_path: Path) -> None:
    """Each simulate, calibrate and explain output next to the report is a link the
    browser resolves to that file; following the simulation page's link opens it."""
    files = write_all(tmp_path)
    report = tmp_path / "report.html"
    found, _ = discover(tmp_path, skip=[report])
    data = replace(sample_report(), linked=[f.row(tmp_path) for f in found])
    report.write_text(render(data), encoding="utf-8")
    with open_file(report) as loaded:
        page = loaded.page
        links = page.locator("table[data-table=lifecycle] a[data-link]")
        assert links.count() == len(files)
        for i in range(links.count()):
            link = links.nth(i)
            kind = link.get_attribute("data-link")
            target = link.evaluate("a => a.href")  # as the browser resolves it
            assert target == files[str(kind)].resolve().as_uri(), kind
            assert link.is_visible()
        page.locator("a[data-link='simulation page']").click()
        page.wait_for_load_state("load")
        assert page.title() == "crmtier policy simulation"
        assert loaded.console_errors == [] and loaded.failed_requests == []
