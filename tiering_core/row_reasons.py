"""A batch's reasons as each customer's plain data, from the evaluation's columns
(``rules.base.ReasonColumn``): what ``decisions`` puts in every decision. Reasons stay
codes and cell values until they are read (``ReasonCells``): the sync writing tier fields
reads a customer's reason codes and the CRM's reasons field, not its reason dicts. Made
column by column: a column's cells of all its rows are taken in one numpy call, and
customers who share a value and threshold share one text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cached_property, partial
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

from tiering_core.columns import Columns
from tiering_core.fragments import keyed
from tiering_core.reason_spec import ReasonSpec
from tiering_core.reasons import CATALOGUE, ReasonText, lines_of, reason_line
from tiering_core.rules.base import ReasonColumn


def _py(value: Any) -> Any:
    """A numpy/float value as JSON-friendly Python: whole numbers as int, NaN as None."""
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        return int(value) if value.is_integer() else value
    return value


class ReasonCells:
    """A batch's reasons, one per true cell of its reason columns, in column-major order,
    kept as codes and values until read (built by ``reason_cells``).

    Held from the start, as what the reasons field is chosen and written from
    (``reasons_field``, ``lines``): each cell's column, row and weight as numpy arrays,
    and its observed value and threshold as plain data. Made only when read: each
    customer's codes (``codes``, what the sync keeps), the texts (``texts``, one per
    distinct code, value and threshold), the reasons as dicts (``reasons``, one per
    distinct reason where the weight is the code's: a generated chunk of 1,988 customers
    has 14,648 reasons, 4,008 distinct) and each customer's list of them (``rows``)."""

    def __init__(
        self,
        cols: Columns,
        columns: Sequence[ReasonColumn],
        cells: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]],
        rendered: bool,
    ) -> None:
        self.n, self._cols, self.columns, self.rendered = cols.n, cols, columns, rendered
        self.column, self.row = cells
        self.weight = _weights(columns, self.column, self.row)

    @cached_property
    def _plain(self) -> tuple[list[Any], list[Any]]:
        """Every cell's observed value and threshold as plain data (``_observed``)."""
        values: list[Any] = []
        thresholds: list[Any] = []
        for _, rc, a, b in self._segments():
            observed, limits = _observed(self._cols, rc, self.row[a:b].tolist())
            values += observed
            thresholds += limits
        return values, thresholds

    @property
    def values(self) -> list[Any]:
        return self._plain[0]

    @property
    def thresholds(self) -> list[Any]:
        return self._plain[1]

    @cached_property
    def _numbered(self) -> tuple[list[int], list[tuple[ReasonSpec, Any, Any]]]:
        """Each cell's text number, and each text's code, value and threshold: the cells
        of a column with the same value and threshold share a text (a listed value, a
        list, has one of its own). A value is never two JSON spellings under one key: a
        column's cells are one type (whole floats int, NaN None: ``_plain``)."""
        numbers: list[int] = []
        sources: list[tuple[ReasonSpec, Any, Any]] = []
        values, thresholds = self._plain
        for spec, rc, a, b in self._segments():
            pairs: Iterable[tuple[Any, Any]]
            if rc.profile_path is not None:  # lists: a text each
                pairs = zip(values[a:b], thresholds[a:b], strict=True)
                numbers += range(len(sources), len(sources) + b - a)
            elif isinstance(rc.value, np.ndarray) or isinstance(rc.threshold, np.ndarray):
                cells = list(zip(values[a:b], thresholds[a:b], strict=True))
                first = len(sources)
                pairs = dict.fromkeys(cells)  # in order of first appearance
                number = dict(zip(pairs, range(first, first + len(pairs)), strict=True))
                numbers += map(number.__getitem__, cells)
            else:  # one value and threshold for the whole column: one text
                pairs = [(values[a], thresholds[a])]
                numbers += [len(sources)] * (b - a)
            sources += [(spec, value, threshold) for value, threshold in pairs]
        return numbers, sources

    def _segments(self) -> Iterator[tuple[ReasonSpec, ReasonColumn, int, int]]:
        """Each column's code, column and cells (``a:b``)."""
        firsts = self.column.tolist()
        for a, b in pairwise(_bounds(self.column)):
            rc = self.columns[firsts[a]]
            yield CATALOGUE[rc.code], rc, a, b

    @cached_property
    def texts(self) -> list[Mapping[str, str]]:
        """Each text by language: rendered up front if ``rendered`` (a caller that writes
        them all), else when first read (``reasons.ReasonText``)."""
        text_of: Callable[[ReasonSpec, Any, Any], Mapping[str, str]] = (
            _rendered if self.rendered else ReasonText
        )
        return [text_of(*source) for source in self._numbered[1]]

    @cached_property
    def reasons(self) -> list[dict[str, Any]]:
        """Each cell's reason as plain data (``reasons.make_reason``'s dict). A column's
        cells with the code's weight and one text share one dict; the shared dicts are
        read, never changed (``engine._with_texts`` renders a text in place: the same for
        every sharer)."""
        texts, (numbers, sources) = self.texts, self._numbered
        weights = self.weight.tolist()
        out: list[dict[str, Any]] = []
        for spec, rc, a, b in self._segments():
            if rc.weight is None and rc.profile_path is None:  # a dict per distinct text
                out += keyed(numbers[a:b], partial(_shared, spec, sources, texts))
            else:  # a cell's own weight or list: a reason each, texts shared
                out += map(
                    partial(_reason, spec),
                    self.values[a:b],
                    self.thresholds[a:b],
                    weights[a:b],
                    map(texts.__getitem__, numbers[a:b]),
                )
        return out

    @cached_property
    def _order(self) -> tuple[list[int], list[int]]:
        """The cells in row-major order (one stable numpy sort) and each row's end."""
        order = np.argsort(self.row, kind="stable").tolist()
        ends = np.cumsum(np.bincount(self.row, minlength=self.n)).tolist()
        return order, ends

    @cached_property
    def rows(self) -> list[list[dict[str, Any]]]:
        """Each customer's reasons, in column order (a slice a customer)."""
        order, ends = self._order
        return _cut(list(map(self.reasons.__getitem__, order)), ends)

    @cached_property
    def codes(self) -> list[tuple[str, ...]]:
        """Each customer's reason codes, in column order, without a reason dict."""
        order, ends = self._order
        names = [rc.code for rc in self.columns]
        flat = list(map(names.__getitem__, self.column[order].tolist()))
        return list(map(tuple, _cut(flat, ends)))

    def values_of(self, code: str) -> dict[int, Any]:
        """Each row's value of its first reason ``code`` (in column order; a row without
        one is absent), read from the cells."""
        out: dict[int, Any] = {}
        for _, rc, a, b in self._segments():
            if rc.code == code:
                for row, value in zip(self.row[a:b].tolist(), self.values[a:b], strict=True):
                    out.setdefault(row, value)
        return out

    def lines(self, chosen: list[int], language: str) -> list[str]:
        """Cells ``chosen`` as the CRM's reasons field shows them (``reasons.reason_line``),
        one line made per distinct code, value and threshold: from the texts when they
        are to be made anyway (``rendered``), else from the cells' values, the one
        language alone. A listed value (``profile_path``: an AML reason, which the field
        never shows) cannot key a line; each of its cells is made alone (``reason_line``)."""
        if self.rendered:
            texts, (numbers, sources) = self.texts, self._numbered
            return keyed(
                list(map(numbers.__getitem__, chosen)),
                lambda k: reason_line({"code": sources[k][0].code, "text": texts[k]}, language),
            )
        # column by column (cells in cell order are by column), each column's template
        # filled once per distinct value (and threshold, where a row has its own)
        where = np.array(chosen, dtype=np.intp)
        by_column = np.argsort(where, kind="stable")
        cells = where[by_column]
        made: list[str] = []
        firsts = self.column[cells].tolist()
        for a, b in pairwise(_bounds(self.column[cells])):
            rc, spec = self.columns[firsts[a]], CATALOGUE[self.columns[firsts[a]].code]
            values, limits = _observed(self._cols, rc, self.row[cells[a:b]].tolist())
            if rc.profile_path is not None:  # lists, unhashable: a line a cell
                made += [
                    reason_line({"code": rc.code, "text": ReasonText(spec, value, limit)}, language)
                    for value, limit in zip(values, limits, strict=True)
                ]
            elif isinstance(rc.threshold, np.ndarray):  # a threshold a row
                pairs = zip(values, limits, strict=True)
                made += keyed(list(pairs), partial(_line, spec, language))
            else:  # one threshold: a line per distinct value
                distinct = list(dict.fromkeys(values))
                shown = lines_of(spec, language, limits[0], distinct)
                made += map(dict(zip(distinct, shown, strict=True)).__getitem__, values)
        out = np.empty(len(chosen), dtype=object)
        out[by_column] = made
        lines: list[str] = out.tolist()
        return lines


