"""The ``crmtier simulate --output-html`` page in headless Chromium, like the report: every
heat map laid out with one cell per level pair, no script error, nothing requested."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from product_chromium import needs_chromium, open_file

from crmtier.report.simulation import render_simulation

pytestmark = [pytest.mark.browser, needs_chromium]


def sample(with_aml: bool) -> dict[str, Any]:
    levels = ["private", "wealth", "affluent", "mass"]
    migration: dict[str, Any] = {
        "value": {
            "levels": levels,
            "moved": 7,
            "counts": [[5, 0, 0, 0], [2, 9, 0, 0], [3, 1, 20, 0], [0, 0, 1, 40]],
        },
        "credit": {"levels": ["low", "high"], "moved": 1, "counts": [[30, 1], [0, 4]]},
    }
    if with_aml:
        migration["aml"] = {"levels": ["low", "high"], "moved": 0, "counts": [[33, 0], [0, 2]]}
    return {
        "active_policy": "default@a8e902f3ead0",
        "candidate_policy": "bank@6033f5a08115",
        "as_of": "2026-12-06",
        "customers": 81,
        "customers_decided_differently": 12,
        "restricted_shown": with_aml,
        "migration": migration,
        "movers_over_one_step": {"value": {"count": 3, "crm_ids": ["001A", "001B", "001C"]}},
        "tasks": {
            "upgrade_call": {
                "active_created": 0,
                "candidate_created": 7,
                "active_closed": 0,
                "candidate_closed": 0,
                "active_now": 0,
                "candidate_now": 3,
                "active_waiting": 0,
                "candidate_waiting": 4,
                "waiting_in_store": 0,
            }
        },
        "campaigns": {},
        "fields": {},
        "api_calls": {
            "active": {},
            "candidate": {"task": 1, "field_update": 1},
            "change": 2,
            "read": {},
        },
    }


@pytest.mark.parametrize("with_aml", [False, True])
def test_simulation_page_renders_in_chromium(tmp_path: Path, with_aml: bool) -> None:
    path = tmp_path / "simulate.html"
    path.write_text(render_simulation(sample(with_aml), "salesforce"), encoding="utf-8")
    with open_file(path) as loaded:
        page = loaded.page
        for name, cells in (("value", 16), ("credit", 4), ("aml", 4)):
            chart = page.locator(f'svg[data-chart="simulate-{name}"]')
            if name == "aml" and not with_aml:
                assert chart.count() == 0
                continue
            assert page.locator(f'svg[data-chart="simulate-{name}"] rect.cell').count() == cells
            box = chart.bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 10, name
        assert page.locator("section#restricted").count() == (1 if with_aml else 0)
        assert page.locator('table[data-table="simulate-movers"]').inner_text().count("001") == 3
        tasks = page.locator('table[data-table="simulate-tasks"]')
        assert "Within budget now (candidate)" in tasks.inner_text()
        cells = tasks.locator("tbody tr").first.locator("td").all_inner_texts()
        assert cells == ["upgrade_call", "0", "7", "0", "3", "0", "4", "0", "0"]
        assert loaded.console_errors == []
        assert loaded.failed_requests == []
        assert loaded.requests == [path.resolve().as_uri()]
