"""The proposed policy file: valid TOML that keeps the bank's own keys."""

from __future__ import annotations

import tomllib
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from crmtier.calibrate.proposal import proposed_document, to_toml
from tiering_core.policy import policy_over_default

scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
leaves = st.one_of(scalars, st.lists(st.one_of(st.text(max_size=8), st.integers()), max_size=4))
trees = st.recursive(
    st.dictionaries(st.text(min_size=1, max_size=8), leaves, max_size=4),
    lambda inner: st.dictionaries(
        st.text(min_size=1, max_size=8), st.one_of(leaves, inner), min_size=1, max_size=4
    ),
    max_leaves=12,
)


@given(trees)
@example({"0\n": False})  # a bare-looking key but for its final newline must be quoted
def test_toml_round_trips(doc: dict[str, Any]) -> None:
    assert tomllib.loads(to_toml(doc, ["a header"])) == doc


def test_the_proposal_keeps_the_current_files_other_keys() -> None:
    current = {
        "name": "bank",
        "value": {
            "buffer": 0.2,
            "tiers": {"private": {"aum_floor": 8_000_000, "revenue_floor": 400_000}},
        },
        "fx": {"USD": 7.1},
    }
    doc = proposed_document(
        current,
        {
            "name": "bank-calibrated-revenue",
            "value.tiers.private.aum_floor": 5_100_000.0,
            "needs.advanced_tiers": ["wealth"],
        },
    )
    assert doc == {
        "name": "bank-calibrated-revenue",
        "value": {
            "buffer": 0.2,
            "tiers": {"private": {"aum_floor": 5_100_000.0, "revenue_floor": 400_000}},
        },
        "fx": {"USD": 7.1},
        "needs": {"advanced_tiers": ["wealth"]},
    }
    assert current["value"]["tiers"]["private"]["aum_floor"] == 8_000_000  # not mutated
    text = to_toml(doc, ["PROPOSED"])
    assert text.startswith("# PROPOSED\n")
    policy = policy_over_default(tomllib.loads(text))
    assert (policy.floor("private"), policy.value.buffer, policy.fx["USD"]) == (5.1e6, 0.2, 7.1)
