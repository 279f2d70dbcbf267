"""A reason column's cells as JSON-friendly Python (``row_reasons._plain``) are exactly
what ``_py`` makes of each cell, value and type, whatever mix of whole, fractional,
negative-zero, NaN, infinite and beyond-int64 cells a column holds: a reason's value is
written to the CRM and the output lines as these make it (1 and 1.0, 0 and -0.0 are
spelled differently)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tiering_core.row_reasons import _plain, _py

_SPECIAL = [0.0, -0.0, 1.0, -3.0, 2.5, -0.125, math.nan, math.inf, -math.inf, 2.0**63, 1e300]


def _spelled(cells: list[Any]) -> list[tuple[type, str]]:
    return [(type(v), repr(v)) for v in cells]


@given(
    st.lists(
        st.one_of(
            st.sampled_from(_SPECIAL),
            st.integers(-(10**6), 10**6).map(float),
            st.floats(allow_nan=True, allow_infinity=True),
        ),
        min_size=16,  # past the cell-by-cell path of a batch of one
        max_size=60,
    )
)
def test_a_columns_cells_are_each_cells_py(values: list[float]) -> None:
    x = np.array(values, dtype=np.float64)
    assert _spelled(_plain(x)) == _spelled([_py(v) for v in x.tolist()])


def test_a_mixed_column_gets_its_whole_cells_as_int_and_nan_as_none() -> None:
    x = np.array([1.5, 2.0, math.nan, -0.0, 7.25, math.inf] * 4)
    cells = _plain(x)
    assert _spelled(cells[:6]) == _spelled([1.5, 2, None, 0, 7.25, math.inf])
