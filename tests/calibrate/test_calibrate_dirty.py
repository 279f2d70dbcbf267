"""``crmtier calibrate`` fed thin, degenerate and dirty histories, as a bank's model-risk
team would: each ends as a proposal ``crmtier policy validate`` accepts, with a report that
is valid JSON (no NaN), or as one exit-2 line naming the field, period or record; never a
traceback, and never a fairness verdict on nothing to compare.

Before: an input no fitted row had (no activity block, say) ended in scikit-learn's
``ValueError: window shape cannot be larger than input array shape``; an outcome revenue
of 1e300 in ``cannot convert float NaN to integer``; a held-out period whose revenue was
all one value wrote ``"score_rank_correlation": NaN`` (not JSON); one whose revenue summed
below zero a negative revenue share; a sensitive attribute with one group, or none, in the
held-out period read "no four-fifths flag"; and a customer listed twice in one snapshot
counted twice in every figure."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connectors.sandbox.history import PERIODS, history_lines
from crmtier.calibrate.history import read_history
from crmtier.cli import cli
from tiering_core.policy import load_policy

HELD = PERIODS[-1].isoformat()
Row = dict[str, Any]


def _rows(customers: int = 8) -> list[Row]:
    return [json.loads(line) for line in history_lines(customers, 1)]


def _each(change: Callable[[Row], None], period: str | None = None) -> Callable[[list[Row]], None]:
    def apply(rows: list[Row]) -> None:
        for row in rows:
            if period is None or row["period"] == period:
                change(row)

    return apply


def _first(change: Callable[[Row], None]) -> Callable[[list[Row]], None]:
    return lambda rows: change(rows[0])


def _revenue(value: float) -> Callable[[Row], None]:
    return lambda row: row["outcome"].update(revenue_next_12m=value)


def _twice(rows: list[Row]) -> None:
    rows.insert(1, copy.deepcopy(rows[0]))


#: case -> (change to the 8-customer, 2-snapshot history, target, exit-2 line or None)
CASES: dict[str, tuple[Callable[[list[Row]], None], str, str | None]] = {
    "no-activity-block": (
        _each(lambda r: r["customer"].pop("activity")),
        "revenue",
        "input transactions_90d (customer.activity.transactions_90d): no row of the"
        " fitted periods 2024-06-30 has it",
    ),
    "no-assets-block": (
        _each(lambda r: r["customer"].pop("assets")),
        "attrition",
        "input aum (customer.assets): no row of the fitted periods 2024-06-30 has it",
    ),
    "no-trailing-revenue": (
        _each(lambda r: r["customer"].update(revenue_12m={})),
        "revenue",
        "input revenue_12m (customer.revenue_12m): no row of the fitted periods 2024-06-30 has it",
    ),
    "no-logins-held-out-only": (
        _each(lambda r: r["customer"]["activity"].pop("digital_logins_90d"), HELD),
        "revenue",
        None,
    ),
    "outcome-revenue-1e300": (_first(_revenue(1e300)), "revenue", None),
    "held-out-revenue-all-zero": (_each(_revenue(0.0), HELD), "revenue", None),
    "held-out-revenue-all-equal": (_each(_revenue(1e12), HELD), "revenue", None),
    "held-out-revenue-all-negative": (_each(_revenue(-1.0), HELD), "revenue", None),
    "all-equal-aum": (
        _each(lambda r: r["customer"].update(assets={"deposits": 100_000.0})),
        "revenue",
        None,
    ),
    "negative-outcome-revenue": (_first(_revenue(-5_000.0)), "revenue", None),
    "snapshots-out-of-order": (lambda rows: rows.reverse(), "revenue", None),
    "customer-twice-in-a-snapshot": (_twice, "revenue", None),
    "region-one-group-held-out": (
        _each(lambda r: r["attributes"].update(region="east"), HELD),
        "revenue",
        f"--sensitive region: the held-out period {HELD} has one group of it; disparate"
        " impact compares two or more",
    ),
    "region-absent-held-out": (
        _each(lambda r: r["attributes"].pop("region"), HELD),
        "attrition",
        f"--sensitive region: the held-out period {HELD} has no group of it; disparate"
        " impact compares two or more",
    ),
    "region-group-of-one": (
        _first(lambda r: r["attributes"].update(region="solo")),
        "revenue",
        None,
    ),
}


def _calibrate(tmp: Path, rows: list[Row], target: str) -> tuple[Any, Path, Path]:
    history, proposal, report = tmp / "h.jsonl", tmp / "p.toml", tmp / "r.json"
    history.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    args = ["calibrate", str(history), "--output", str(proposal), "--report", str(report)]
    result = CliRunner().invoke(cli, [*args, "--target", target, "--sensitive", "region"])
    return result, proposal, report


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_dirty_history_gives_a_valid_proposal_or_one_line_exit_2(
    tmp_path: Path, case: str
) -> None:
    change, target, error = CASES[case]
    rows = _rows()
    change(rows)
    result, proposal, report = _calibrate(tmp_path, rows, target)
    assert isinstance(result.exception, SystemExit | None), result.exc_info
    if error is not None:
        assert result.exit_code == 2, result.output
        [line] = [ln for ln in result.output.splitlines() if ln.startswith("Error: ")]
        assert line == f"Error: {tmp_path / 'h.jsonl'}: {error}"
        assert not proposal.exists()
        return
    assert result.exit_code == 0, result.output
    json.loads(report.read_text("utf-8"), parse_constant=_no_constant)
    validate = CliRunner().invoke(cli, ["policy", "validate", str(proposal)])
    assert validate.exit_code == 0, validate.output


def _no_constant(name: str) -> None:
    raise AssertionError(f"the report holds {name}, which is not JSON")


def test_revenue_lift_on_a_held_out_period_without_revenue_is_not_a_number_made_up(
    tmp_path: Path,
) -> None:
    rows = _rows()
    _each(_revenue(-1.0), HELD)(rows)
    _, _, report = _calibrate(tmp_path, rows, "revenue")
    for lift in json.loads(report.read_text("utf-8"))["lift"].values():
        assert lift["revenue_share"] is None and lift["lift"] is None
        assert lift["score_rank_correlation"] is None  # revenue all one value: no ranks


def test_a_customer_twice_in_a_snapshot_is_reported_and_counted_once(tmp_path: Path) -> None:
    rows = _rows()
    _twice(rows)
    result, _, report = _calibrate(tmp_path, rows, "revenue")
    assert result.exit_code == 0, result.output
    assert (
        "line 2: field customer.id: duplicate of line 1 in period 2024-06-30; skipped"
        in result.stderr
    )
    figures = json.loads(report.read_text("utf-8"))
    assert figures["rows"] == {"used": 16, "skipped": 1, "trained_on": 8}


def test_an_outcome_revenue_no_bank_books_is_reported_and_skipped(tmp_path: Path) -> None:
    rows = _rows()
    _first(_revenue(1e300))(rows)
    result, _, _ = _calibrate(tmp_path, rows, "revenue")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("line 1: field outcome.revenue_next_12m: ")


def test_each_listing_after_a_customer_s_first_in_a_snapshot_is_skipped() -> None:
    """Three listings in one snapshot, lines out of order across snapshots: the first line
    of each (customer, snapshot) stays; the same id in another snapshot is no duplicate."""
    rows = _rows(3)  # 2024 rows at lines 1-3, 2025 at lines 4-6
    rows += [copy.deepcopy(rows[4]), copy.deepcopy(rows[0]), copy.deepcopy(rows[4])]
    skipped: list[str] = []
    history = read_history(
        ((i, json.dumps(r).encode()) for i, r in enumerate(rows, 1)),
        load_policy(),
        "revenue",
        skipped.append,
    )
    assert skipped == [
        f"line 7: field customer.id: duplicate of line 5 in period {HELD}; skipped",
        "line 8: field customer.id: duplicate of line 1 in period 2024-06-30; skipped",
        f"line 9: field customer.id: duplicate of line 5 in period {HELD}; skipped",
    ]
    assert history.skipped == 3
    assert history.cols.ids == [r["customer"]["id"] for r in rows[:6]]
    assert len(history.period) == len(history.target) == len(history.attributes["region"]) == 6


def test_a_flag_names_the_group_it_is_measured_against_and_its_size(tmp_path: Path) -> None:
    """One customer who reaches private banking flags every other region: the verdict is
    the four-fifths rule's, and the summary says it rests on a group of one."""
    rows = _rows()
    _first(lambda r: r["attributes"].update(region="solo"))(rows)
    held = [r for r in rows if r["period"] == HELD]
    for row in held:
        row["customer"]["assets"] = {"deposits": 10_000.0}
    held[0]["attributes"]["region"] = "solo"
    held[0]["customer"]["assets"] = {"deposits": 90_000_000.0}
    result, _, _ = _calibrate(tmp_path, rows, "revenue")
    assert result.exit_code == 0, result.output
    [line] = [ln for ln in result.stdout.splitlines() if "fairness region (current)" in ln]
    assert "private or above 0.00 (against solo, 1 customer(s))" in line
