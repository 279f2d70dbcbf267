"""The report renderer: self-contained HTML whose charts draw exactly the data given."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest
from product_report_data import HOUSEHOLD_CELLS, VALUE, sample_report

from crmtier.report.build import waiver_notes
from crmtier.report.model import ApiUse, Matrix, ReportData
from crmtier.report.render import render
from crmtier.report.svg import bar_chart, heatmap
from tiering_core.policy import load_policy


class _Marks(HTMLParser):
    """Collects drawn marks by chart and the external references of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.chart: str | None = None
        self.marks: dict[str, list[dict[str, str | None]]] = {}
        self.external: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "svg":
            self.chart = a.get("data-chart")
            self.marks.setdefault(self.chart or "", [])
        elif tag == "rect" and self.chart:
            self.marks[self.chart].append(a)
        if tag == "script":
            self.scripts += 1
        for name in ("src", "href"):
            value = a.get(name)
            if value and not value.startswith("#"):
                self.external.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.chart = None


@pytest.fixture(scope="module")
def page() -> str:
    return render(sample_report())


@pytest.fixture(scope="module")
def marks(page: str) -> _Marks:
    parser = _Marks()
    parser.feed(page)
    return parser


def test_page_is_self_contained(page: str, marks: _Marks) -> None:
    assert marks.external == []
    assert marks.scripts == 0
    assert "default-src 'none'" in page
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page)


def test_one_bar_per_level_with_its_value(marks: _Marks) -> None:
    bars = marks.marks["dist-value_tier"]
    assert [b["data-label"] for b in bars] == list(VALUE)
    assert [int(str(b["data-value"]).replace(",", "")) for b in bars] == list(VALUE.values())
    widths = [float(str(b["width"])) for b in bars]
    assert widths.index(max(widths)) == list(VALUE).index("mass")


def test_every_section_has_its_chart(marks: _Marks) -> None:
    expected = {
        "dist-value_tier": 5,
        "dist-needs_tier": 3,
        "dist-aml_risk": 4,
        "migration": 3 * 4,
        "value-risk-0": 5 * 4,
        "dq": 3,
        "api": 3,  # two kinds + total
        "feedback-csat": 2,
        "feedback-complaints": 2,
        "households-members": HOUSEHOLD_CELLS,
    }
    assert {k: len(v) for k, v in marks.marks.items()} == expected


def test_migration_cells_hold_the_counts(marks: _Marks) -> None:
    cells = {
        (c["data-row"], c["data-col"]): int(str(c["data-value"])) for c in marks.marks["migration"]
    }
    assert cells[("wealth", "private")] == 2
    assert cells[("mass", "affluent")] == 5
    assert sum(cells.values()) == 10


def test_tables_behind_the_charts(page: str) -> None:
    for table in (
        "dist-value_tier",
        "migration",
        "value-risk-0",
        "dq",
        "api",
        "feedback",
        "runs",
        "side-effects",
    ):
        assert f'data-table="{table}"' in page
    assert "data calls / minimum" in page
    assert "<td>1.00</td>" in page  # 11 calls for a minimum of 11


def test_token_calls_are_not_counted_against_the_minimum() -> None:
    data = sample_report()
    api = ApiUse(calls={"oauth_token": 3, **data.api.calls}, minimum=11)  # type: ignore[union-attr]
    page = render(replace(data, api=api))
    assert "<td>14</td>" in page  # the total still shows every call
    assert "<td>1.00</td>" in page  # but 11 data calls against a minimum of 11


def test_text_is_escaped(page: str) -> None:
    assert "&lt;test&gt;" in page and "<test>" not in page


def test_empty_sections_say_why() -> None:
    data = sample_report()
    empty = ReportData(
        **{
            **data.__dict__,
            "migration": None,
            "dq_issues": {},
            "api": None,
            "feedback": None,
            "runs": [],
        }
    )
    html = render(empty)
    assert "The last run changed no value tier." in html
    assert "No data-quality issue" in html
    assert "No API usage is recorded" in html
    assert "--feedback" in html
    assert "No sync run is recorded" in html


def test_marker_line_drawn_at_the_minimum() -> None:
    svg = bar_chart("x", [("used", 20.0)], caption="c", marker=("minimum", 10.0))
    x1 = float(re.search(r'class="marker" x1="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    bar_w = float(re.search(r'class="bar"[^>]*width="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    assert x1 - 190 == pytest.approx(bar_w / 2)


def test_heatmap_shades_by_count() -> None:
    m = Matrix("t", "r", "c", ["a"], ["x", "y", "z"], {("a", "x"): 10, ("a", "y"): 5})
    svg = heatmap("h", m)
    shades = [float(s) for s in re.findall(r'fill-opacity="([\d.]+)"', svg)]
    assert shades[0] == 1.0 and 0 < shades[1] < 1.0 and shades[2] == 0.0


def test_a_waived_regulatory_floor_is_shown_at_the_top_of_the_report(tmp_path: Path) -> None:
    path = tmp_path / "bank.toml"
    path.write_text(
        '[aml.overrides]\npep = "medium"\n[regulatory.waivers]\npep = "Board decision 2026-14"\n',
        encoding="utf-8",
    )
    policy = load_policy(path)
    notes = waiver_notes(policy)
    assert notes == [
        f"Policy {policy.version} waives the regulatory floor 'pep': Board decision 2026-14"
    ]
    html = render(replace(sample_report(), notes=notes))
    assert "waives the regulatory floor &#x27;pep&#x27;: Board decision 2026-14" in html
    assert waiver_notes(load_policy()) == []
