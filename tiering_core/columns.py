"""Profiles as columns: the shape the rules evaluate many customers in at once.

Each canonical input becomes one numpy array over the batch. Missing stays visible:
numbers are ``float64`` with NaN for missing; yes/no facts are ``int8`` with -1 for missing;
enumerations are ``int8`` codes with -1 missing and -2 an unknown value. Nothing here
judges the data; ``rules.quality`` does that on these arrays.

Building the columns is the one per-record Python loop of the batch path; everything after
it is vectorised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from tiering_core.iso3166 import ALPHA2
from tiering_core.models import (
    CUSTOMER_KINDS,
    LEVELS,
    LOAN_CLASSES,
    VALUE_TIER_ORDER,
    CustomerProfile,
)
from tiering_core.policy import Policy

FloatArray = npt.NDArray[np.float64]
CodeArray = npt.NDArray[np.int8]
BoolArray = npt.NDArray[np.bool_]

T = TypeVar("T", bound=np.generic)

MISSING = -1
UNKNOWN = -2

#: (column name, block attribute or None for top level, field attribute) of numeric inputs.
NUMBERS: tuple[tuple[str, str | None, str], ...] = (
    ("deposits", "assets", "deposits"),
    ("investments", "assets", "investments"),
    ("insurance", "assets", "insurance"),
    ("aum_avg_3m", None, "aum_avg_3m"),
    ("transactions_90d", "activity", "transactions_90d"),
    ("digital_logins_90d", "activity", "digital_logins_90d"),
    ("loan_interest", "revenue_12m", "loan_interest"),
    ("product_fees", "revenue_12m", "product_fees"),
    ("service_fees", "revenue_12m", "service_fees"),
    ("credit_score", "credit", "score"),
    ("debt_to_income", "credit", "debt_to_income"),
    ("days_past_due", "credit", "days_past_due_max_12m"),
    ("cash_volume_90d", "aml", "cash_volume_90d"),
    ("cross_border_count_90d", "aml", "cross_border_count_90d"),
    ("cross_border_volume_90d", "aml", "cross_border_volume_90d"),
    ("str_count_12m", "aml", "str_count_12m"),
    ("failed_operations_90d", "ops", "failed_operations_90d"),
    ("support_tickets_90d", "ops", "support_tickets_90d"),
    ("csat", "feedback", "csat"),
    ("nps", "feedback", "nps"),
    ("open_complaints", "feedback", "open_complaints"),
    ("complaints_12m", "feedback", "complaints_12m"),
)

#: Yes/no inputs.
FLAGS: tuple[tuple[str, str | None, str], ...] = (
    ("pep", "aml", "pep"),
    ("sanctions_hit", "aml", "sanctions_hit"),
    ("refused_cdd", "aml", "refused_cdd"),
    ("adverse_media", "aml", "adverse_media"),
    ("fraud_victim", "ops", "fraud_victim_flag"),
    ("kyc_expired", "ops", "kyc_expired"),
    ("qualified_investor", None, "qualified_investor"),
)

#: Enumerated inputs and their vocabularies (the code is the index in the vocabulary).
ENUMS: tuple[tuple[str, str | None, str, tuple[str, ...]], ...] = (
    ("kind", None, "kind", CUSTOMER_KINDS),
    ("loan_class", "credit", "loan_class", LOAN_CLASSES),
    ("industry_risk", "aml", "industry_risk", LEVELS),
    ("previous_value_tier", "previous", "value_tier", VALUE_TIER_ORDER),
)

#: Values that mean "none" rather than an unknown value: an unrated previous tier is no tier.
MEANS_MISSING: dict[str, tuple[str, ...]] = {"previous_value_tier": ("unrated",)}

#: Input blocks whose absence the rules care about.
BLOCKS = ("assets", "activity", "revenue_12m", "credit", "aml", "ops", "feedback")

#: Canonical dotted path of every column (what a DQ issue names).
PATHS: dict[str, str] = {
    name: f"{block}.{attr}" if block else attr
    for name, block, attr in (*NUMBERS, *FLAGS, *((n, b, a) for n, b, a, _ in ENUMS))
}


NUMBER_INDEX: dict[str, int] = {name: i for i, (name, _, _) in enumerate(NUMBERS)}
FLAG_INDEX: dict[str, int] = {name: i for i, (name, _, _) in enumerate(FLAGS)}
ENUM_INDEX: dict[str, int] = {name: i for i, (name, *_) in enumerate(ENUMS)}


class Rows(Generic[T]):
    """Name-indexed rows of an input matrix (``cols.number["deposits"]``): a view per
    lookup, nothing copied, nothing built up front (a batch of one must stay cheap)."""

    __slots__ = ("index", "matrix")

    def __init__(self, matrix: npt.NDArray[T], index: dict[str, int]) -> None:
        self.matrix = matrix
        self.index = index

    def __getitem__(self, name: str) -> npt.NDArray[T]:
        return self.matrix[self.index[name]]


@dataclass
class Columns:
    """One batch of customers, column-wise. ``n`` rows, in input order.

    Numbers, flags and enumerations are each one 2-D array (input x customer), so a check
    that applies to many inputs is one numpy operation; ``number["deposits"]`` and friends
    are row views into them, for rules that read one input at a time."""

    n: int
    numbers: FloatArray  # len(NUMBERS) x n
    flags: CodeArray  # len(FLAGS) x n
    enums: CodeArray  # len(ENUMS) x n
    block: dict[str, BoolArray]  # True where the block is present
    fx_rate: FloatArray  # policy currency per unit of the customer's currency; NaN unknown
    products: FloatArray  # number of products held; NaN when the list is missing
    advanced_products: FloatArray  # how many of them are investment/insurance products
    countries: FloatArray  # valid ISO codes in aml.high_risk_countries; NaN when missing
    call_for_action: FloatArray  # how many of them are on the policy's call-for-action list
    unknown_countries: FloatArray  # codes that are not ISO 3166 alpha-2
    below_floor_since: FloatArray  # date ordinal; NaN when none

    @property
    def number(self) -> Rows[np.float64]:
        return Rows(self.numbers, NUMBER_INDEX)

    @property
    def flag(self) -> Rows[np.int8]:
        return Rows(self.flags, FLAG_INDEX)

    @property
    def enum(self) -> Rows[np.int8]:
        return Rows(self.enums, ENUM_INDEX)

    @classmethod
    def from_profiles(cls, profiles: Sequence[CustomerProfile], policy: Policy) -> Columns:
        n = len(profiles)
        numbers: list[list[float | None]] = [[None] * n for _ in NUMBERS]
        flags: list[list[int]] = [[MISSING] * n for _ in FLAGS]
        enums: list[list[int]] = [[MISSING] * n for _ in ENUMS]
        blocks: dict[str, list[bool]] = {name: [False] * n for name in BLOCKS}
        fx: list[float | None] = [None] * n
        products: list[float | None] = [None] * n
        advanced: list[float] = [0.0] * n
        countries: list[float | None] = [None] * n
        cfa: list[float] = [0.0] * n
        unknown: list[float] = [0.0] * n
        since: list[float | None] = [None] * n
        vocab = [_vocabulary(name, values) for name, _, _, values in ENUMS]
        advanced_set = frozenset(policy.needs.advanced_products)
        cfa_set = frozenset(policy.aml.countries.call_for_action)
        number_fields = list(enumerate(NUMBERS))
        flag_fields = list(enumerate(FLAGS))
        enum_fields = list(enumerate(ENUMS))

        for i, p in enumerate(profiles):
            for name in BLOCKS:
                blocks[name][i] = getattr(p, name) is not None
            for k, (_, block, attr) in number_fields:
                holder = p if block is None else getattr(p, block)
                if holder is not None:
                    numbers[k][i] = getattr(holder, attr)
            for k, (_, block, attr) in flag_fields:
                holder = p if block is None else getattr(p, block)
                if holder is not None:
                    value = getattr(holder, attr)
                    if value is not None:
                        flags[k][i] = int(value)
            for k, (_, block, attr, _) in enum_fields:
                holder = p if block is None else getattr(p, block)
                if holder is not None:
                    value = getattr(holder, attr)
                    if value is not None:
                        enums[k][i] = vocab[k].get(value, UNKNOWN)
            fx[i] = policy.fx_rate(p.currency)
            held = p.activity.products_held if p.activity is not None else None
            if held is not None:
                products[i] = len(held)
                advanced[i] = sum(1 for h in held if h in advanced_set)
            listed = p.aml.high_risk_countries if p.aml is not None else None
            if listed is not None:
                valid = [c for c in listed if c in ALPHA2]
                countries[i] = len(valid)
                cfa[i] = sum(1 for c in valid if c in cfa_set)
                unknown[i] = len(listed) - len(valid)
            if p.previous is not None and p.previous.below_floor_since is not None:
                since[i] = p.previous.below_floor_since.toordinal()

        return cls(
            n=n,
            numbers=np.array(numbers, dtype=np.float64).reshape(len(NUMBERS), n),
            flags=np.array(flags, dtype=np.int8).reshape(len(FLAGS), n),
            enums=np.array(enums, dtype=np.int8).reshape(len(ENUMS), n),
            block={k: np.array(v, dtype=np.bool_) for k, v in blocks.items()},
            fx_rate=np.array(fx, dtype=np.float64),
            products=np.array(products, dtype=np.float64),
            advanced_products=np.array(advanced, dtype=np.float64),
            countries=np.array(countries, dtype=np.float64),
            call_for_action=np.array(cfa, dtype=np.float64),
            unknown_countries=np.array(unknown, dtype=np.float64),
            below_floor_since=np.array(since, dtype=np.float64),
        )

    def take(self, index: npt.NDArray[np.intp]) -> Columns:
        """The rows at ``index`` (used to tile a benchmark batch and to test row independence)."""
        return Columns(
            n=len(index),
            numbers=np.ascontiguousarray(self.numbers[:, index]),
            flags=np.ascontiguousarray(self.flags[:, index]),
            enums=np.ascontiguousarray(self.enums[:, index]),
            block={k: v[index] for k, v in self.block.items()},
            fx_rate=self.fx_rate[index],
            products=self.products[index],
            advanced_products=self.advanced_products[index],
            countries=self.countries[index],
            call_for_action=self.call_for_action[index],
            unknown_countries=self.unknown_countries[index],
            below_floor_since=self.below_floor_since[index],
        )


def _vocabulary(name: str, values: tuple[str, ...]) -> dict[str, int]:
    """Value -> code for one enumerated input (values that mean "none" map to MISSING)."""
    codes = {value: code for code, value in enumerate(values)}
    codes.update(dict.fromkeys(MEANS_MISSING.get(name, ()), MISSING))
    return codes

