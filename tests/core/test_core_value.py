"""Value tier, profitability lift, hysteresis and value score, edge by edge (>= not >)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from core_support import AS_OF, codes, dq

from tiering_core.models import Assessment

Rate = Callable[..., Assessment]


def only(deposits: float | None, **more: Any) -> dict[str, Any]:
    return {"assets": {"deposits": deposits, "investments": 0, "insurance": 0}, **more}


@pytest.mark.parametrize(
    ("deposits", "tier", "code"),
    [
        (6_000_000, "private", "VAL_AUM_PRIVATE"),
        (5_999_999.99, "wealth", "VAL_AUM_WEALTH"),
        (500_000, "wealth", "VAL_AUM_WEALTH"),
        (499_999.99, "affluent", "VAL_AUM_AFFLUENT"),
        (50_000, "affluent", "VAL_AUM_AFFLUENT"),
        (49_999.99, "mass", "VAL_AUM_MASS"),
        (0, "mass", "VAL_AUM_MASS"),
    ],
)
def test_aum_floors_are_inclusive(rate: Rate, deposits: float, tier: str, code: str) -> None:
    a = rate(**only(deposits))
    assert a.value_tier == tier
    assert code in codes(a)
    assert a.status == "rated"


def test_aum_sums_deposits_investments_insurance(rate: Rate) -> None:
    a = rate(assets={"deposits": 200_000, "investments": 200_000, "insurance": 100_000})
    assert a.value_tier == "wealth"


def test_three_month_average_is_preferred_over_point_balances(rate: Rate) -> None:
    a = rate(**only(7_000_000), aum_avg_3m=450_000)
    assert a.value_tier == "affluent"


def test_missing_assets_are_unrated_never_mass(rate: Rate) -> None:
    a = rate(assets=None)
    assert (a.value_tier, a.status, a.value_score) == ("unrated", "unrated", None)
    assert "VAL_NO_AUM" in codes(a)
    assert ("DQ_MISSING", "assets") in dq(a)
    assert any(x.kind == "task" and x.rule == "data_remediation" for x in a.actions)


def test_partly_missing_assets_give_a_lower_bound_flagged_as_dq(rate: Rate) -> None:
    a = rate(assets={"deposits": 600_000, "investments": None, "insurance": None})
    assert a.value_tier == "wealth"
    assert a.status == "partial"
    assert {("DQ_MISSING", "assets.investments"), ("DQ_MISSING", "assets.insurance")} <= dq(a)


@pytest.mark.parametrize(
    ("deposits", "revenue", "tier", "lifted"),
    [
        (25_000, 2_500, "affluent", True),  # revenue at the floor, AUM exactly half the floor
        (24_999, 2_500, "mass", False),  # AUM just under half
        (25_000, 2_499, "mass", False),  # revenue just under
        (250_000, 25_000, "wealth", True),
        (3_000_000, 300_000, "private", True),  # lifted two tiers in one go
        (3_000_000, 299_999, "wealth", False),  # wealth by AUM already; private not reached
    ],
)
def test_profitability_lift(
    rate: Rate, deposits: float, revenue: float, tier: str, lifted: bool
) -> None:
    a = rate(
        **only(deposits),
        revenue_12m={"loan_interest": revenue, "product_fees": 0, "service_fees": 0},
    )
    assert a.value_tier == tier
    assert ("VAL_LIFT_PROFIT" in codes(a)) is lifted
    assert [r.code for r in a.reasons].count("VAL_LIFT_PROFIT") <= 1


def test_upgrade_takes_effect_at_once(rate: Rate) -> None:
    a = rate(**only(520_000), previous={"value_tier": "affluent"})
    assert a.value_tier == "wealth"
    assert "VAL_UPGRADE" in codes(a)
    assert a.below_floor_since is None


@pytest.mark.parametrize(
    ("deposits", "tier", "code", "since"),
    [
        (450_000, "wealth", "VAL_HELD_BUFFER", None),  # exactly floor - 10%: inside the buffer
        (449_999, "wealth", "VAL_HELD_GRACE", AS_OF),  # below the buffer: the clock starts today
        (500_000, "wealth", None, None),  # back at the floor: no clock
    ],
)
def test_downgrade_buffer(
    rate: Rate, deposits: float, tier: str, code: str | None, since: object
) -> None:
    a = rate(**only(deposits), previous={"value_tier": "wealth"})
    assert a.value_tier == tier
    assert code is None or code in codes(a)
    assert a.below_floor_since == since


@pytest.mark.parametrize(("days", "tier"), [(89, "wealth"), (90, "affluent"), (400, "affluent")])
def test_downgrade_after_grace_period(rate: Rate, days: int, tier: str) -> None:
    started = AS_OF - timedelta(days=days)
    a = rate(**only(300_000), previous={"value_tier": "wealth", "below_floor_since": started})
    assert a.value_tier == tier
    if tier == "wealth":
        assert a.below_floor_since == started  # carried for the sync layer to persist
        assert "VAL_HELD_GRACE" in codes(a)
    else:
        assert a.below_floor_since is None
        assert "VAL_DOWNGRADE" in codes(a)


def test_downgrade_lands_on_the_qualified_tier_not_one_step(rate: Rate) -> None:
    started = AS_OF - timedelta(days=120)
    a = rate(**only(1_000), previous={"value_tier": "private", "below_floor_since": started})
    assert a.value_tier == "mass"


def test_recovery_clears_the_clock(rate: Rate) -> None:
    started = AS_OF - timedelta(days=30)
    a = rate(**only(480_000), previous={"value_tier": "wealth", "below_floor_since": started})
    assert (a.value_tier, a.below_floor_since) == ("wealth", None)


def test_value_score_is_0_to_100_and_grows_with_aum(rate: Rate) -> None:
    scores = [rate(**only(d)).value_score or -1.0 for d in (0, 10_000, 100_000, 1e6, 1e7, 1e9)]
    assert all(0 <= s <= 100 for s in scores)
    assert scores == sorted(scores)
    assert scores[-1] >= 60 > scores[0]  # AUM saturates at its weight (60 of 100)


def test_value_score_leaves_missing_components_out(rate: Rate) -> None:
    full = rate(**only(100_000))
    no_activity = rate(**only(100_000), activity=None)
    assert full.value_score is not None and no_activity.value_score is not None
    assert no_activity.value_score != full.value_score


@pytest.mark.parametrize(
    ("activity", "code"),
    [
        ({"transactions_90d": 30, "digital_logins_90d": 1}, "VAL_ACTIVE"),
        ({"transactions_90d": 0, "digital_logins_90d": 0}, "VAL_DORMANT"),
    ],
)
def test_engagement_reasons(rate: Rate, activity: dict[str, int], code: str) -> None:
    assert code in codes(rate(activity=activity))


def test_29_transactions_are_not_active(rate: Rate) -> None:
    assert "VAL_ACTIVE" not in codes(rate(activity={"transactions_90d": 29}))


def test_previously_unrated_is_no_previous_tier_not_a_dq_issue(rate: Rate) -> None:
    a = rate(**only(600_000), previous={"value_tier": "unrated"})
    assert (a.value_tier, a.dq_issues, a.status) == ("wealth", (), "rated")
    assert "VAL_UPGRADE" not in codes(a)
