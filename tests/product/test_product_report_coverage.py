"""The report's advisor-coverage section (issue 21 §2): coverage per tier, RM load against
capacity, and the customers waiting for an RM, from one coverage plan."""

from __future__ import annotations

import re
from dataclasses import replace

from product_report_data import sample_report

from crmtier.report.coverage import CoverageRow, coverage_report
from crmtier.report.render import render
from tiering_core.coverage import Advisor, Client, plan
from tiering_core.policy_relations import CoveragePolicy

POLICY = CoveragePolicy(capacity=3)


def _plan():
    clients = [
        *(Client(f"a{k}", "private", "RM1") for k in range(3)),  # RM1 is full
        Client("b0", "wealth", "RM2"),
        *(Client(f"n{k}", "private", None) for k in range(4)),  # RM2 has room for 2
        Client("x", "affluent", None),  # not a coverage tier
    ]
    return plan(clients, [Advisor("RM1"), Advisor("RM2")], POLICY)


def test_figures_per_tier_and_per_rm() -> None:
    report = coverage_report(_plan())
    assert list(report.tiers) == [
        CoverageRow("private", 7, 5, 2, 2),
        CoverageRow("wealth", 1, 1, 0, 0),
    ]
    assert report.waiting == 2
    assert [(b.advisor_id, b.clients, b.load, b.capacity) for b in report.books] == [
        ("RM1", 3, 3.0, 3.0),
        ("RM2", 3, 2.5, 3.0),
    ]


def test_the_section_is_rendered_only_when_computed() -> None:
    assert 'id="coverage"' not in render(sample_report())
    page = render(replace(sample_report(), coverage=coverage_report(_plan())))
    section = page[page.index('id="coverage"') :]
    rows = re.findall(r"<tr><td>(RM\d)</td><td>(\d+)</td><td>([\d.]+)</td>", section)
    assert rows == [("RM1", "3", "3.00"), ("RM2", "3", "2.50")]
    assert "2 customer(s) wait for an RM" in section
