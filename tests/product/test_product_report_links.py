"""The report links the policy-lifecycle outputs (``crmtier/report/links.py``): each file
recognised by its content, the newest of each kind found next to the report, a given file
that is no such output named in one line, links relative to the report."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from product_lifecycle_files import SIMULATION, write_all

from crmtier.report.links import NEWEST, discover, recognise


def test_each_output_is_recognised_by_its_content(tmp_path: Path) -> None:
    files = write_all(tmp_path)
    for kind, path in files.items():
        found = recognise(path)
        assert found is not None and found.kind == kind, path
    sim = recognise(files["simulation"])
    assert sim is not None
    assert sim.summary == (
        "bank@6033f5a08115 against default@a8e902f3ead0 as of 2026-12-06: 81 customers, "
        "7 move value tier, API calls +1"
    )


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("other.json", json.dumps({"some": "thing"})),
        ("list.json", "[1, 2]"),
        ("broken.json", "{"),
        ("half.json", json.dumps({**SIMULATION, "api_calls": None})),
        ("page.html", "<html><title>another page</title></html>"),
        ("policy.toml", 'name = "bank"\n'),
        ("notes.txt", "PROPOSED by crmtier calibrate"),
    ],
)
def test_anything_else_is_not_linked(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    assert recognise(path) is None
    found, problems = discover(tmp_path, [path])
    assert found == [] and problems == [
        f"--link {path}: not a simulate, calibrate or explain output"
    ]


def test_the_newest_of_each_kind_are_linked_relatively(tmp_path: Path) -> None:
    files = write_all(tmp_path / "out")
    for i in range(5):  # older simulations: only the newest NEWEST are listed
        old = tmp_path / "out" / f"old-{i}.json"
        old.write_text(json.dumps(SIMULATION), "utf-8")
        os.utime(old, (1_000_000 + i, 1_000_000 + i))
    report = tmp_path / "out" / "report.html"
    report.write_text("<title>crmtier policy simulation</title>", "utf-8")  # never itself
    elsewhere = tmp_path / "archive" / "sim.json"
    elsewhere.parent.mkdir()
    elsewhere.write_text(json.dumps(SIMULATION), "utf-8")
    found, problems = discover(report.parent, [elsewhere], skip=[report])
    assert problems == []
    names = [(f.kind, f.path.name) for f in found]
    sims = [n for k, n in names if k == "simulation"]
    assert sims[-2:] == ["old-4.json", "old-3.json"]  # the newest three here, and the given one
    assert len(sims) == NEWEST["simulation"] + 1
    assert {k for k, _ in names} == set(files)
    rows = {f.path.name: f.row(report.parent) for f in found}
    assert rows["sim page.html"].href == "sim%20page.html"
    assert rows["sim.json"].href in ("sim.json", elsewhere.resolve().as_uri())
