"""The figures a model-risk reviewer asks of a proposed policy: lift, stability, fairness.

* Lift (held-out period, never seen by the model): for target ``revenue``, the share of
  next-12-month revenue earned by customers in the top tiers (private + wealth) over their
  share of customers, and the rank correlation of the value score with revenue; for
  ``attrition``, the AUC of the value score for staying (1 - attrition).
* Stability: the population stability index (PSI) of each model input and of the tier mix,
  held-out period against the one before. Conventional reading: < 0.1 stable, 0.1-0.25 a
  shift to look at, > 0.25 a shift that questions the calibration.
* Fairness: per sensitive attribute, each group's tier mix and its disparate-impact ratio
  (the group's rate of reaching a tier or above over the best group's rate), flagged below
  0.8: the "four-fifths rule" of the US Uniform Guidelines on Employee Selection
  Procedures (29 CFR 1607.4(D)), the common screening threshold for adverse impact.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tiering_core.rules.base import VALUE_TIERS

TOP_TIERS = (0, 1)  # private, wealth
FOUR_FIFTHS = 0.8
PSI_SHIFT = 0.1
PSI_MAJOR = 0.25
_EPS = 1e-4  # floor of a bin's share, so an empty bin does not make PSI infinite
_DECILES = np.linspace(0.1, 0.9, 9)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI of ``actual`` against ``expected``: deciles of ``expected``, missing its own bin."""
    finite = expected[np.isfinite(expected)]
    edges = np.unique(np.quantile(finite, _DECILES)) if finite.size else np.array([])
    return _psi_of_bins(_bin(expected, edges), _bin(actual, edges), len(edges) + 2)


def psi_categories(expected: np.ndarray, actual: np.ndarray, categories: int) -> float:
    """PSI of two integer-coded distributions (e.g. tier codes 0..categories-1)."""
    return _psi_of_bins(expected, actual, categories)


def _bin(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(x), np.searchsorted(edges, x, side="right"), len(edges) + 1)


def _psi_of_bins(a: np.ndarray, b: np.ndarray, bins: int) -> float:
    pa = np.maximum(np.bincount(a, minlength=bins) / max(len(a), 1), _EPS)
    pb = np.maximum(np.bincount(b, minlength=bins) / max(len(b), 1), _EPS)
    return round(float(((pb - pa) * np.log(pb / pa)).sum()), 4)


def psi_reading(value: float) -> str:
    return "major shift" if value > PSI_MAJOR else "shift" if value > PSI_SHIFT else "stable"


def revenue_lift(tier: np.ndarray, revenue: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    """Top-tier revenue capture and its lift over the top tiers' share of customers."""
    top = np.isin(tier, TOP_TIERS)
    customers = float(top.mean())
    total = float(revenue.sum())
    # a share of a total at or below zero is no share: the period earned the bank nothing
    captured = float(revenue[top].sum()) / total if total > 0 else None
    return {
        "top_tiers": [VALUE_TIERS[t] for t in TOP_TIERS],
        "customer_share": round(customers, 4),
        "revenue_share": None if captured is None else round(captured, 4),
        "lift": round(captured / customers, 3) if customers and captured is not None else None,
        "score_rank_correlation": _rank_correlation(score, revenue),
    }


def attrition_lift(tier: np.ndarray, attrited: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    """AUC of the value score for retention, and attrition by tier."""
    known = np.isfinite(score)
    return {
        "retention_auc": _auc(score[known], 1.0 - attrited[known]),
        "attrition_by_tier": {
            VALUE_TIERS[t]: round(float(attrited[tier == t].mean()), 4)
            for t in range(len(VALUE_TIERS))
            if (tier == t).any()
        },
    }


def _mid_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing their average rank."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    return np.asarray((np.cumsum(counts) - (counts - 1) / 2.0)[inverse])


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rho over the rows where both are known; none when either is one value
    throughout (no order to correlate: ``corrcoef`` would give NaN, which is not JSON)."""
    known = np.isfinite(a) & np.isfinite(b)
    if known.sum() < 3 or np.ptp(a[known]) == 0 or np.ptp(b[known]) == 0:
        return None
    return round(float(np.corrcoef(_mid_ranks(a[known]), _mid_ranks(b[known]))[0, 1]), 4)


def _auc(score: np.ndarray, positive: np.ndarray) -> float | None:
    """Mann-Whitney AUC with tied scores counted half."""
    pos, neg = positive > 0.5, positive <= 0.5
    if not pos.any() or not neg.any():
        return None
    n_pos, n_neg = pos.sum(), neg.sum()
    u = _mid_ranks(score)[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return round(float(u / (n_pos * n_neg)), 4)


def fairness(tier: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    """Tier mix per group, and disparate-impact ratios for reaching each ranked tier."""
    names = sorted({str(g) for g in groups})
    mix: dict[str, dict[str, float]] = {}
    reach: dict[str, dict[str, float]] = {}
    for g in names:
        t = tier[groups == g]
        mix[g] = {
            "customers": len(t),
            **{VALUE_TIERS[c]: round(float((t == c).mean()), 4) for c in range(4)},
        }
        reach[g] = {VALUE_TIERS[c]: float((t <= c).mean()) for c in range(3)}
    ratios: dict[str, dict[str, float | None]] = {g: {} for g in names}
    flagged: list[str] = []
    for c in range(3):
        level = VALUE_TIERS[c]
        top = max(names, key=lambda g: reach[g][level])
        best = reach[top][level]
        # a flag names the group it is measured against, and its size: one customer who
        # reaches the tier can flag every other group, and the summary must say so
        against = f"against {top}, {mix[top]['customers']:,} customer(s)"
        for g in names:
            ratio = round(reach[g][level] / best, 3) if best > 0 else None
            ratios[g][f"{level}_or_above"] = ratio
            if ratio is not None and ratio < FOUR_FIFTHS:
                flagged.append(f"{g}: {level} or above {ratio:.2f} ({against})")
    return {"tier_mix": mix, "disparate_impact": ratios, "four_fifths_flags": flagged}
