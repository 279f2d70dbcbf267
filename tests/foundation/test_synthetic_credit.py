"""The synthetic book's credit quality matches the regulator's published figures.

The generator draws each borrower's worst 五级分类 with the shares of commercial banks'
loans that the National Financial Regulatory Administration published for 2023 Q4 (NPL
ratio 1.59 %, 关注 2.22 %; docs/policy.md, "Calibration"). Rated with the default policy
(五级分类 and days past due), the share of credit-high customers among those with a credit
relationship must therefore sit at the published NPL ratio, and credit-medium at the
关注 ratio, not at the 42 % the book showed when it drew FICO-like scores uniformly.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from pydantic import ValidationError

from connectors.sandbox.generator import LOAN_CLASS_SHARES, NPL_RATIO, generate
from tiering_core.engine import decide_batch
from tiering_core.models import CustomerProfile
from tiering_core.policy import load_policy

SPECIAL_MENTION_RATIO = LOAN_CLASS_SHARES[1] / 100
#: NFRA's commercial-bank NPL ratio over 2023 Q4 - 2024 Q2 ran 1.56-1.59 %; the band
#: allows for that and for a book of a few thousand borrowers (a customer or two either way).
BAND = 0.003


def _credit_shares(n: int, seed: int) -> tuple[float, float]:
    profiles = []
    for c in generate(n, seed):
        try:
            profiles.append(CustomerProfile.model_validate({"id": c.id, **c.profile}))
        except ValidationError:
            continue  # the book's deliberately unreadable records
    levels = Counter(
        d["credit_risk"]
        for d in decide_batch(
            profiles, load_policy(), date(2026, 11, 28), kinds=frozenset({"set_field"})
        )
    )
    rated = levels["low"] + levels["medium"] + levels["high"]
    return levels["high"] / rated, levels["medium"] / rated


@pytest.mark.parametrize(("n", "seed"), [(2000, 7), (2000, 1), (5000, 3)])
def test_credit_high_and_medium_shares_match_the_published_ratios(n: int, seed: int) -> None:
    high, medium = _credit_shares(n, seed)
    assert NPL_RATIO - BAND <= high <= NPL_RATIO + BAND, f"credit-high share {high:.2%}"
    assert SPECIAL_MENTION_RATIO - BAND <= medium <= SPECIAL_MENTION_RATIO + BAND, (
        f"credit-medium share {medium:.2%}"
    )