class RowReasons(Sequence[dict[str, Any]]):
    """Customer ``i``'s reasons as a decision holds them, made when first read (the
    batch's ``ReasonCells.rows``); its codes (``codes_of``) are read without them."""

    __slots__ = ("_cells", "_i")

    def __init__(self, cells: ReasonCells, i: int) -> None:
        self._cells, self._i = cells, i

    @property
    def codes(self) -> tuple[str, ...]:
        return self._cells.codes[self._i]

    def _made(self) -> list[dict[str, Any]]:
        return self._cells.rows[self._i]

    def __getitem__(self, k: Any) -> Any:
        return self._made()[k]

    def __len__(self) -> int:
        return len(self._made())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._made())

    def __eq__(self, other: object) -> bool:
        """Equal to its list of reasons, as a decision made whole holds them."""
        if isinstance(other, RowReasons):
            other = other._made()
        return self._made() == other

    __hash__ = None  # type: ignore[assignment]  # equal as its list is: unhashable

    def __repr__(self) -> str:
        return repr(self._made())


def codes_of(reasons: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """The codes of a decision's reasons; read from the cells, without making a reason
    dict, when the decision came from the columns (``DecisionColumns.plain``)."""
    if isinstance(reasons, RowReasons):
        return reasons.codes
    return tuple(r["code"] for r in reasons)


def reason_cells(cols: Columns, columns: Sequence[ReasonColumn], rendered: bool) -> ReasonCells:
    """Every reason of the batch as cells: one numpy call finds the true cells of all
    columns; their values are taken when read, a column's cells of all its rows in one
    numpy call (``ReasonCells``)."""
    if columns:
        column, row = np.nonzero(np.vstack([rc.mask for rc in columns]))
    else:
        column = row = np.zeros(0, dtype=np.intp)
    return ReasonCells(cols, columns, (column, row), rendered)


def _weights(
    columns: Sequence[ReasonColumn], column: npt.NDArray[np.intp], row: npt.NDArray[np.intp]
) -> npt.NDArray[np.float64]:
    """Each cell's weight: its code's (one numpy lookup), or where a column gives its
    cells their own (AML factor contributions), that weight rounded as
    ``reasons.make_reason`` rounds it (a missing one: the code's)."""
    code_weights = np.array([CATALOGUE[rc.code].weight for rc in columns], dtype=np.float64)
    weights = code_weights[column] if column.size else np.zeros(0, dtype=np.float64)
    firsts = column.tolist()
    for a, b in pairwise(_bounds(column)):
        rc = columns[firsts[a]]
        if rc.weight is not None:
            spec = CATALOGUE[rc.code]
            weights[a:b] = [
                spec.weight if w is None else round(float(w), 4)
                for w in _cells(rc.weight, row[a:b].tolist())
            ]
    return weights


def _observed(cols: Columns, rc: ReasonColumn, rows: list[int]) -> tuple[list[Any], list[Any]]:
    """Column ``rc``'s observed values and thresholds at ``rows`` as plain data."""
    observed: list[Any]
    if rc.profile_path is not None:  # the listed countries, as given
        observed = [cols.listed(i) for i in rows]
    elif rc.labels is not None:
        labels = rc.labels
        observed = [None if k is None else labels[int(k)] for k in _cells(rc.value, rows)]
    else:
        observed = _cells(rc.value, rows)
    return observed, _cells(rc.threshold, rows)


def _bounds(column: npt.NDArray[np.intp]) -> list[int]:
    """Where each column's cells start, and the end (column-major cells)."""
    if not column.size:
        return []
    return [0, *(np.flatnonzero(np.diff(column)) + 1).tolist(), column.size]


def _cut(flat: list[Any], ends: list[int]) -> list[list[Any]]:
    """``flat`` cut at each row's end: a slice a row."""
    return [flat[a:b] for a, b in zip([0, *ends], ends, strict=False)]


def _line(spec: ReasonSpec, language: str, key: tuple[Any, Any]) -> str:
    value, threshold = key
    (line,) = lines_of(spec, language, threshold, [value])
    return line


def _shared(
    spec: ReasonSpec,
    sources: list[tuple[ReasonSpec, Any, Any]],
    texts: list[Mapping[str, str]],
    text: int,
) -> dict[str, Any]:
    """The reason of text ``text`` with the code's own weight."""
    _, value, threshold = sources[text]
    return _reason(spec, value, threshold, spec.weight, texts[text])


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


def _rendered(spec: ReasonSpec, value: Any, threshold: Any) -> dict[str, str]:
    return ReasonText(spec, value, threshold).rendered()


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
