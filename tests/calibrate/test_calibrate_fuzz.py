"""Hypothesis feeds ``crmtier calibrate`` small histories made dirty a row at a time, as
an export from a bank's warehouse can be: missing optional blocks, NaN and infinite
figures, negative amounts, a customer listed twice, snapshots out of order, attributes
missing or of one group. Whatever it draws ends as a proposal ``crmtier policy validate``
accepts with a report that is JSON (no NaN) and a fairness section for each requested
attribute, or as one exit-2 line naming the history; never a traceback."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from calibrate_support import exit_2_or_written
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.sandbox.history import history_lines
from crmtier.cli import cli
from tiering_core.rules.value import RANKED

Row = dict[str, Any]
ODD = [math.nan, math.inf, -math.inf, -1.0, 0.0, 1e300, 1e-300]


def _set(row: Row, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        row = row.setdefault(key, {})
    row[last] = value


def _drop(row: Row, path: str) -> None:
    *parents, last = path.split(".")
    for key in parents:
        row = row.get(key, {})
    row.pop(last, None)


PATHS = [
    "customer.assets.deposits",
    "customer.assets.investments",
    "customer.revenue_12m.loan_interest",
    "customer.activity.transactions_90d",
    "customer.activity.digital_logins_90d",
    "outcome.revenue_next_12m",
]
BLOCKS = ["customer.assets", "customer.activity", "customer.revenue_12m", "attributes.region"]

change = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(PATHS), st.sampled_from(ODD)),
    st.tuples(st.just("drop"), st.sampled_from(BLOCKS + PATHS), st.none()),
    st.tuples(st.just("region"), st.just("attributes.region"), st.sampled_from(["east", "x"])),
    st.tuples(st.just("attrited"), st.just("outcome.attrited"), st.booleans()),
    st.tuples(st.just("twice"), st.none(), st.none()),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    customers=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    changes=st.lists(st.tuples(st.integers(0, 2**16), change), max_size=12),
    every_row=st.lists(st.tuples(st.just("all"), change), max_size=2),
    reverse=st.booleans(),
    target=st.sampled_from(["revenue", "attrition"]),
)
def test_any_dirty_history_ends_in_a_valid_proposal_or_one_exit_2_line(
    tmp_path: Path,
    customers: int,
    seed: int,
    changes: list[tuple[int, tuple[str, Any, Any]]],
    every_row: list[tuple[str, tuple[str, Any, Any]]],
    reverse: bool,
    target: str,
) -> None:
    rows = [json.loads(line) for line in history_lines(customers, seed)]
    for at, (kind, path, value) in changes:
        _apply(rows, at % len(rows), kind, path, value)
    for _, (kind, path, value) in every_row:
        for at in range(len(rows)):
            _apply(rows, at, kind, path, value)
    if reverse:
        rows.reverse()
    history, proposal, report = tmp_path / "h.jsonl", tmp_path / "p.toml", tmp_path / "r.json"
    for stale in (proposal, report):
        stale.unlink(missing_ok=True)
    history.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    args = ["calibrate", str(history), "--output", str(proposal), "--report", str(report)]
    result = CliRunner().invoke(cli, [*args, "--target", target, "--sensitive", "region"])
    if not exit_2_or_written(result, history, proposal):
        return
    figures = json.loads(report.read_text("utf-8"), parse_constant=_not_json)
    validate = CliRunner().invoke(cli, ["policy", "validate", str(proposal)])
    assert validate.exit_code == 0, validate.output
    for name, fairness in figures["fairness"]["region"].items():
        assert len(fairness["tier_mix"]) >= 2, name  # a verdict compares two groups or more
    for tier in RANKED:
        floor = figures["proposal"]["aum_floors"][tier]
        if floor["kept"]:  # a kept floor is the current one, never a quiet change
            assert floor["proposed"] == floor["current"] and floor["kept_because"]
        else:
            assert floor["proposed"] == floor["fitted"]


def _apply(rows: list[Row], at: int, kind: str, path: str | None, value: Any) -> None:
    if kind == "twice":
        rows.insert(at, json.loads(json.dumps(rows[at])))
    elif kind == "drop":
        _drop(rows[at], str(path))
    else:
        _set(rows[at], str(path), value)


def _not_json(name: str) -> None:
    raise AssertionError(f"the report holds {name}, which is not JSON")


pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
