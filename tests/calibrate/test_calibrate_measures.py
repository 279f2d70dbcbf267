"""PSI, lift and disparate impact against hand-computed figures, and their invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmtier.calibrate import measures

codes = st.lists(st.integers(0, 4), min_size=1, max_size=200).map(np.array)


@pytest.mark.parametrize(
    ("expected", "actual", "psi"),
    [
        ([0, 0, 1, 1], [0, 0, 1, 1], 0.0),
        # shares 0.5/0.5 -> 0.75/0.25: 0.25 ln 1.5 + 0.25 ln 2 (by hand)
        ([0, 0, 1, 1], [0, 0, 0, 1], 0.25 * math.log(1.5) + 0.25 * math.log(2.0)),
    ],
)
def test_psi_of_categories(expected: list[int], actual: list[int], psi: float) -> None:
    assert measures.psi_categories(np.array(expected), np.array(actual), 2) == round(psi, 4)


@pytest.mark.parametrize(
    ("shift", "reading"), [(0.0, "stable"), (0.4, "shift"), (1.0, "major shift")]
)
def test_psi_of_a_shifted_input(shift: float, reading: str) -> None:
    rng = np.random.default_rng(1)
    base, later = rng.normal(0, 1, 50_000), rng.normal(shift, 1, 50_000)
    assert measures.psi_reading(measures.psi(base, later)) == reading


def test_psi_counts_missing_values_as_their_own_bin() -> None:
    values = np.arange(100.0)
    half_missing = np.where(values < 50, np.nan, values)
    assert measures.psi(values, values) == 0.0
    assert measures.psi(values, half_missing) > measures.PSI_MAJOR


@given(codes, codes)
def test_psi_is_symmetric_and_never_negative(a: np.ndarray, b: np.ndarray) -> None:
    assert measures.psi_categories(a, b, 5) == measures.psi_categories(b, a, 5) >= 0


def test_disparate_impact_and_the_four_fifths_flag() -> None:
    # group a: 2 of 4 affluent or above (0.5); group b: 1 of 4 (0.25) -> ratio 0.5, flagged
    tier = np.array([2, 2, 3, 3, 2, 3, 3, 3])
    groups = np.array(["a"] * 4 + ["b"] * 4, dtype=object)
    f = measures.fairness(tier, groups)
    assert f["disparate_impact"]["a"]["affluent_or_above"] == 1.0
    assert f["disparate_impact"]["b"]["affluent_or_above"] == 0.5
    assert f["four_fifths_flags"] == ["b: affluent or above 0.50 (against a, 4 customer(s))"]
    assert f["tier_mix"]["b"] == {
        "customers": 4,
        "private": 0.0,
        "wealth": 0.0,
        "affluent": 0.25,
        "mass": 0.75,
    }
    assert f["disparate_impact"]["a"]["private_or_above"] is None  # nobody reaches it


def test_revenue_lift_by_hand() -> None:
    # 1 of 4 customers in the top tiers earns 60 of 100: lift 0.6 / 0.25 = 2.4
    lift = measures.revenue_lift(
        np.array([1, 2, 3, 3]), np.array([60.0, 20, 10, 10]), np.array([90.0, 50, 20, 10])
    )
    assert (lift["customer_share"], lift["revenue_share"], lift["lift"]) == (0.25, 0.6, 2.4)
    assert lift["score_rank_correlation"] == pytest.approx(0.9487, abs=1e-4)


@pytest.mark.parametrize(
    ("score", "stayed", "auc"),
    [
        ([1, 2, 3, 4], [0, 0, 1, 1], 1.0),
        ([1, 2, 3, 4], [1, 1, 0, 0], 0.0),
        ([1, 1, 1, 1], [0, 1, 0, 1], 0.5),  # ties count half
        ([1, 2, 2, 3], [0, 0, 1, 1], 0.875),
    ],
)
def test_retention_auc(score: list[float], stayed: list[int], auc: float) -> None:
    attrited = 1.0 - np.array(stayed, dtype=float)
    lift = measures.attrition_lift(np.full(4, 3), attrited, np.array(score, dtype=float))
    assert lift["retention_auc"] == auc


@given(st.lists(st.tuples(st.integers(0, 20), st.booleans()), min_size=2, max_size=100))
def test_auc_of_a_reversed_score_is_its_complement(rows: list[tuple[int, bool]]) -> None:
    score = np.array([r[0] for r in rows], dtype=float)
    attrited = np.array([r[1] for r in rows], dtype=float)
    tier = np.zeros(len(rows), dtype=int)
    up = measures.attrition_lift(tier, attrited, score)["retention_auc"]
    down = measures.attrition_lift(tier, attrited, -score)["retention_auc"]
    if up is None:
        assert down is None
    else:
        assert up + down == pytest.approx(1.0, abs=2e-4)
