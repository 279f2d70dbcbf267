"""Reading a history: a bad row costs only itself and is named by line and field."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from typing import Any

import numpy as np
import pytest
from calibrate_support import numbered

from connectors.sandbox.history import history_lines
from crmtier.calibrate import UnusableInput
from crmtier.calibrate.history import MISSING_ATTRIBUTE, history_csv_column, read_history
from crmtier.commands.tier import read_csv
from tiering_core.columns import Columns
from tiering_core.ingest import CHUNK
from tiering_core.models import CustomerProfile
from tiering_core.policy import Policy
from tiering_core.rules import quality

PERIOD = date(2025, 6, 30)


def _lines(edits: dict[int, str]) -> list[str]:
    lines = list(history_lines(10, seed=1))
    for index, text in edits.items():
        lines[index] = text
    return lines


@pytest.mark.parametrize(
    ("target", "bad", "message"),
    [
        ("revenue", "not json", "line 3: not valid JSON"),
        ("revenue", '{"period": "2024-06-30", "outcome": {}}', "line 3: field customer: "),
        (
            "revenue",
            '{"period": "yesterday", "customer": {"id": "x"}, "outcome": {}}',
            "line 3: field period: ",
        ),
        (
            "revenue",
            '{"period": "2024-06-30", "customer": {"id": "x", "assets": {"deposits": "lots"}},'
            ' "outcome": {"revenue_next_12m": 1}}',
            "line 3: field customer.assets.deposits: ",
        ),
        (
            "revenue",
            '{"period": "2024-06-30", "customer": {"id": "x"}, "outcome": {"attrited": true}}',
            "line 3: field outcome.revenue_next_12m: required for this target",
        ),
        (
            "attrition",
            '{"period": "2024-06-30", "customer": {"id": "x"}, "outcome": {"revenue_next_12m": 5}}',
            "line 3: field outcome.attrited: required",
        ),
    ],
)
def test_a_bad_row_is_reported_and_skipped(
    policy: Policy, target: str, bad: str, message: str
) -> None:
    reported: list[str] = []
    h = read_history(numbered(iter(_lines({2: bad}))), policy, target, reported.append)
    assert len(reported) == 1 and reported[0].startswith(message), reported
    assert (h.cols.n, h.skipped) == (19, 1)


def test_attributes_missing_on_a_row_are_a_group_of_their_own(policy: Policy) -> None:
    row = json.loads(next(history_lines(1, seed=1)))
    del row["attributes"]["gender"]
    lines = [json.dumps(row), *list(history_lines(3, seed=2))]
    h = read_history(numbered(iter(lines)), policy, "revenue", print)
    assert list(h.attributes["gender"]).count(MISSING_ATTRIBUTE) == 1


def test_no_usable_row_is_an_error(policy: Policy) -> None:
    with pytest.raises(UnusableInput, match="no usable row"):
        read_history(numbered(iter(["{}"])), policy, "revenue", lambda _: None)


def test_a_previous_tier_is_ignored(policy: Policy) -> None:
    """Point-in-time: a stored previous tier would hold customers by hysteresis."""
    row = json.loads(next(history_lines(1, seed=1)))
    row["customer"]["previous"] = {"value_tier": "private", "below_floor_since": "2024-01-01"}
    h = read_history(numbered(iter([json.dumps(row)])), policy, "revenue", print)
    assert h.cols.enum["previous_value_tier"].tolist() == [-1]


def test_a_previous_qualified_tier_is_ignored_too(policy: Policy) -> None:
    """An override's qualified tier would hold customers by hysteresis just the same."""
    row = json.loads(next(history_lines(1, seed=1)))
    row["customer"]["previous"] = {
        "value_tier": "private",
        "qualified_value_tier": "private",
        "qualified_below_floor_since": "2024-01-01",
    }
    h = read_history(numbered(iter([json.dumps(row)])), policy, "revenue", print)
    assert h.cols.enum["previous_qualified_tier"].tolist() == [-1]
    assert h.cols.qualified_below_floor_since is None


def test_an_attribute_first_seen_in_a_later_chunk_is_missing_before_it(policy: Policy) -> None:
    rows = [json.loads(line) for line in history_lines(CHUNK + 5, seed=1, periods=(PERIOD,))]
    rows[-1]["attributes"]["segment"] = "staff"
    h = read_history(numbered(iter(json.dumps(r) for r in rows)), policy, "revenue", print)
    segment = h.attributes["segment"].tolist()
    assert segment == [MISSING_ATTRIBUTE] * (CHUNK + 4) + ["staff"]
    assert h.attributes["region"].tolist() == [r["attributes"]["region"] for r in rows]


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A history row as CSV cells: dotted paths, lists ;-joined, booleans as text."""
    out: dict[str, str] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, "" if key == "customer" else f"{path}."))
        elif isinstance(value, list):
            out[path] = ";".join(value)
        else:
            out[path] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def test_a_csv_history_reads_as_its_json_lines_twin(policy: Policy) -> None:
    lines = list(history_lines(40, seed=4))
    rows = [_flat(json.loads(line)) for line in lines]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    source = io.BytesIO(text.getvalue().encode())
    from_csv = read_history(read_csv(source, history_csv_column), policy, "revenue", print)
    from_json = read_history(numbered(iter(lines)), policy, "revenue", print)
    assert "attributes.region" in rows[0] and "outcome.attrited" in rows[0]
    np.testing.assert_array_equal(from_csv.cols.numbers, from_json.cols.numbers)
    np.testing.assert_array_equal(from_csv.cols.advanced_products, from_json.cols.advanced_products)
    np.testing.assert_array_equal(from_csv.target, from_json.target)
    np.testing.assert_array_equal(from_csv.period, from_json.period)
    assert {k: v.tolist() for k, v in from_csv.attributes.items()} == {
        k: v.tolist() for k, v in from_json.attributes.items()
    }


def test_a_bad_csv_row_costs_only_itself(policy: Policy) -> None:
    source = io.BytesIO(
        b"period,id,assets.deposits,outcome.revenue_next_12m\n"
        b"2025-06-30,a,lots,5\n2025-06-30,b,10,5\n"
    )
    reported: list[str] = []
    h = read_history(read_csv(source, history_csv_column), policy, "revenue", reported.append)
    assert h.cols.n == 1
    assert reported == [reported[0]] and reported[0].startswith(
        "line 2: field customer.assets.deposits: "
    )


def test_chunks_join_into_the_columns_of_the_whole_history(policy: Policy) -> None:
    lines = list(history_lines(CHUNK + 7, seed=5, periods=(PERIOD,)))
    h = read_history(numbered(iter(lines)), policy, "revenue", print)
    profiles = [CustomerProfile.model_validate(json.loads(line)["customer"]) for line in lines]
    whole, _, _ = quality.check(Columns.from_profiles(profiles, policy), policy)
    for name in ("numbers", "flags", "products", "advanced_products", "fx_rate"):
        np.testing.assert_array_equal(getattr(h.cols, name), getattr(whole, name))
    assert h.cols.block.keys() == whole.block.keys()
    assert all((h.cols.block[k] == whole.block[k]).all() for k in whole.block)
