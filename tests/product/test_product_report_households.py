"""The report's household section (issue 21 §1 item 4): household versus individual tiers,
from the tiers the state store keeps, and shown on the page."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from product_report_data import STORED_HOUSEHOLDS, sample_report

from crmtier.report.collect import collect
from crmtier.report.households import household_report
from crmtier.report.render import render
from sync.planner import tiers_of
from sync.schema import customers
from sync.store import StateStore
from tiering_core.engine import decide_batch
from tiering_core.models import CustomerProfile
from tiering_core.policy import policy_over_default
from tiering_core.rules.household import HouseholdLinks, Link

AS_OF = datetime(2026, 11, 28, tzinfo=UTC).date()
POLICY = policy_over_default({"households": {"enabled": True}})


def stored(value: str, household: str | None = None, lifted: bool = False) -> dict[str, str]:
    t = {"value_tier": value, "status": "rated"}
    if household is not None:
        t |= {"household_tier": household, "household_lift": "yes" if lifted else "no"}
    return t


# (stored tiers, expected rows as (tier, customers, in a household, lifted), matrix cells)
CASES: list[tuple[list[dict[str, str]], list[tuple[str, int, int, int]], dict[Any, int]]] = [
    (
        [
            stored("private", "private", lifted=True),
            stored("private", "private"),
            stored("wealth", "none"),
            stored("mass", "mass"),
        ],
        [("private", 2, 2, 1), ("wealth", 1, 0, 0), ("mass", 1, 1, 0)],
        {("private", "private"): 2, ("wealth", "none"): 1, ("mass", "mass"): 1},
    ),
    # customers stored before households were read are left out, not counted as "none"
    (
        [stored("wealth", "private", lifted=False), stored("mass")],
        [("wealth", 1, 1, 0)],
        {("wealth", "private"): 1},
    ),
]


@pytest.mark.parametrize(("tiers", "rows", "cells"), CASES)
def test_household_figures(
    tiers: list[dict[str, str]], rows: list[tuple[str, int, int, int]], cells: dict[Any, int]
) -> None:
    report = household_report(tiers)
    assert report is not None
    assert [(r.tier, r.customers, r.in_household, r.lifted) for r in report.rows] == rows
    assert {k: v for k, v in report.members.cells.items() if v} == cells
    # household tiers in the ladder's order, then "none": only the columns found
    columns = [h for h in ("private", "wealth", "mass", "none") if h in {h for _, h in cells}]
    assert list(report.members.cols) == columns


def test_no_household_tiers_no_figures() -> None:
    assert household_report([stored("private"), stored("mass")]) is None
    assert "No household tiers are stored" in render(sample_report(households=False))


def person(cid: str, deposits: float) -> CustomerProfile:
    return CustomerProfile.model_validate(
        {
            "id": cid,
            "kind": "individual",
            "currency": "CNY",
            "assets": {"deposits": deposits, "investments": 0, "insurance": 0},
        }
    )


def test_stored_tiers_of_a_lifted_household_reach_the_report(tmp_path: Path) -> None:
    """The decisions' household tiers, stored as the sync stores them (``tiers_of``),
    collected from a real state store: a couple lifted into private, a single customer."""
    people = [person("A", 4_000_000), person("B", 2_500_000), person("C", 30_000)]
    links = HouseholdLinks.build(
        [p.id for p in people], [Link("A", "H1", "primary"), Link("B", "H1", "spouse")], POLICY
    )
    decided = decide_batch(people, POLICY, AS_OF, households=links)
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        with store.engine.begin() as conn:
            conn.execute(
                sa.insert(customers),
                [
                    {
                        "stream": "s",
                        "customer_id": d["id"],
                        "pseudonym": f"p{d['id']}",
                        "tiers": tiers_of(d),
                        "updated_at": "2026-11-28T00:00:00",
                    }
                    for d in decided
                ],
            )
        data = collect(store, crm="salesforce", stream="s")
    finally:
        store.close()
    assert data.households is not None
    rows = {r.tier: (r.customers, r.in_household, r.lifted) for r in data.households.rows}
    assert rows == {"private": (2, 2, 2), "mass": (1, 0, 0)}
    assert data.households.members.cell("private", "private") == 2
    assert data.households.members.cell("mass", "none") == 1
    page = render(data)
    assert 'data-table="households-lifted"' in page
    assert "H1" not in page  # counts only: no household named


def test_section_shows_the_figures() -> None:
    page = render(sample_report())
    section = re.search(r'<section id="households">.*?</section>', page, re.S)
    assert section is not None
    lifted = re.search(r'data-table="households-lifted".*?</table>', section.group(0), re.S)
    assert lifted is not None
    expected = household_report(STORED_HOUSEHOLDS)
    assert expected is not None
    for r in expected.rows:
        assert f"<td>{r.tier}</td><td>{r.customers:,}</td>" in lifted.group(0)
    assert 'data-chart="households-members"' in section.group(0)


def test_tiers_without_households_are_stored_as_before() -> None:
    """No household links: the stored tiers keep exactly their six codes, so a sync
    without households stores and audits what it did before."""
    (d,) = decide_batch([person("A", 4_000_000)], POLICY, AS_OF)
    assert set(tiers_of(d)) == {
        "value_tier", "needs_tier", "credit_risk", "aml_risk", "ops_risk", "status",
    }  # fmt: skip
