"""Which customers a policy change can touch (``sync.simulation``, stage 2): whether two
policies act alike and lay customers out alike, and which rows' evaluations differ under
them. A customer whose evaluation is identical under two policies that act alike gets the
same actions from either, so the simulation need not decide or plan it."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tiering_core.engine import Evaluation
from tiering_core.policy import Policy
from tiering_core.rules.base import ReasonColumn


def acts_alike(a: Policy, b: Policy) -> bool:
    """Whether two policies turn the same evaluation into the same actions (all but the
    version): same strategy, service levels and AML review periods."""

    def acting(p: Policy) -> Any:
        return (
            p.strategy.model_dump(mode="json"),
            p.service_levels.model_dump(mode="json"),
            p.aml.review_months.model_dump(mode="json"),
            p.aml.new_customer.model_dump(mode="json"),
        )

    return bool(acting(a) == acting(b))


def lays_out_alike(a: Policy, b: Policy) -> bool:
    """Whether two policies lay customers out as the same columns: the parts of a policy
    ``tiering_core.columns.Record.from_profile`` reads (exchange rates, the advanced
    products, the call-for-action countries)."""

    def layout(p: Policy) -> Any:
        return (p.currency, p.fx, p.needs.advanced_products, p.aml.countries.call_for_action)

    return bool(layout(a) == layout(b))


_DECIDED = (
    "value_tier",
    "needs_tier",
    "credit_risk",
    "aml_risk",
    "ops_risk",
    "status",
    "upgraded_from",
    "value_score",
    "below_floor_since",
    "qualified_tier",
    "qualified_below_floor_since",
    "open_complaints",
    "detractor",
)


def differs(a: Evaluation, b: Evaluation) -> npt.NDArray[np.bool_]:
    """Rows whose evaluation is not identical under the two policies: any decided value,
    any reason (where it applies, its value, threshold and weight) or data-quality
    finding. Reason and issue columns are compared by position; when the two lists do
    not line up code for code, every row counts as different (decided, never missed)."""
    out = np.zeros(a.n, dtype=bool)
    for name in _DECIDED:
        out |= ~_same(getattr(a, name), getattr(b, name), a.n)
    if [r.code for r in a.reasons] != [r.code for r in b.reasons] or [
        (i.code, i.path) for i in a.issues
    ] != [(i.code, i.path) for i in b.issues]:
        return np.ones(a.n, dtype=bool)
    for ra, rb in zip(a.reasons, b.reasons, strict=True):
        out |= _reason_differs(ra, rb, a.n)
    for ia, ib in zip(a.issues, b.issues, strict=True):
        out |= ~_same(ia.mask, ib.mask, a.n)
    return out


def _reason_differs(a: ReasonColumn, b: ReasonColumn, n: int) -> npt.NDArray[np.bool_]:
    fired_a, fired_b = np.broadcast_to(a.mask, n), np.broadcast_to(b.mask, n)
    out: npt.NDArray[np.bool_] = fired_a != fired_b
    both = fired_a & fired_b
    if a.labels != b.labels or a.profile_path != b.profile_path:
        out |= both
        return out
    for x, y in ((a.value, b.value), (a.threshold, b.threshold), (a.weight, b.weight)):
        out |= both & ~_same(x, y, n)
    return out


def _same(x: Any, y: Any, n: int) -> npt.NDArray[np.bool_]:
    """Row-wise equality of two columns or scalars, NaN equal to NaN."""
    if x is None or y is None or isinstance(x, str) or isinstance(y, str):
        return np.full(n, x == y, dtype=bool)
    xa, ya = np.broadcast_to(np.asarray(x), n), np.broadcast_to(np.asarray(y), n)
    equal = xa == ya
    if xa.dtype.kind == "f" and ya.dtype.kind == "f":
        equal |= np.isnan(xa) & np.isnan(ya)
    return np.asarray(equal, dtype=bool)
