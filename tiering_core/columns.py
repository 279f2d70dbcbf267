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
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from tiering_core.iso3166 import ALPHA2
from tiering_core.models import (
    CORPORATE_TIER_ORDER,
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
    ("branch_transactions_90d", "activity", "branch_transactions_90d"),
    ("loan_interest", "revenue_12m", "loan_interest"),
    ("product_fees", "revenue_12m", "product_fees"),
    ("service_fees", "revenue_12m", "service_fees"),
    ("credit_score", "credit", "score"),
    ("debt_to_income", "credit", "debt_to_income"),
    ("days_past_due", "credit", "days_past_due_max_12m"),
    ("credit_line", "credit", "credit_line"),
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
    ("marketing_opt_out", "consent", "marketing_opt_out"),
)

#: Enumerated inputs and their vocabularies (the code is the index in the vocabulary).
ENUMS: tuple[tuple[str, str | None, str, tuple[str, ...]], ...] = (
    ("kind", None, "kind", CUSTOMER_KINDS),
    ("loan_class", "credit", "loan_class", LOAN_CLASSES),
    ("industry_risk", "aml", "industry_risk", LEVELS),
    # the codes of rules.base.VALUE_TIERS (unrated means none: see MEANS_MISSING)
    (
        "previous_value_tier",
        "previous",
        "value_tier",
        (*VALUE_TIER_ORDER, "unrated", *CORPORATE_TIER_ORDER),
    ),
)

#: Values that mean "none" rather than an unknown value: an unrated previous tier is no tier.
MEANS_MISSING: dict[str, tuple[str, ...]] = {"previous_value_tier": ("unrated",)}

#: Input blocks whose absence the rules care about.
BLOCKS = ("assets", "activity", "revenue_12m", "credit", "aml", "ops", "feedback", "consent")

#: Canonical dotted path of every column (what a DQ issue names).
PATHS: dict[str, str] = {
    name: f"{block}.{attr}" if block else attr
    for name, block, attr in (*NUMBERS, *FLAGS, *((n, b, a) for n, b, a, _ in ENUMS))
}


def _vocabulary(name: str, values: tuple[str, ...]) -> dict[str, int]:
    """Value -> code for one enumerated input (values that mean "none" map to MISSING)."""
    codes = {value: code for code, value in enumerate(values)}
    codes.update(dict.fromkeys(MEANS_MISSING.get(name, ()), MISSING))
    return codes


_VOCABULARIES = [_vocabulary(name, values) for name, _, _, values in ENUMS]

NUMBER_INDEX: dict[str, int] = {name: i for i, (name, _, _) in enumerate(NUMBERS)}
FLAG_INDEX: dict[str, int] = {name: i for i, (name, _, _) in enumerate(FLAGS)}
ENUM_INDEX: dict[str, int] = {name: i for i, (name, *_) in enumerate(ENUMS)}


NAN = float("nan")


@dataclass(slots=True)
class Record:
    """One customer's inputs as plain Python values, laid out like one column of
    ``Columns`` (NaN missing numbers; -1 missing flags and enumerations; -2 unknown)."""

    numbers: list[float]  # in NUMBERS order
    flags: list[int]  # in FLAGS order
    enums: list[int]  # in ENUMS order
    block: dict[str, bool]
    fx_rate: float
    products: float
    advanced_products: float
    countries: float
    call_for_action: float
    unknown_countries: float
    below_floor_since: float

    def num(self, name: str) -> float:
        return self.numbers[NUMBER_INDEX[name]]

    def flag(self, name: str) -> int:
        return self.flags[FLAG_INDEX[name]]

    def enum(self, name: str) -> int:
        return self.enums[ENUM_INDEX[name]]

    @classmethod
    def from_profile(cls, p: CustomerProfile, policy: Policy) -> Record:
        holders = {name: getattr(p, name) for name in BLOCKS}
        holders["previous"] = p.previous
        numbers = []
        for _, block, attr in NUMBERS:
            holder = p if block is None else holders[block]
            value = getattr(holder, attr) if holder is not None else None
            numbers.append(NAN if value is None else float(value))
        flags = []
        for _, block, attr in FLAGS:
            holder = p if block is None else holders[block]
            value = getattr(holder, attr) if holder is not None else None
            flags.append(MISSING if value is None else int(value))
        enums = []
        for k, (_, block, attr, _) in enumerate(ENUMS):
            holder = p if block is None else holders[block]
            value = getattr(holder, attr) if holder is not None else None
            enums.append(MISSING if value is None else _VOCABULARIES[k].get(value, UNKNOWN))
        held = p.activity.products_held if p.activity is not None else None
        advanced = policy.needs.advanced_products  # 7 codes: a tuple scan beats a new set
        listed = p.aml.high_risk_countries if p.aml is not None else None
        valid = [c for c in listed if c in ALPHA2] if listed is not None else []
        cfa = policy.aml.countries.call_for_action
        rate = policy.fx_rate(p.currency)
        since = p.previous.below_floor_since if p.previous is not None else None
        return cls(
            numbers=numbers,
            flags=flags,
            enums=enums,
            block={
                name: holder is not None for name, holder in holders.items() if name != "previous"
            },
            fx_rate=NAN if rate is None else rate,
            products=NAN if held is None else float(len(held)),
            advanced_products=float(sum(1 for h in held or () if h in advanced)),
            countries=NAN if listed is None else float(len(valid)),
            call_for_action=float(sum(1 for c in valid if c in cfa)),
            unknown_countries=float(len(listed) - len(valid)) if listed is not None else 0.0,
            below_floor_since=NAN if since is None else float(since.toordinal()),
        )


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
        records = [Record.from_profile(p, policy) for p in profiles]
        return cls.from_records(records)

    @classmethod
    def from_records(cls, records: Sequence[Record]) -> Columns:
        n = len(records)

        def matrix(rows: list[list[float]] | list[list[int]], dtype: type, width: int) -> Any:
            return np.ascontiguousarray(np.array(rows, dtype=dtype).reshape(n, width).T)

        def column(values: list[Any], dtype: type = np.float64) -> Any:
            return np.array(values, dtype=dtype)

        return cls(
            n=n,
            numbers=matrix([r.numbers for r in records], np.float64, len(NUMBERS)),
            flags=matrix([r.flags for r in records], np.int8, len(FLAGS)),
            enums=matrix([r.enums for r in records], np.int8, len(ENUMS)),
            block={name: column([r.block[name] for r in records], np.bool_) for name in BLOCKS},
            fx_rate=column([r.fx_rate for r in records]),
            products=column([r.products for r in records]),
            advanced_products=column([r.advanced_products for r in records]),
            countries=column([r.countries for r in records]),
            call_for_action=column([r.call_for_action for r in records]),
            unknown_countries=column([r.unknown_countries for r in records]),
            below_floor_since=column([r.below_floor_since for r in records]),
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
