"""A batch's DQ issues as each customer's plain data, from the evaluation's columns
(``rules.base.IssueColumn``): what ``decisions`` puts in every decision, each issue with
the input it is about as given."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tiering_core.cells import INTEGER_PATHS
from tiering_core.columns import ENUMS, NUMBERS, PATHS, BoolArray, Columns
from tiering_core.rules.base import IssueColumn


def _hits(masks: Sequence[BoolArray]) -> list[tuple[int, int]]:
    """(column, row) of every true cell, column by column: one numpy call for all masks."""
    if not masks:
        return []
    columns, rows = np.nonzero(np.vstack(masks))
    return list(zip(columns.tolist(), rows.tolist(), strict=True))


def issues_by_row(cols: Columns, columns: list[IssueColumn]) -> list[list[dict[str, Any]]]:
    """Each of the batch's customers' DQ issues as its decision holds them
    (``models.DQIssue``'s plain data: code, field, problem, the input as given), column
    by column in the rules' order. The true cells of every issue column are found in one
    numpy call, so a batch pays per issue found, not per customer and rule."""
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
        return cols.listed(row)
    return None  # a whole block, a missing flag
