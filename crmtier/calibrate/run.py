"""One calibration: split the history, fit, propose, and measure the proposal.

The newest snapshot date is held out: the model never sees it, and the lift of the
proposed policy over the current one is measured on it. The one before it is the baseline
for stability (PSI). The model is fitted on every snapshot before the newest (a seeded
sample of at most ``max_rows`` of them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from crmtier.calibrate import UnusableInput, features, fit, measures
from crmtier.calibrate.history import MISSING_ATTRIBUTE, History
from crmtier.calibrate.proposal import proposed_document
from tiering_core.policy import Policy, policy_over_default
from tiering_core.rules import value
from tiering_core.rules.base import VALUE_TIERS
from tiering_core.rules.value import RANKED


@dataclass(frozen=True)
class Calibration:
    document: dict[str, Any]  # the proposed policy file's tree
    report: dict[str, Any]  # every figure, as the JSON report writes it


def calibrate(
    h: History,
    current: Policy,
    current_doc: Mapping[str, Any],
    target: str,
    sensitive: list[str],
    seed: int = 0,
    max_rows: int = 500_000,
) -> Calibration:
    with fit.one_thread():
        return _calibrate(h, current, current_doc, target, sensitive, seed, max_rows)


def _calibrate(
    h: History,
    current: Policy,
    current_doc: Mapping[str, Any],
    target: str,
    sensitive: list[str],
    seed: int,
    max_rows: int,
) -> Calibration:
    features.check_not_inputs(sensitive)
    missing = [name for name in sensitive if name not in h.attributes]
    if missing:
        raise UnusableInput(f"--sensitive {missing[0]}: no history row has this attribute")
    periods = h.periods
    if len(periods) < 2:
        raise UnusableInput(
            f"the history has {len(periods)} snapshot date(s); calibrate needs"
            " two or more (the newest is held out)"
        )
    held = h.period == periods[-1].toordinal()
    _check_held_out(h.target[held], target, periods[-1])
    _check_groups(h, sensitive, held, periods[-1])
    previous = h.period == periods[-2].toordinal()
    x = features.matrix(h.cols, current)
    rng = np.random.default_rng(seed)
    train = np.flatnonzero(~held)
    if len(train) > max_rows:
        train = np.sort(rng.choice(train, size=max_rows, replace=False))
    features.check_known(x[train], ", ".join(p.isoformat() for p in periods[:-1]))
    model = fit.fit_model(x[train], h.target[train], target, seed)

    current_floors: dict[str, float] = {t: current.floor(t) for t in RANKED}
    if target == "revenue":
        floors, fitted, kept = fit.aum_floors(
            np.expm1(x[train, 0]),
            h.target[train],
            {str(t): f.revenue_floor for t, f in current.value.tiers.items()},
            current_floors,
        )
    else:
        floors, fitted = current_floors, {}
        kept = dict.fromkeys(RANKED, "calibrated on the revenue target only")
    weights, importance = fit.component_weights(model, x[held], h.target[held], target, seed)
    overrides: dict[str, Any] = {"name": f"{current.name}-calibrated-{target}"}
    overrides.update({f"value.tiers.{t}.aum_floor": floors[t] for t in RANKED if t not in kept})
    overrides.update({f"value.score.{c}_weight": w for c, w in weights.items()})
    proposed = policy_over_default(proposed_document(current_doc, overrides), "proposal")
    as_of = periods[-1]
    tier_train = _tiers(h, proposed, as_of)[0][~held]
    adv, shares = fit.advanced_tiers(
        tier_train,
        h.cols.advanced_products[~held],
        h.cols.products[~held],
        tuple(proposed.needs.professional_tiers),
    )
    overrides["needs.advanced_tiers"] = adv
    document = proposed_document(current_doc, overrides)
    proposed = policy_over_default(document, "proposal")

    report = {
        "target": target,
        "method": "HistGradientBoosting (monotone in every input) + isotonic AUM curve",
        "rows": {"used": int(h.cols.n), "skipped": h.skipped, "trained_on": len(train)},
        "periods": {
            "fitted": [p.isoformat() for p in periods[:-1]],
            "held_out": periods[-1].isoformat(),
            "stability_baseline": periods[-2].isoformat(),
        },
        "model_inputs": list(features.FEATURES),
        "sensitive_attributes": sensitive,
        "proposal": {
            "aum_floors": {
                t: {
                    "current": current_floors[t],
                    "proposed": floors[t],
                    "fitted": fitted.get(t),
                    "kept": t in kept,
                    "kept_because": kept.get(t),
                }
                for t in RANKED
            },
            "value_score_weights": {
                c: {
                    "current": getattr(current.value.score, f"{c}_weight"),
                    "proposed": getattr(proposed.value.score, f"{c}_weight"),
                }
                for c in features.COMPONENTS
            },
            "input_importance": {k: round(v, 5) for k, v in importance.items()},
            "needs_advanced_tiers": {
                "current": list(current.needs.advanced_tiers),
                "proposed": adv,
                "share_holding_advanced": shares,
            },
        },
        **_measures(h, x, current, proposed, target, sensitive, held, previous, as_of),
    }
    return Calibration(document, report)


def _check_held_out(y: np.ndarray, target: str, period: date) -> None:
    """The held-out period must let the inputs' importance be measured on it
    (``fit.component_weights``): R² needs two rows or more, ROC AUC customers who stayed
    and customers who left. Judged here, from the history, so that a history too thin for
    it says so (exit 2) instead of ending in the NaN that scoring returns then."""
    if target == "revenue" and len(y) < 2:
        raise UnusableInput(
            f"the held-out period {period}: {len(y)} row; R² of the inputs' importance "
            "needs two or more"
        )
    if target == "attrition" and np.unique(y).size < 2:
        said = "true" if y[0] else "false"
        raise UnusableInput(
            f"the held-out period {period}: every row has outcome.attrited = {said}; "
            "ROC AUC of the inputs' importance needs customers who stayed and who left"
        )


def _check_groups(h: History, sensitive: list[str], held: np.ndarray, period: date) -> None:
    """Disparate impact compares groups' rates on the held-out period: with one group of an
    attribute there (or none: every row without it), each ratio is the group against itself
    and the verdict would read "no four-fifths flag" on nothing compared."""
    for name in sensitive:
        groups = set(h.attributes[name][held]) - {MISSING_ATTRIBUTE}
        if len(groups) < 2:
            raise UnusableInput(
                f"--sensitive {name}: the held-out period {period} has "
                f"{'one group' if groups else 'no group'} of it; disparate impact compares"
                " two or more"
            )


def _tiers(h: History, policy: Policy, as_of: date) -> tuple[np.ndarray, np.ndarray]:
    outcome = value.rate(h.cols, policy, as_of)
    return outcome.tier, outcome.score


def _measures(
    h: History,
    x: np.ndarray,
    current: Policy,
    proposed: Policy,
    target: str,
    sensitive: list[str],
    held: np.ndarray,
    previous: np.ndarray,
    as_of: date,
) -> dict[str, Any]:
    lift = measures.revenue_lift if target == "revenue" else measures.attrition_lift
    tiers = {"current": _tiers(h, current, as_of), "proposed": _tiers(h, proposed, as_of)}
    n_tiers = len(VALUE_TIERS)
    return {
        "lift": {name: lift(t[held], h.target[held], s[held]) for name, (t, s) in tiers.items()},
        "tier_mix": {
            name: {VALUE_TIERS[c]: round(float((t[held] == c).mean()), 4) for c in range(n_tiers)}
            for name, (t, _) in tiers.items()
        },
        "stability": {
            "inputs": {
                name: measures.psi(x[previous, i], x[held, i])
                for i, name in enumerate(features.FEATURES)
            },
            "tier_mix": {
                name: measures.psi_categories(t[previous], t[held], n_tiers)
                for name, (t, _) in tiers.items()
            },
        },
        "fairness": {
            attr: {
                name: measures.fairness(t[held], h.attributes[attr][held])
                for name, (t, _) in tiers.items()
            }
            for attr in sensitive
        },
    }
