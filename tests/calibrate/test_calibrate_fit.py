"""Calibration recovers the planted ground truth, and never uses a protected attribute."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
from calibrate_support import CUSTOMERS, SEED, SENSITIVE, numbered
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from connectors.sandbox.history import TRUE_AUM_FLOORS, history_lines
from crmtier.calibrate import UnusableInput, features, fit
from crmtier.calibrate.history import History, read_history
from crmtier.calibrate.run import Calibration, calibrate
from tiering_core.policy import Policy, policy_over_default

TOLERANCE = 0.05


@pytest.mark.parametrize("tier", sorted(TRUE_AUM_FLOORS))
def test_recovers_the_planted_aum_floor(
    revenue_calibration: Calibration, policy: Policy, tier: str
) -> None:
    floor = revenue_calibration.report["proposal"]["aum_floors"][tier]
    truth = TRUE_AUM_FLOORS[tier]
    assert abs(policy.floor(tier) - truth) / truth > 2 * TOLERANCE  # echoing would fail
    assert not floor["kept"]
    assert abs(floor["proposed"] - truth) / truth <= TOLERANCE
    assert revenue_calibration.document["value"]["tiers"][tier]["aum_floor"] == floor["proposed"]


def test_revenue_driven_by_aum_gets_the_aum_weight(revenue_calibration: Calibration) -> None:
    """The planted revenue depends on AUM only: AUM must carry most of the score weight."""
    score = revenue_calibration.document["value"]["score"]
    assert sum(score[f"{c}_weight"] for c in features.COMPONENTS) == 100
    assert score["aum_weight"] >= 80


def test_needs_cut_off_follows_product_holding(revenue_calibration: Calibration) -> None:
    """Most customers hold an investment product from 400k AUM: wealth, not affluent."""
    needs = revenue_calibration.report["proposal"]["needs_advanced_tiers"]
    assert needs["proposed"] == ["wealth"]
    assert (
        needs["share_holding_advanced"]["wealth"]
        > 0.5
        > needs["share_holding_advanced"]["affluent"]
    )


def test_the_proposal_is_a_valid_policy_that_beats_the_current_one(
    revenue_calibration: Calibration,
) -> None:
    proposed = policy_over_default(revenue_calibration.document)
    assert proposed.name == "default-calibrated-revenue"
    lift = revenue_calibration.report["lift"]
    assert lift["proposed"]["lift"] > lift["current"]["lift"]


def test_protected_attributes_are_never_model_inputs(
    revenue_history: History, revenue_calibration: Calibration, policy: Policy
) -> None:
    """Shuffling every attribute changes the fairness report only, never the proposal."""
    rng = np.random.default_rng(0)
    shuffled = replace(
        revenue_history,
        attributes={
            name: rng.permutation(values) for name, values in revenue_history.attributes.items()
        },
    )
    again = calibrate(shuffled, policy, {}, "revenue", SENSITIVE)
    assert again.document == revenue_calibration.document
    assert again.report["proposal"] == revenue_calibration.report["proposal"]
    assert again.report["fairness"] != revenue_calibration.report["fairness"]
    assert not set(SENSITIVE) & set(features.FEATURES)
    assert features.matrix(revenue_history.cols, policy).shape[1] == len(features.FEATURES)


@pytest.mark.parametrize("name", sorted(features.FEATURES))
def test_a_model_input_cannot_be_declared_sensitive(name: str) -> None:
    with pytest.raises(UnusableInput, match=f"--sensitive {name}: is a model input"):
        features.check_not_inputs(["region", name])


def test_attrition_target_weights_engagement_and_keeps_floors(policy: Policy) -> None:
    h = read_history(numbered(history_lines(CUSTOMERS // 2, SEED)), policy, "attrition", print)
    c = calibrate(h, policy, {}, "attrition", [])
    floors = c.report["proposal"]["aum_floors"]
    assert all(f["kept"] and f["proposed"] == f["current"] for f in floors.values())
    assert "aum_floor" not in str(c.document)
    assert c.document["value"]["score"]["activity_weight"] >= 40  # engagement drives retention
    assert (
        c.report["lift"]["proposed"]["retention_auc"] > c.report["lift"]["current"]["retention_auc"]
    )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(3.5, 7.5), min_size=3, max_size=3, unique=True),
    st.integers(0, 2**32 - 1),
)
def test_isotonic_floors_find_any_noise_free_step(log_floors: list[float], seed: int) -> None:
    """Revenue that steps across each revenue floor exactly at an AUM floor: found, to the
    two significant figures a proposal is rounded to. Steps under 10 % apart can round to
    one floor, which a policy cannot take: test_calibrate_floors keeps those."""
    assume(all(b - a > math.log10(1.1) for a, b in itertools.pairwise(sorted(log_floors))))
    affluent, wealth, private = (10.0**f for f in sorted(log_floors))
    truth = {"private": private, "wealth": wealth, "affluent": affluent}
    revenue_floors = {"private": 300.0, "wealth": 30.0, "affluent": 3.0}
    aum = 10.0 ** np.random.default_rng(seed).uniform(3.0, 8.0, 20_000)
    revenue = np.select([aum >= private, aum >= wealth, aum >= affluent], [400.0, 40.0, 4.0], 1.0)
    with fit.one_thread():
        floors, _, kept = fit.aum_floors(aum, revenue, revenue_floors, truth)
    assert kept == {}
    for tier, floor in floors.items():
        assert abs(floor - truth[tier]) / truth[tier] <= 0.05 + 1e-3 * (tier == "private")
