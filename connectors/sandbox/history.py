"""A synthetic bank *history* with a known ground truth, for ``crmtier calibrate``.

Each line is one customer at one snapshot date (the calibrate history format, docs/calibrate.md):
the customer's canonical profile as it stood then, descriptive attributes the bank may mark
as sensitive (region, age band, gender), and what happened over the following 12 months
(revenue earned, whether the customer left). The ground truth is planted so a test can
check that calibration recovers it:

* expected next-12-month revenue is a step function of AUM that jumps across each of the
  default policy's revenue floors (300k / 25k / 2.5k CNY) exactly at ``TRUE_AUM_FLOORS``
  (5M / 800k / 80k CNY), deliberately not the default AUM floors (6M / 500k / 50k), so a
  calibration that echoed the current policy would fail the test;
* attrition falls with engagement (transactions, logins) and a little with AUM;
* older customers hold more AUM, so the fairness report has a real age-band disparity to
  find, although no attribute is ever a model input;
* the share holding investment products rises with AUM, through 50 % at ``ADVANCED_FROM_AUM``.

AUM is drawn log-uniformly (1k to 50M CNY, shifted by age band) so every floor has
customers on both sides of it; this is a calibration test book, not a realistic tier mix.
The same ``(n, seed)`` always yields the same history.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import numpy as np

TRUE_AUM_FLOORS: dict[str, float] = {
    "private": 5_000_000.0,
    "wealth": 800_000.0,
    "affluent": 80_000.0,
}
#: Expected revenue just above each floor: 1.2x the default policy's revenue floor of the tier.
_LEVEL_AT_FLOOR = {"private": 360_000.0, "wealth": 30_000.0, "affluent": 3_000.0}
_MASS_LEVEL = 1_250.0  # expected revenue at 80k AUM from below: half the affluent revenue floor
ADVANCED_FROM_AUM = 400_000.0
PERIODS = (date(2024, 6, 30), date(2025, 6, 30))
REGIONS = ("east", "north", "south", "west")
AGE_BANDS = ("18-34", "35-54", "55+")
_AGE_SHARES = (0.3, 0.45, 0.25)
_AGE_SHIFT = (-0.5, 0.0, 0.3)  # log10 AUM shift by age band
GENDERS = ("f", "m")
BASIC_PRODUCTS = ("deposit", "credit_card", "mortgage")
ADVANCED_PRODUCTS = ("fund", "wealth_mgmt", "insurance", "bond")
_REVENUE_NOISE = 0.6  # sigma of the log-normal, mean-one noise on realised revenue


def expected_revenue(aum: np.ndarray) -> np.ndarray:
    """The ground truth: expected next-12-month revenue (CNY) at each AUM."""
    revenue = _MASS_LEVEL * np.sqrt(aum / TRUE_AUM_FLOORS["affluent"])
    for tier in ("affluent", "wealth", "private"):
        floor = TRUE_AUM_FLOORS[tier]
        revenue = np.where(aum >= floor, _LEVEL_AT_FLOOR[tier] * np.sqrt(aum / floor), revenue)
    return np.asarray(revenue, dtype=np.float64)


def history_lines(n: int, seed: int = 0, periods: tuple[date, ...] = PERIODS) -> Iterator[str]:
    """JSON Lines of ``n`` customers at each of ``periods`` (period-major order)."""
    rng = np.random.default_rng(seed)
    age = rng.choice(len(AGE_BANDS), size=n, p=_AGE_SHARES)
    region = rng.integers(0, len(REGIONS), size=n)
    gender = rng.integers(0, len(GENDERS), size=n)
    log_aum = rng.uniform(3.0, 7.7, size=n) + np.asarray(_AGE_SHIFT)[age]
    engagement = rng.uniform(0.0, 1.0, size=n)  # latent: drives activity and retention
    for period in periods:
        aum = 10.0**log_aum
        yield from _period_lines(rng, period, aum, engagement, age, region, gender)
        log_aum = log_aum + rng.normal(0.01, 0.06, size=n)  # the book drifts a little


def _period_lines(
    rng: np.random.Generator,
    period: date,
    aum: np.ndarray,
    engagement: np.ndarray,
    age: np.ndarray,
    region: np.ndarray,
    gender: np.ndarray,
) -> Iterator[str]:
    n = len(aum)
    truth = expected_revenue(aum)
    trailing = truth * _mean_one_noise(rng, 0.5, n)
    future = truth * _mean_one_noise(rng, _REVENUE_NOISE, n)
    transactions = rng.poisson(2 + 60 * engagement)
    logins = rng.poisson(5 + 120 * engagement)
    p_advanced = 1.0 / (1.0 + np.exp(-3.0 * (np.log10(aum) - np.log10(ADVANCED_FROM_AUM))))
    advanced = rng.uniform(size=n) < p_advanced
    n_basic = rng.integers(1, 3, size=n)
    logit = 1.0 - 4.0 * engagement - 0.3 * np.log10(aum / 10_000.0)
    attrited = rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-logit))
    deposit_share = rng.uniform(0.3, 0.9, size=n)
    stamp = period.isoformat()
    for i in range(n):
        products = list(BASIC_PRODUCTS[: n_basic[i]])
        if advanced[i]:
            products.append(ADVANCED_PRODUCTS[i % len(ADVANCED_PRODUCTS)])
        deposits = round(float(aum[i] * deposit_share[i]), 2)
        customer = {
            "id": f"h{i:07d}",
            "kind": "individual",
            "assets": {"deposits": deposits, "investments": round(float(aum[i]) - deposits, 2)},
            "activity": {
                "transactions_90d": int(transactions[i]),
                "digital_logins_90d": int(logins[i]),
                "products_held": products,
            },
            "revenue_12m": {
                "loan_interest": round(float(trailing[i]) * 0.5, 2),
                "product_fees": round(float(trailing[i]) * 0.3, 2),
                "service_fees": round(float(trailing[i]) * 0.2, 2),
            },
        }
        yield json.dumps(
            {
                "period": stamp,
                "customer": customer,
                "attributes": {
                    "region": REGIONS[region[i]],
                    "age_band": AGE_BANDS[age[i]],
                    "gender": GENDERS[gender[i]],
                },
                "outcome": {
                    "revenue_next_12m": round(float(future[i]), 2),
                    "attrited": bool(attrited[i]),
                },
            },
            separators=(",", ":"),
        )


def _mean_one_noise(rng: np.random.Generator, sigma: float, n: int) -> np.ndarray:
    """Log-normal multipliers with mean 1, so noise does not move the expected revenue."""
    return np.asarray(rng.lognormal(-sigma * sigma / 2.0, sigma, size=n))
