"""The bank's history, read into columns: one row per customer per snapshot date.

A history file is JSON Lines, one object per customer and snapshot (docs/calibrate.md)::

    {"period": "2025-06-30", "customer": {<CustomerProfile as crmtier tier reads it>},
     "attributes": {"region": "east", "age_band": "35-54"},
     "outcome": {"revenue_next_12m": 41250.0, "attrited": false}}

or CSV whose columns are ``period``, the customer's canonical columns as ``crmtier tier``
reads them (``id``, ``assets.deposits``, ...), ``attributes.<name>`` and
``outcome.revenue_next_12m``/``outcome.attrited``.

``outcome`` is what happened over the 12 months after ``period``, so a history is usable
only once its newest snapshot is a year old. The state store cannot stand in for it: it
keeps each customer's latest tiers only, with no past snapshots and no outcomes.

A line that cannot be read, or lacks the outcome the target needs, is reported as
``line N: field <path>: <problem>`` and skipped; the rest are used. Customers are
rated point-in-time (no previous tier, so no hysteresis): calibration compares policies,
not one customer's path through them.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import date
from itertools import islice
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crmtier.calibrate import UnusableInput
from tiering_core import ingest
from tiering_core.collector import collector_paused
from tiering_core.columns import ENUM_INDEX, MISSING, Columns
from tiering_core.models import CustomerProfile
from tiering_core.policy import Policy
from tiering_core.rules import quality

TARGET_FIELDS = {"revenue": "revenue_next_12m", "attrition": "attrited"}
MISSING_ATTRIBUTE = "(missing)"
#: |outcome.revenue_next_12m| above this is a data error, not a customer (a thousand
#: trillion in any currency); past ~1e150 the R² of the inputs' importance overflows to NaN
REVENUE_LIMIT = 1e15


class Outcome(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    revenue_next_12m: Annotated[float, Field(ge=-REVENUE_LIMIT, le=REVENUE_LIMIT)] | None = None
    attrited: bool | None = None


class HistoryRecord(BaseModel):
    """One customer at one snapshot date, and what followed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    period: date
    customer: CustomerProfile
    attributes: dict[str, str] = {}
    outcome: Outcome


_VALIDATE_JSON = HistoryRecord.__pydantic_validator__.validate_json
_VALIDATE_PYTHON = HistoryRecord.__pydantic_validator__.validate_python
_ROW_BLOCKS = ("period", "attributes", "outcome")


def history_csv_column(name: str) -> bool:
    """A CSV column of the history's own (the rest are the customer's canonical columns)."""
    return name == "period" or name.startswith(("attributes.", "outcome."))


@dataclass
class History:
    """Rows in file order: cleaned inputs (DQ-checked, currency-converted), the snapshot
    date, the target outcome and the descriptive attributes, which never become inputs."""

    cols: Columns
    period: np.ndarray  # date ordinal per row
    target: np.ndarray  # float: revenue, or 1.0/0.0 attrited
    attributes: dict[str, np.ndarray]  # name -> object array of values
    skipped: int

    @property
    def periods(self) -> list[date]:
        return [date.fromordinal(int(p)) for p in np.unique(self.period)]


def read_history(
    numbered: Iterable[tuple[int, Any]],
    policy: Policy,
    target: str,
    report: Callable[[str], None],
) -> History:
    """Read every usable row (JSON lines as bytes, or CSV rows as ``read_csv`` yields
    them); ``report`` gets one line per skipped row."""
    key = TARGET_FIELDS[target]
    parts: list[Columns] = []
    period = array("q")  # compact: a history runs to millions of rows
    line = array("q")
    outcome = array("d")
    attributes = _Attributes()
    skipped = 0
    lines = iter(numbered)
    while True:
        with collector_paused():
            chunk = list(islice(lines, ingest.CHUNK))
            if not chunk:
                break
            customers: list[CustomerProfile] = []
            held: list[dict[str, str]] = []
            for number, raw in chunk:
                row = _row(number, raw, key, report)
                if row is None:
                    skipped += 1
                    continue
                customers.append(row.customer)
                period.append(row.period.toordinal())
                line.append(number)
                outcome.append(float(getattr(row.outcome, key)))
                held.append(row.attributes)
            if customers:
                parts.append(Columns.from_profiles(customers, policy))
                attributes.add(held)
    cols = _point_in_time(_concat(parts)) if parts else None
    if cols is None:
        raise UnusableInput("the history holds no usable row")
    periods = np.frombuffer(period, dtype=np.int64)
    target_column = np.frombuffer(outcome, dtype=np.float64)
    named = attributes.columns()
    keep = _first_of_each(cols.ids, periods, np.frombuffer(line, dtype=np.int64), report)
    if keep is not None:
        skipped += len(periods) - len(keep)
        cols, periods, target_column = cols.take(keep), periods[keep], target_column[keep]
        named = {name: values[keep] for name, values in named.items()}
    clean, _, _ = quality.check(cols, policy)
    return History(
        cols=clean, period=periods, target=target_column, attributes=named, skipped=skipped
    )


