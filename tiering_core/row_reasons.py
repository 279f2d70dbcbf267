"""A batch's reasons and DQ issues as each customer's plain data, from the evaluation's
columns (``rules.base.ReasonColumn``/``IssueColumn``): what ``decisions`` puts in every
decision. Made column by column: a column's cells of all its rows are taken in one numpy
call, and customers who share a value and threshold share one text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from itertools import pairwise
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from tiering_core.cells import INTEGER_PATHS
from tiering_core.columns import ENUMS, NUMBERS, PATHS, BoolArray, Columns
from tiering_core.fragments import keyed
from tiering_core.reason_spec import ReasonSpec
from tiering_core.reasons import CATALOGUE, ReasonText
from tiering_core.rules.base import IssueColumn, ReasonColumn


def _py(value: Any) -> Any:
    """A numpy/float value as JSON-friendly Python: whole numbers as int, NaN as None."""
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        return int(value) if value.is_integer() else value
    return value


def _hits(masks: Sequence[BoolArray]) -> list[tuple[int, int]]:
    """(column, row) of every true cell, column by column: one numpy call for all masks."""
    if not masks:
        return []
    columns, rows = np.nonzero(np.vstack(masks))
    return list(zip(columns.tolist(), rows.tolist(), strict=True))


class ReasonCells(NamedTuple):
    """A batch's reasons, one per true cell of its reason columns, in column-major order:
    each cell's column, row and weight as numpy arrays (what the reasons field is chosen
    by, column-wise: ``reasons_field``) and its reason as plain data (one dict for the
    cells of a column with the same reason: ``reason_cells``)."""

    column: npt.NDArray[np.intp]
    row: npt.NDArray[np.intp]
    weight: npt.NDArray[np.float64]
    reasons: list[dict[str, Any]]


def reason_cells(cols: Columns, columns: Sequence[ReasonColumn], rendered: bool) -> ReasonCells:
    """Every reason of the batch. Made column by column: one numpy call finds the true
    cells of all columns, one takes a column's cells of all its rows, and the customers
    of a column who share a value and threshold share one text (rendered once: up front
    if ``rendered``, else when first read) and, where the weight is the code's, one
    reason dict: most reasons are one of a few (a generated chunk of 1,988 customers has
    14,648 reasons, 3,279 distinct), so the dicts are made per distinct reason, not per
    cell. The shared dicts are read, never changed (``engine._with_texts`` renders a text
    in place: the same for every sharer)."""
    text_of: Callable[[ReasonSpec, Any, Any], Mapping[str, str]] = (
        _rendered if rendered else ReasonText
    )
    if columns:
        column, row = np.nonzero(np.vstack([rc.mask for rc in columns]))
    else:
        column = row = np.zeros(0, dtype=np.intp)
    bounds = [0, *(np.flatnonzero(np.diff(column)) + 1).tolist(), column.size]
    firsts, cells = column.tolist(), row.tolist()
    reasons: list[dict[str, Any]] = []
    weights: list[Any] = []
    for a, b in pairwise(bounds if column.size else ()):
        rc, hit = columns[firsts[a]], cells[a:b]
        observed: list[Any]
        if rc.profile_path is not None:  # the listed countries, as given
            observed = [_listed(cols, i) for i in hit]
        elif rc.labels is not None:
            labels = rc.labels
            observed = [None if k is None else labels[int(k)] for k in _cells(rc.value, hit)]
        else:
            observed = _cells(rc.value, hit)
        thresholds = _cells(rc.threshold, hit)
        spec = CATALOGUE[rc.code]
        if rc.weight is None:
            column_weights = [spec.weight] * len(hit)
        else:
            column_weights = [
                # float as ``Reason.weight`` is: ``_cells`` makes a whole float int, and
                # a line would read "weight":0 where the model writes 0.0
                spec.weight if w is None else round(float(w), 4)
                for w in _cells(rc.weight, hit)
            ]
        weights += column_weights
        if rc.profile_path is not None:  # lists: a reason and a text each
            reasons += [
                _reason(spec, seen, t, w, text_of(spec, seen, t))
                for seen, t, w in zip(observed, thresholds, column_weights, strict=True)
            ]
        elif rc.weight is not None:  # a cell's own weight: a reason each, texts shared
            texts = _distinct(observed, thresholds, partial(text_of, spec))
            reasons += map(partial(_reason, spec), observed, thresholds, column_weights, texts)
        else:  # the code's weight: a reason per distinct value and threshold
            reasons += _distinct(observed, thresholds, partial(_reason_of, spec, text_of))
    return ReasonCells(column, row, np.array(weights, dtype=np.float64), reasons)


def _distinct(
    observed: list[Any], thresholds: list[Any], make: Callable[[Any, Any], Any]
) -> list[Any]:
    """``make(value, threshold)`` of each cell, called once per distinct pair and shared
    by the cells that have it. A value is never two JSON spellings under one key: a
    column's cells are one type, whole floats made int and NaN None (``_plain``)."""
    return keyed(list(zip(observed, thresholds, strict=True)), lambda key: make(*key))


