"""The model's inputs: the value score's own components, and nothing else.

Inputs are read from the customer's cleaned profile columns only. The descriptive attributes
of a history row (region, age band, gender, ...) live in ``History.attributes`` and have no
path into ``matrix``: a protected attribute can never be a model input, and
``check_not_inputs`` refuses a sensitive name that collides with an input. Each input maps
to the value-score component (``[value.score]``) whose weight its importance proposes.
"""

from __future__ import annotations

import numpy as np

from crmtier.calibrate import UnusableInput
from tiering_core.columns import Columns
from tiering_core.policy import Policy
from tiering_core.rules.value import aum_of, revenue_of

#: input -> the value-score component it belongs to
FEATURES: dict[str, str] = {
    "aum": "aum",
    "revenue_12m": "revenue",
    "transactions_90d": "activity",
    "digital_logins_90d": "activity",
    "products": "activity",
}
COMPONENTS = ("aum", "revenue", "activity")
#: input -> the history field it is read from, for the error that says none is known
SOURCE: dict[str, str] = {
    "aum": "customer.assets",
    "revenue_12m": "customer.revenue_12m",
    "transactions_90d": "customer.activity.transactions_90d",
    "digital_logins_90d": "customer.activity.digital_logins_90d",
    "products": "customer.activity.products_held",
}


def matrix(cols: Columns, policy: Policy) -> np.ndarray:
    """rows x FEATURES; amounts on a log scale (as the value score reads them), NaN missing."""
    x = np.column_stack(
        [
            np.log1p(aum_of(cols, policy)),
            np.log1p(revenue_of(cols)),
            cols.number["transactions_90d"],
            cols.number["digital_logins_90d"],
            cols.products,
        ]
    )
    assert x.shape[1] == len(FEATURES)
    return x


def check_not_inputs(sensitive: list[str]) -> None:
    """A sensitive attribute must not share a name with a model input."""
    clash = [name for name in sensitive if name in FEATURES]
    if clash:
        raise UnusableInput(
            f"--sensitive {clash[0]}: is a model input; a sensitive attribute "
            "must be one of the history's attributes"
        )


def check_known(x: np.ndarray, periods: str) -> None:
    """Each input must be known on some row the model is fitted on (``x``): one never known
    says nothing a monotone model or a weight could rest on, and scikit-learn's binning
    fails on it with a traceback instead of a reason."""
    unknown = [name for i, name in enumerate(FEATURES) if not np.isfinite(x[:, i]).any()]
    if unknown:
        raise UnusableInput(
            f"input {unknown[0]} ({SOURCE[unknown[0]]}): no row of the fitted periods"
            f" {periods} has it"
        )