def _first_of_each(
    ids: list[str], period: np.ndarray, line: np.ndarray, report: Callable[[str], None]
) -> np.ndarray | None:
    """The rows to keep when a customer is listed twice in one snapshot (each one's first
    line; the others reported and skipped), or ``None`` when none is. A second listing
    would count the customer twice in the fit, the lift and each fairness group. Rows are
    grouped by a 64-bit hash of the id (16 bytes a row, not a dict of millions of ids);
    only rows whose period and hash meet are compared by id."""
    key = np.fromiter((hash(i) for i in ids), dtype=np.int64, count=len(ids))
    order = np.lexsort((line, key, period))
    meets = (key[order][1:] == key[order][:-1]) & (period[order][1:] == period[order][:-1])
    if not meets.any():
        return None
    keep = np.ones(len(ids), dtype=bool)
    problems: list[tuple[int, str]] = []
    bounds = np.flatnonzero(np.r_[True, ~meets, True])
    for run in np.flatnonzero(np.diff(bounds) > 1):  # the groups of two rows or more
        start, end = bounds[run], bounds[run + 1]
        first: dict[str, int] = {}
        for r in order[start:end]:
            if (f := first.setdefault(ids[r], r)) != r:
                keep[r] = False
                when = date.fromordinal(int(period[r]))
                problems.append((int(line[r]), f"duplicate of line {line[f]} in period {when}"))
    for number, where in sorted(problems):
        report(f"line {number}: field customer.id: {where}; skipped")
    return np.flatnonzero(keep)


class _Attributes:
    """Attribute columns built a chunk at a time, each distinct value held once: a book has
    a handful of regions and bands, and a dict per row cost 0.45 GB of peak memory at
    2,000,000 rows (bench/calibrate.py: 2.08 GB -> 1.62 GB)."""

    def __init__(self) -> None:
        self.chunks: list[tuple[int, dict[str, np.ndarray]]] = []
        self.values: dict[str, str] = {}

    def add(self, rows: list[dict[str, str]]) -> None:
        names = {name for a in rows for name in a}
        self.chunks.append(
            (
                len(rows),
                {
                    name: np.array(
                        [
                            self.values.setdefault(v, v)
                            for v in (a.get(name, MISSING_ATTRIBUTE) for a in rows)
                        ],
                        dtype=object,
                    )
                    for name in names
                },
            )
        )

    def columns(self) -> dict[str, np.ndarray]:
        """name -> value per row; a row without the attribute holds ``MISSING_ATTRIBUTE``."""
        names = sorted({name for _, chunk in self.chunks for name in chunk})
        return {
            name: np.concatenate(
                [
                    chunk.get(name, np.full(n, MISSING_ATTRIBUTE, dtype=object))
                    for n, chunk in self.chunks
                ]
            )
            for name in names
        }


def _row(
    number: int,
    raw: bytes | dict[str, Any] | ingest.Rejected,
    key: str,
    report: Callable[[str], None],
) -> HistoryRecord | None:
    """A JSON line (bytes), or a CSV row as the tree ``crmtier tier``'s reader makes it."""
    if isinstance(raw, ingest.Rejected):
        report(f"line {number}: {raw.reason}")
        return None
    try:
        if isinstance(raw, bytes):
            row = _VALIDATE_JSON(raw)
        else:
            tree = {k: raw.pop(k) for k in _ROW_BLOCKS if k in raw}
            row = _VALIDATE_PYTHON({**tree, "customer": raw})
    except ValidationError as exc:
        for reason in ingest.reasons(exc):
            report(f"line {number}: {reason}")
        return None
    if getattr(row.outcome, key) is None:
        report(f"line {number}: field outcome.{key}: required for this target")
        return None
    return row


def _concat(parts: list[Columns]) -> Columns:
    """One ``Columns`` of the chunks', in order (matrices are inputs x rows: join rows)."""
    joined: dict[str, Any] = {}
    for f in fields(Columns):
        values = [getattr(p, f.name) for p in parts]
        if f.name == "n":
            joined["n"] = sum(values)
        elif f.name == "enum_texts":
            joined[f.name] = [[x for v in values for x in v[k]] for k in range(len(values[0]))]
        elif isinstance(values[0], list):
            joined[f.name] = [x for v in values for x in v]
        elif f.name == "qualified_below_floor_since":
            # Present only in a chunk where some row carries a previous qualified tier;
            # calibrate forgets previous tiers (``_point_in_time``), so drop the column.
            joined[f.name] = None
        elif isinstance(values[0], dict):
            joined[f.name] = {k: np.concatenate([v[k] for v in values]) for k in values[0]}
        else:
            joined[f.name] = np.concatenate(values, axis=-1)
    return Columns(**joined)


def _point_in_time(cols: Columns) -> Columns:
    """Forget any previous tier: each snapshot is rated as if for the first time."""
    cols.enums[ENUM_INDEX["previous_value_tier"]] = MISSING
    cols.enums[ENUM_INDEX["previous_qualified_tier"]] = MISSING
    cols.below_floor_since[:] = np.nan
    cols.qualified_below_floor_since = None
    return cols
