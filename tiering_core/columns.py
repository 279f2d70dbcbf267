"""Profiles as columns: the shape the rules evaluate many customers in at once.

Each canonical input becomes one numpy array over the batch. Missing stays visible:
numbers are ``float64`` with NaN for missing; yes/no facts are ``int8`` with -1 for missing;
enumerations are ``int8`` codes with -1 missing and -2 an unknown value. Nothing here
judges the data; ``rules.quality`` does that on these arrays.

The columns are built from ``cells.Cells``, one comprehension per column (from a file's
records without any model per record, or from validated profiles); everything after that
is vectorised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from tiering_core.cells import Cells
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
    # what the customer's own data earned last time, where an override made it differ
    (
        "previous_qualified_tier",
        "previous",
        "qualified_value_tier",
        (*VALUE_TIER_ORDER, "unrated", *CORPORATE_TIER_ORDER),
    ),
)

#: Values that mean "none" rather than an unknown value: an unrated previous tier is no tier.
MEANS_MISSING: dict[str, tuple[str, ...]] = {
    "previous_value_tier": ("unrated",),
    "previous_qualified_tier": ("unrated",),
}

#: Input blocks whose absence the rules care about.
BLOCKS = ("assets", "activity", "revenue_12m", "credit", "aml", "ops", "feedback", "consent")

#: Canonical dotted path of every column (what a DQ issue names).
PATHS: dict[str, str] = {
    name: f"{block}.{attr}" if block else attr
    for name, block, attr in (*NUMBERS, *FLAGS, *((n, b, a) for n, b, a, _ in ENUMS))
}


def _vocabulary(name: str, values: tuple[str, ...]) -> dict[str | None, int]:
    """Value -> code for one enumerated input (a missing value and the values that mean
    "none" map to MISSING)."""
    codes: dict[str | None, int] = {None: MISSING}
    codes.update((value, code) for code, value in enumerate(values))
    codes.update(dict.fromkeys(MEANS_MISSING.get(name, ()), MISSING))
    return codes


#: Value -> code of each enumerated input, None (missing) included: one C-level map a column.
_VOCABULARIES = [_vocabulary(name, values) for name, _, _, values in ENUMS]
#: A flag's cell -> its code (cells are validated: a bool or None).
_FLAG_CODES: dict[bool | None, int] = {None: MISSING, False: 0, True: 1}

NUMBER_INDEX: dict[str, int] = {name: i for i, (name, _, _) in enumerate(NUMBERS)}
FLAG_INDEX: dict[str, int] = {name: i for i, (name, _, _) in enumerate(FLAGS)}
ENUM_INDEX: dict[str, int] = {name: i for i, (name, *_) in enumerate(ENUMS)}


NAN = float("nan")


class Rows(Generic[T]):
    """Name-indexed rows of an input matrix (``cols.number["deposits"]``): a view per
    lookup, nothing copied, nothing built up front (a batch of one must stay cheap)."""

    __slots__ = ("index", "matrix")

    def __init__(self, matrix: npt.NDArray[T], index: dict[str, int]) -> None:
        self.matrix = matrix
        self.index = index

    def __getitem__(self, name: str) -> npt.NDArray[T]:
        row: npt.NDArray[T] = self.matrix[self.index[name]]
        return row


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
    # What the decisions name besides levels (absent where only levels are wanted, as in
    # ``sync.stored_columns.columns_of``): ids, owners, currencies, the enumerations' own texts
    # and the listed countries (a DQ issue and an AML reason show them as given).
    ids: list[str] = field(default_factory=list)
    owner_ids: list[str | None] = field(default_factory=list)
    currencies: list[str] = field(default_factory=list)
    enum_texts: list[list[str | None]] = field(default_factory=list)  # in ENUMS order
    listed_countries: list[Sequence[str] | None] = field(default_factory=list)
    # Tier overrides' cells by path (``override.value_tier``, ...), only when some customer
    # of the batch has one (rules/override.py); empty otherwise, as for most batches.
    overrides: dict[str, list[Any]] = field(default_factory=dict)
    # ``previous.qualified_below_floor_since`` as date ordinals (NaN: none), only when some
    # customer of the batch has a ``previous_qualified_tier`` (rules/value.py)
    qualified_below_floor_since: FloatArray | None = None

    #: The fields above that only decisions read (``evaluate`` never does).
    NAMING: ClassVar[tuple[str, ...]] = (
        "ids",
        "owner_ids",
        "currencies",
        "enum_texts",
        "listed_countries",
        "overrides",
    )

    @property
    def number(self) -> Rows[np.float64]:
        return Rows(self.numbers, NUMBER_INDEX)

    @property
    def flag(self) -> Rows[np.int8]:
        return Rows(self.flags, FLAG_INDEX)

    @property
    def enum(self) -> Rows[np.int8]:
        return Rows(self.enums, ENUM_INDEX)

    def listed(self, row: int) -> list[str] | None:
        """Row ``row``'s high-risk countries as given, a list of its own (the value an
        AML reason or a DQ issue shows, which its reader may hold on to)."""
        countries = self.listed_countries[row]
        return None if countries is None else list(countries)

    @classmethod
    def from_profiles(cls, profiles: Sequence[CustomerProfile], policy: Policy) -> Columns:
        return cls.from_cells(Cells.from_profiles(profiles), policy)

    @classmethod
    def from_cells(cls, cells: Cells, policy: Policy) -> Columns:
        """The columns of validated cells: one comprehension per column, then numpy."""
        n, v = cells.n, cells.values

        def floats(values: list[Any]) -> FloatArray:
            return np.array(values, dtype=np.float64).reshape(n)  # None -> NaN

        numbers = np.array([v[PATHS[name]] for name, _, _ in NUMBERS], dtype=np.float64).reshape(
            len(NUMBERS), n
        )
        flags = np.array(
            [list(map(_FLAG_CODES.__getitem__, v[PATHS[name]])) for name, _, _ in FLAGS],
            dtype=np.int8,
        ).reshape(len(FLAGS), n)
        texts = [v[PATHS[name]] for name, *_ in ENUMS]
        unknown = repeat(UNKNOWN)
        enums = np.array(
            [
                list(map(codes.get, column, unknown))
                for column, codes in zip(texts, _VOCABULARIES, strict=True)
            ],
            dtype=np.int8,
        ).reshape(len(ENUMS), n)
        held = v["activity.products_held"]
        advanced = policy.needs.advanced_products  # 7 codes: a tuple scan beats a new set
        listed = v["aml.high_risk_countries"]
        valid = [[c for c in countries if c in ALPHA2] if countries else [] for countries in listed]
        cfa = policy.aml.countries.call_for_action
        rates: dict[str, float | None] = {}
        for currency in set(v["currency"]):
            rates[currency] = policy.fx_rate(currency)
        return cls(
            n=n,
            numbers=numbers,
            flags=flags,
            enums=enums,
            block={b: np.array(cells.blocks[b], dtype=np.bool_).reshape(n) for b in BLOCKS},
            fx_rate=floats([rates[c] for c in v["currency"]]),
            products=floats([None if h is None else len(h) for h in held]),
            advanced_products=floats(
                [sum(map(advanced.__contains__, h)) if h else 0 for h in held]
            ),
            countries=floats(
                [None if c is None else len(ok) for c, ok in zip(listed, valid, strict=True)]
            ),
            call_for_action=floats([sum(map(cfa.__contains__, ok)) for ok in valid]),
            unknown_countries=floats(
                [0 if c is None else len(c) - len(ok) for c, ok in zip(listed, valid, strict=True)]
            ),
            below_floor_since=floats(
                [None if d is None else d.toordinal() for d in v["previous.below_floor_since"]]
            ),
            qualified_below_floor_since=(
                floats(
                    [
                        None if d is None else d.toordinal()
                        for d in v["previous.qualified_below_floor_since"]
                    ]
                )
                if any(v["previous.qualified_value_tier"])
                else None
            ),
            ids=v["id"],
            owner_ids=v["owner_id"],
            currencies=v["currency"],
            enum_texts=texts,
            listed_countries=listed,
            overrides=(
                {k: c for k, c in v.items() if k.startswith("override.")}
                if any(cells.blocks.get("override", ()))
                else {}
            ),
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
            qualified_below_floor_since=(
                None
                if self.qualified_below_floor_since is None
                else self.qualified_below_floor_since[index]
            ),
            ids=[self.ids[i] for i in index] if self.ids else [],
            owner_ids=[self.owner_ids[i] for i in index] if self.owner_ids else [],
            currencies=[self.currencies[i] for i in index] if self.currencies else [],
            enum_texts=[[t[i] for i in index] for t in self.enum_texts],
            listed_countries=(
                [self.listed_countries[i] for i in index] if self.listed_countries else []
            ),
            overrides={k: [c[i] for i in index] for k, c in self.overrides.items()},
        )
