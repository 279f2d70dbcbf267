"""Proposed AUM floors are always in order: a floor the history cannot separate from its
neighbour's keeps the current one, and says so. Before, one step of the isotonic curve that
crossed two tiers' revenue floors (or a floor fitted above the kept floor of the tier above)
proposed floors out of order, and calibrate ended in a traceback (``PolicyError: private.
aum_floor must be > wealth.aum_floor``); 10 customers of the synthetic history, seed 8, did."""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path

import numpy as np
import pytest
from calibrate_support import exit_2_or_written
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from connectors.sandbox.history import history_lines
from crmtier.calibrate import fit
from crmtier.cli import cli
from tiering_core.policy import load_policy, policy_over_default
from tiering_core.rules.value import RANKED

REVENUE_FLOORS = {"private": 300_000.0, "wealth": 25_000.0, "affluent": 2_500.0}
CURRENT = {"private": 6_000_000.0, "wealth": 500_000.0, "affluent": 50_000.0}
BASE_REVENUE = 1_000.0  # below every revenue floor
APART = "cannot separate from"

#: revenue steps (from AUM, expected revenue) -> (proposed floors, why each kept tier is kept)
STEPS: dict[str, tuple[list[tuple[float, float]], dict[str, float], dict[str, str]]] = {
    "ordered-steps-all-proposed": (
        [(80_000, 3_000), (800_000, 30_000), (5_000_000, 400_000)],
        {"private": 5_000_000, "wealth": 800_000, "affluent": 80_000},
        {},
    ),
    "one-step-crosses-private-and-wealth": (
        [(80_000, 3_000), (2_000_000, 400_000)],
        {"private": 6_000_000, "wealth": 500_000, "affluent": 80_000},
        {"private": f"{APART} wealth", "wealth": f"{APART} private"},
    ),
    "one-step-crosses-wealth-and-affluent": (
        [(900_000, 30_000), (5_000_000, 400_000)],
        {"private": 5_000_000, "wealth": 500_000, "affluent": 50_000},
        {"wealth": f"{APART} affluent", "affluent": f"{APART} wealth"},
    ),
    "one-step-crosses-all-three": (
        [(2_000_000, 400_000)],
        CURRENT,
        {"private": f"{APART} wealth", "wealth": f"{APART} private", "affluent": f"{APART} wealth"},
    ),
    "private-never-reached-wealth-fitted-above-its-floor": (  # seed 8's shape
        [(71_000, 3_000), (19_000_000, 290_000)],
        {"private": 6_000_000, "wealth": 500_000, "affluent": 71_000},
        {"private": fit.NOT_SUPPORTED, "wealth": f"{APART} private"},
    ),
    "affluent-fitted-above-wealth-s-kept-floor": (
        [(700_000, 3_000), (2_000_000, 400_000)],
        CURRENT,
        {"private": f"{APART} wealth", "wealth": f"{APART} private", "affluent": f"{APART} wealth"},
    ),
    "two-steps-one-at-two-significant-figures": (
        [(80_000, 3_000), (1_230_000, 30_000), (1_240_000, 400_000)],
        {"private": 6_000_000, "wealth": 500_000, "affluent": 80_000},
        {"private": f"{APART} wealth", "wealth": f"{APART} private"},
    ),
}


def _ordered(floors: dict[str, float]) -> bool:
    return all(floors[a] > floors[b] > 0 for a, b in itertools.pairwise(RANKED))


@pytest.mark.parametrize("case", sorted(STEPS))
def test_floors_the_curve_cannot_separate_keep_the_current_ones(case: str) -> None:
    steps, proposed, why = STEPS[case]
    aum = np.union1d(np.geomspace(1_000, 50_000_000, 400), [a for a, _ in steps])
    revenue = np.full_like(aum, BASE_REVENUE)
    for start, level in steps:
        revenue[aum >= start] = level
    with fit.one_thread():
        floors, fitted, kept = fit.aum_floors(aum, revenue, REVENUE_FLOORS, CURRENT)
    assert floors == proposed
    assert kept == why
    assert _ordered(floors)
    assert set(fitted) == {t for t in RANKED if kept.get(t) != fit.NOT_SUPPORTED}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1e9), st.floats(0, 1e6)),
        min_size=1,
        max_size=12,
    ),
    st.lists(st.floats(1, 1e8), min_size=3, max_size=3, unique=True),
)
def test_any_small_history_gives_floors_in_order(
    points: list[tuple[float, float]], current_floors: list[float]
) -> None:
    """Each tier's floor is its fitted one, or the current one with the reason why."""
    aum, revenue = (np.array(column) for column in zip(*points, strict=True))
    current = dict(zip(RANKED, sorted(current_floors, reverse=True), strict=True))
    with fit.one_thread():
        floors, fitted, kept = fit.aum_floors(aum, revenue, REVENUE_FLOORS, current)
    assert _ordered(floors)
    for tier in RANKED:
        if tier in kept:
            assert floors[tier] == current[tier]
            assert kept[tier] in {fit.NOT_SUPPORTED, *(f"{APART} {t}" for t in RANKED)}
            assert (kept[tier] == fit.NOT_SUPPORTED) == (tier not in fitted)
        else:
            assert floors[tier] == fitted[tier]


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 15), st.integers(0, 2**16))
@example(customers=10, seed=8)  # the reviewer's: a traceback before
def test_a_thin_history_gives_a_valid_proposal_or_one_line_exit_2(
    tmp_path_factory: pytest.TempPathFactory, customers: int, seed: int
) -> None:
    tmp = tmp_path_factory.mktemp("thin")
    history, proposal = tmp / "h.jsonl", tmp / "p.toml"
    history.write_text("".join(f"{line}\n" for line in history_lines(customers, seed)), "utf-8")
    result = CliRunner().invoke(cli, ["calibrate", str(history), "--output", str(proposal)])
    if not exit_2_or_written(result, history, proposal):
        return
    proposed = policy_over_default(tomllib.loads(proposal.read_text("utf-8")))
    current = load_policy()
    for tier in RANKED:
        shown = next(ln for ln in result.output.splitlines() if f"AUM floor {tier} " in ln)
        if "(kept: " in shown:  # a kept floor is the current one, never a quiet change
            assert proposed.floor(tier) == current.floor(tier)


def test_the_summary_names_the_tier_a_floor_cannot_be_separated_from(tmp_path: Path) -> None:
    history = tmp_path / "h.jsonl"
    history.write_text("".join(f"{line}\n" for line in history_lines(10, 8)), "utf-8")
    result = CliRunner().invoke(cli, ["calibrate", str(history), "--output", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    lines = {ln.split()[2]: ln for ln in result.output.splitlines() if "AUM floor" in ln}
    assert lines["private"].endswith("6,000,000 (kept: not supported by the history)")
    assert lines["wealth"].endswith(
        "500,000 (kept: cannot separate from private; fitted 19,000,000)"
    )
