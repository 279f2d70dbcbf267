"""Fit a monotone model on the history and read a proposed policy off it.

The model is scikit-learn's histogram gradient boosting with a monotonic constraint on every
input (``monotonic_cst``): more AUM, revenue or activity never predicts *less* revenue
(target ``revenue``) or *more* attrition (target ``attrition``), so the model cannot learn
a rule a relationship manager could not explain, and an input's importance is the weight
of a direction everyone agrees on.

What is proposed, and how:

* AUM floors (target ``revenue``): next-12-month revenue is fitted against AUM alone by
  isotonic regression (monotone binning, the scorecard way); a tier's floor is the lowest
  AUM at which the expected revenue reaches that tier's ``revenue_floor`` in the current
  policy, rounded to two significant figures. A floor the curve never reaches is kept.
  Two neighbouring floors the curve cannot put in order (one step of it crosses both
  tiers' revenue floors, or a floor lands at or above the kept floor of the tier above) are
  both kept too, with the reason: a policy needs each floor strictly above the next, and a
  proposal is never invalid nor quietly moved off what the history says.
  AUM alone, not the boosting model's predictions: those share AUM's effect with trailing
  revenue (the two move together), which measured as floors biased up to 15 % high on
  the synthetic history whose breakpoints are known.
* value-score weights: each input's permutation importance on the held-out period, summed
  per score component (``features.FEATURES``) and scaled to 100.
* needs cut-offs: a value tier (under the proposed floors) is an ``advanced_tiers`` tier
  when most of its customers already hold an investment or insurance product;
  ``professional_tiers`` is left to the policy (investor suitability is a legal class).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from crmtier.calibrate.features import COMPONENTS, FEATURES
from tiering_core.rules.base import VALUE_TIERS
from tiering_core.rules.value import RANKED

ML_EXTRA_MISSING = "crmtier calibrate needs scikit-learn: pip install 'crmtier[ml]'"
IMPORTANCE_ROWS = 100_000  # held-out rows sampled for permutation importance
ADVANCED_MAJORITY = 0.5


class MissingExtra(RuntimeError):
    """The optional ``ml`` extra (scikit-learn) is not installed."""


def ml() -> Any:
    """The scikit-learn modules calibrate uses, or ``MissingExtra``."""
    try:
        import sklearn.ensemble
        import sklearn.inspection
        import sklearn.isotonic
    except ImportError:
        raise MissingExtra(ML_EXTRA_MISSING) from None
    return sklearn


def one_thread() -> Any:
    """A context in which scikit-learn's OpenMP loops use one thread. Calibration shares
    its machine with crmtier sync and the webhook worker; on a busy host, OpenMP threads
    competing for cores measured three to ten times slower than one thread."""
    import threadpoolctl  # a dependency of scikit-learn

    ml()  # loads scikit-learn's OpenMP runtime: a limit set before that is not applied
    return threadpoolctl.threadpool_limits(limits=1)


def fit_model(x: np.ndarray, y: np.ndarray, target: str, seed: int) -> Any:
    """A monotone gradient-boosting model of ``y`` (revenue, or attrited 1/0) on ``x``."""
    ensemble = ml().ensemble
    sign = 1 if target == "revenue" else -1
    params: dict[str, Any] = {
        "monotonic_cst": [sign] * x.shape[1],
        "max_iter": 200,
        "learning_rate": 0.1,
        "early_stopping": False,
        "random_state": seed,
    }
    assert x.shape[1] == len(FEATURES), "only the declared inputs may reach the model"
    if target == "revenue":
        return ensemble.HistGradientBoostingRegressor(**params).fit(x, y)
    return ensemble.HistGradientBoostingClassifier(**params).fit(x, y)


NOT_SUPPORTED = "not supported by the history"


def aum_floors(
    aum: np.ndarray,
    revenue: np.ndarray,
    revenue_floors: dict[str, float],
    current: dict[str, float],
) -> tuple[dict[str, float], dict[str, float], dict[str, str]]:
    """Per ranked tier, the lowest AUM whose expected revenue (the isotonic fit of
    ``revenue`` on ``aum``) reaches the tier's revenue floor: the floors proposed, those
    fitted (a tier the curve never reaches is absent), and why each kept tier keeps its
    ``current`` floor. ``current`` must be ordered (a validated policy's)."""
    iso = ml().isotonic.IsotonicRegression(increasing=True, out_of_bounds="clip")
    known = np.isfinite(aum) & np.isfinite(revenue)
    iso.fit(aum[known], revenue[known])
    xs, ys = np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_)
    fitted: dict[str, float] = {}
    for tier in RANKED:
        reached = np.flatnonzero(ys >= revenue_floors[tier])
        if reached.size and xs[reached[0]] > 0:
            fitted[tier] = _two_figures(float(xs[reached[0]]))
    floors: dict[str, float] = {t: fitted.get(t, current[t]) for t in RANKED}
    kept: dict[str, str] = {t: NOT_SUPPORTED for t in RANKED if t not in fitted}
    while (pair := _unordered(floors, kept)) is not None:
        # keep both: the history cannot say where one tier ends and the other begins. The
        # loop ends: each turn keeps one tier more, and the kept floors are in order.
        upper, lower = pair
        for one, other in ((upper, lower), (lower, upper)):
            if one not in kept:
                kept[one], floors[one] = f"cannot separate from {other}", current[one]
    return floors, fitted, kept


def _unordered(floors: dict[str, float], kept: dict[str, str]) -> tuple[str, str] | None:
    """The first neighbouring pair, top down, whose upper floor is not above the lower one
    and that has a tier not yet kept."""
    for upper, lower in itertools.pairwise(RANKED):
        if floors[upper] <= floors[lower] and not (upper in kept and lower in kept):
            return upper, lower
    return None


def _two_figures(x: float) -> float:
    digits = 1 - math.floor(math.log10(x))
    return float(round(x, digits))


def component_weights(
    model: Any, x: np.ndarray, y: np.ndarray, target: str, seed: int
) -> tuple[dict[str, int], dict[str, float]]:
    """Permutation importance per input, summed per score component, scaled to 100."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(y), size=min(len(y), IMPORTANCE_ROWS), replace=False)
    scoring = "r2" if target == "revenue" else "roc_auc"
    result = ml().inspection.permutation_importance(
        model, x[rows], y[rows], scoring=scoring, n_repeats=3, random_state=seed
    )
    importance = {
        name: max(float(v), 0.0) for name, v in zip(FEATURES, result.importances_mean, strict=True)
    }
    by_component = {
        c: sum(v for k, v in importance.items() if FEATURES[k] == c) for c in COMPONENTS
    }
    total = sum(by_component.values())
    if total <= 0:
        return {}, importance
    weights = {c: round(100 * v / total) for c, v in by_component.items()}
    top = max(weights, key=lambda c: weights[c])
    weights[top] += 100 - sum(weights.values())  # rounding: keep the sum at 100
    return weights, importance


def advanced_tiers(
    tier: np.ndarray,
    advanced_products: np.ndarray,
    products: np.ndarray,
    professional: tuple[str, ...],
) -> tuple[list[str], dict[str, float]]:
    """Value tiers where most customers with a known product list hold an advanced product."""
    listed = np.isfinite(products)
    shares: dict[str, float] = {}
    chosen: list[str] = []
    for code, name in enumerate(VALUE_TIERS[:4]):
        members = (tier == code) & listed
        if not members.any():
            continue
        shares[name] = float((advanced_products[members] > 0).mean())
        if shares[name] > ADVANCED_MAJORITY and name not in professional:
            chosen.append(name)
    return chosen, shares