def _reason_of(
    spec: ReasonSpec, text_of: Callable[[ReasonSpec, Any, Any], Any], value: Any, threshold: Any
) -> dict[str, Any]:
    """A reason with the code's own weight and its text."""
    return _reason(spec, value, threshold, spec.weight, text_of(spec, value, threshold))


def _reason(spec: ReasonSpec, value: Any, threshold: Any, weight: Any, text: Any) -> dict[str, Any]:
    """A reason as plain data (``reasons.make_reason``'s dict, from its parts)."""
    return {
        "code": spec.code,
        "dimension": spec.dimension,
        "factor": spec.factor,
        "value": value,
        "threshold": threshold,
        "weight": weight,
        "text": text,
    }


def by_row(n: int, cells: ReasonCells) -> list[list[dict[str, Any]]]:
    """Each of the ``n`` customers' reasons, in column order: the cells put in row-major
    order by one stable numpy sort and cut at each row's end (a slice a customer instead
    of an append a reason)."""
    order = np.argsort(cells.row, kind="stable").tolist()
    flat = list(map(cells.reasons.__getitem__, order))
    ends = np.cumsum(np.bincount(cells.row, minlength=n)).tolist()
    return [flat[a:b] for a, b in zip([0, *ends], ends, strict=False)]


def _rendered(spec: ReasonSpec, value: Any, threshold: Any) -> dict[str, str]:
    return ReasonText(spec, value, threshold).rendered()


def _listed(cols: Columns, row: int) -> list[str] | None:
    listed = cols.listed_countries[row]
    return None if listed is None else list(listed)


def _cells(values: Any, rows: list[int]) -> list[Any]:
    """A column's ``rows`` as JSON-friendly Python values; a scalar stands for every row."""
    if isinstance(values, np.ndarray):
        return _plain(values[rows])
    return [_py(values)] * len(rows)


#: Beyond this a whole float does not fit an int64 (``_py`` makes it a Python int).
_INT64_SAFE = 2.0**62
#: Fewer cells than this are cheaper one by one than through four numpy calls (a batch
#: of one: the webhook path).
_FEW = 16


def _plain(x: npt.NDArray[Any]) -> list[Any]:
    """``[_py(v) for v in x.tolist()]``, in one C-level conversion when the column allows
    it (every cell a whole number: counts, most thresholds), else one conversion with the
    whole cells (as int) and the NaN ones (as None) put in by index (amounts, whole and
    fractional mixed). A reason's cells are most of a decision's values, so the per-cell
    Python call of ``_py`` was a tenth of deciding (bench/core.py)."""
    cells: list[Any]
    if x.dtype.kind != "f":
        cells = x.tolist()  # codes and flags: _py leaves non-floats as they are
        return cells
    if x.size < _FEW:
        return [_py(v) for v in x.tolist()]
    finite = np.isfinite(x)
    whole = finite & (np.trunc(x) == x)
    safe = (np.abs(x) < _INT64_SAFE) | ~whole
    if not safe.all():  # a whole number beyond int64: _py makes it a Python int
        return [_py(v) for v in x.tolist()]
    if whole.all():
        cells = x.astype(np.int64).tolist()
        return cells
    cells = x.tolist()
    if whole.any():  # mixed (an amount's whole and fractional cells): whole ones as int
        at = np.flatnonzero(whole)
        for k, v in zip(at.tolist(), x[at].astype(np.int64).tolist(), strict=True):
            cells[k] = v
    for k in np.flatnonzero(np.isnan(x)).tolist():
        cells[k] = None
    return cells


def issues_by_row(cols: Columns, columns: list[IssueColumn]) -> list[list[dict[str, Any]]]:
    rows: list[list[dict[str, Any]]] = [[] for _ in range(cols.n)]
    for c, i in _hits([ic.mask for ic in columns]):
        ic = columns[c]
        rows[i].append(
            {
                "code": ic.code,
                "field": ic.path,
                "problem": ic.problem,
                "value": _input_value(cols, ic.path, i),
            }
        )
    return rows


#: Canonical path -> (row in ``numbers``, whether the model holds it as an integer).
_NUMBER_ROWS = {
    PATHS[name]: (k, PATHS[name] in INTEGER_PATHS) for k, (name, _, _) in enumerate(NUMBERS)
}
#: Canonical path -> row in ``enum_texts``.
_ENUM_ROWS = {PATHS[name]: k for k, (name, *_) in enumerate(ENUMS)}


def _input_value(cols: Columns, path: str, row: int) -> Any:
    """The input a DQ issue is about, as given (a block or a missing value: None)."""
    number = _NUMBER_ROWS.get(path)
    if number is not None:
        k, integer = number
        x = float(cols.numbers[k, row])
        return None if x != x else int(x) if integer else x
    enum = _ENUM_ROWS.get(path)
    if enum is not None:
        return cols.enum_texts[enum][row]
    if path == "currency":
        return cols.currencies[row]
    if path == "aml.high_risk_countries":
        return _listed(cols, row)
    return None  # a whole block, a missing flag
