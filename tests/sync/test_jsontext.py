"""The state store's JSON codec reads what the ``json`` module wrote (stores written before
it) and writes what the ``json`` module reads (tools, and a rollback to an older release)."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sync import jsontext

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_values)
def test_both_codecs_agree_on_every_json_value(value: Any) -> None:
    assert jsontext.loads(json.dumps(value)) == value
    assert json.loads(jsontext.dumps(value)) == value
    assert jsontext.loads(jsontext.dumps(value)) == value


def test_text_stays_utf8_and_compact() -> None:
    assert jsontext.dumps({"reason": "资产 ≥ 1,000,000", "n": [1, 2]}) == (
        '{"reason":"资产 ≥ 1,000,000","n":[1,2]}'
    )


def test_non_finite_numbers_round_trip_as_the_json_module_writes_them() -> None:
    text = jsontext.dumps([math.inf, -math.inf])
    assert text == json.dumps([math.inf, -math.inf], separators=(",", ":"))
    assert jsontext.loads(text) == [math.inf, -math.inf]
    assert math.isnan(jsontext.loads(jsontext.dumps(math.nan)))
