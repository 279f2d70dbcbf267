"""Headless Chromium for the report tests: the Debian ``chromium`` package driven by
Playwright (no browser download is possible here; ``.ci/install-browser`` installs it)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless Chromium (/usr/bin/chromium) is absent; .ci/install-browser installs it",
)


@dataclass
class Loaded:
    """What the browser saw while loading one page."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@contextmanager
def open_file(path: Path) -> Iterator[Loaded]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        # A persistent context on a fresh temporary directory is Playwright's way of giving
        # Chromium its own --user-data-dir (it refuses the flag itself).
        browser = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=FLAGS
        )
        try:
            page = browser.new_page()
            loaded = Loaded(page)
            page.on("console", lambda m: m.type == "error" and loaded.console_errors.append(m.text))
            page.on("pageerror", lambda e: loaded.console_errors.append(str(e)))
            page.on("requestfailed", lambda r: loaded.failed_requests.append(r.url))
            page.on("request", lambda r: loaded.requests.append(r.url))
            page.goto(path.resolve().as_uri(), wait_until="load")
            yield loaded
        finally:
            browser.close()


def assert_report_drawn(path: Path, expected_bars: dict[str, int]) -> Any:
    """Shared by the renderer test and the demo test: every chart is laid out with the
    expected marks, no console error, no failed or outgoing request. Returns the drawn
    widths of the value-tier bars."""
    with open_file(path) as loaded:
        page = loaded.page
        for chart, count in expected_bars.items():
            marks = page.locator(
                f'svg[data-chart="{chart}"] rect.bar, svg[data-chart="{chart}"] rect.cell'
            )
            assert marks.count() == count, chart
            box = page.locator(f'svg[data-chart="{chart}"]').bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 10, chart
        assert loaded.console_errors == []
        assert loaded.failed_requests == []
        assert loaded.requests == [path.resolve().as_uri()]
        bars = page.locator('svg[data-chart="dist-value_tier"] rect.bar')
        return [bars.nth(i).bounding_box()["width"] for i in range(bars.count())]
