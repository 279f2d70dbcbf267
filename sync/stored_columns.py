"""The engine's columns of stored customers, read straight from the stored JSON.

``simulate`` runs a candidate policy over a whole book from the store (``sync.inputs``
keeps what each customer was last assessed on); validating every stored profile again
would cost half of each customer's time, so the columns are laid out here from the plain
JSON, column by column. Kept apart from ``sync.inputs``, which owns the table: this
module owns the mapping from stored JSON to the engine's columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from itertools import repeat
from typing import Any

import numpy as np

from sync import jsontext
from sync.inputs import StoredChunk, StoredCustomer
from tiering_core.columns import (
    _VOCABULARIES,
    BLOCKS,
    ENUMS,
    FLAGS,
    MISSING,
    NAN,
    NUMBERS,
    UNKNOWN,
    Columns,
)
from tiering_core.iso3166 import ALPHA2
from tiering_core.policy import Policy

_EMPTY: Mapping[str, Any] = {}
#: each enumeration's value -> code, a missing value (None) -> MISSING
_LOOKUPS = [{**codes, None: MISSING} for codes in _VOCABULARIES]


def columns_of(chunk: StoredChunk | Sequence[StoredCustomer], policy: Policy) -> Columns:
    """The chunk laid out as the engine's columns, read straight from the stored JSON.

    The same columns ``Columns.from_profiles`` makes of the validated profiles with the
    committed state as ``previous`` (a test holds the two equal), built column by column
    from plain dicts: validating a stored profile again cost 51 µs of a customer's ~100 µs,
    and a million customers must be simulated in a minute. The text was written by crmtier
    from a validated profile; anything that decides or plans for a customer still uses
    ``StoredCustomer.profile``."""
    if not isinstance(chunk, StoredChunk):
        chunk = StoredChunk.of(chunk)
    docs = [jsontext.loads(text) for text in chunk.profiles]
    n = len(docs)
    # An absent block reads as an empty one (every cell missing), kept apart in ``present``
    # for the block columns; a missing cell is None, which numpy turns into NaN, and the
    # flags' and enumerations' NaN into MISSING: one pass of Python a column, no branch.
    present = {name: [d.get(name) is not None for d in docs] for name in BLOCKS}
    holders: dict[str | None, list[Any]] = {
        name: [d.get(name) or _EMPTY for d in docs] for name in BLOCKS
    }
    holders[None] = docs
    holders["previous"] = [t or _EMPTY for t in chunk.tiers]

    def cells(block: str | None, attr: str) -> list[Any]:
        # ``dict.get`` mapped in C: a quarter faster than the same comprehension
        return list(map(dict.get, holders[block], repeat(attr, n)))

    numbers = np.array([cells(block, attr) for _, block, attr in NUMBERS], dtype=np.float64)
    flag_values = np.array([cells(block, attr) for _, block, attr in FLAGS], dtype=np.float64)
    flags = np.where(np.isnan(flag_values), MISSING, flag_values)
    enums = [
        [codes.get(h.get(attr), UNKNOWN) for h in holders[block]]
        for (_, block, attr, _), codes in zip(ENUMS, _LOOKUPS, strict=True)
    ]
    held = cells("activity", "products_held")
    listed = cells("aml", "high_risk_countries")
    valid = [[c for c in countries if c in ALPHA2] if countries else [] for countries in listed]
    advanced = policy.needs.advanced_products
    cfa = policy.aml.countries.call_for_action
    rates = [policy.fx_rate(d.get("currency", "CNY")) for d in docs]
    since = chunk.below_floor_since

    def floats(values: list[float]) -> Any:
        return np.array(values, dtype=np.float64)

    return Columns(
        n=n,
        numbers=numbers.reshape(len(NUMBERS), n),
        flags=flags.astype(np.int8).reshape(len(FLAGS), n),
        enums=np.array(enums, dtype=np.int8).reshape(len(ENUMS), n),
        block={name: np.array(present[name], dtype=np.bool_) for name in BLOCKS},
        fx_rate=floats([NAN if r is None else r for r in rates]),
        products=floats([NAN if h is None else float(len(h)) for h in held]),
        advanced_products=floats([float(sum(1 for x in h or () if x in advanced)) for h in held]),
        countries=floats(
            [NAN if c is None else float(len(v)) for c, v in zip(listed, valid, strict=True)]
        ),
        call_for_action=floats([float(sum(1 for c in v if c in cfa)) for v in valid]),
        unknown_countries=floats(
            [
                0.0 if c is None else float(len(c) - len(v))
                for c, v in zip(listed, valid, strict=True)
            ]
        ),
        below_floor_since=floats(
            [NAN if d is None else float(date.fromisoformat(d).toordinal()) for d in since]
        ),
        # only where an override kept a qualified tier apart (``Columns.from_cells``)
        qualified_below_floor_since=(
            floats(
                [
                    NAN if d is None else float(date.fromisoformat(d).toordinal())
                    for d in cells("previous", "qualified_below_floor_since")
                ]
            )
            if any(cells("previous", "qualified_value_tier"))
            else None
        ),
    )
