"""A reason's text: rendered when read, and reading as the text the catalogue gives, also
when a column of them is made at once (the CRM's reasons field)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiering_core.models import Reason
from tiering_core.reasons import (
    CATALOGUE,
    format_value,
    format_values,
    lines_of,
    make_reason,
    reason_line,
)

CASES = [
    # code, value, threshold, English text, Chinese text
    (
        "VAL_AUM_WEALTH",
        1_234_567.891,
        1_000_000.0,
        "AUM 1,234,567.89 >= wealth floor 1,000,000",
        "资产 1,234,567.89 ≥ 财富门槛 1,000,000",
    ),
    (
        "VAL_HELD_GRACE",
        12,
        90,
        "Below floor for 12 of 90 grace days: tier kept",
        "低于门槛 12 天（宽限 90 天），暂保级",
    ),
    (
        "NEED_TIER",
        "wealth",
        "advanced",
        "Value tier wealth sets needs advanced",
        "价值等级 wealth，需求 advanced",
    ),
    ("NEED_BASIC", None, None, "No investment products: basic needs", "无投资类产品：基础需求"),
]


@pytest.mark.parametrize(("code", "value", "threshold", "en", "zh"), CASES)
def test_text_reads_in_each_language_as_the_catalogue_renders_it(
    code: str, value: Any, threshold: Any, en: str, zh: str
) -> None:
    text = make_reason(code, value, threshold)["text"]
    assert text["en"] == en
    assert text["zh"] == zh
    assert dict(text) == {"en": en, "zh": zh}
    assert text == {"en": en, "zh": zh}
    assert text.rendered() == {"en": en, "zh": zh}
    assert Reason.model_validate(make_reason(code, value, threshold)).text.en == en


def test_a_language_the_product_does_not_ship_is_not_there() -> None:
    text = make_reason("NEED_BASIC")["text"]
    assert "fr" not in text
    with pytest.raises(KeyError):
        text["fr"]


NUMBERS = st.one_of(
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=False, min_value=-1e17, max_value=1e17),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(NUMBERS, max_size=8))
def test_a_column_of_numbers_reads_as_each_number_does(values: list[Any]) -> None:
    """The reasons field formats a column's values in C-level passes (``format_values``):
    each text is still ``format_value``'s."""
    assert format_values(values) == list(map(format_value, values))


@pytest.mark.parametrize(
    "values",
    [
        [-0.0, 5],  # whole: "0", where two stripped decimals read "-0"
        [-0.001, 2.5],  # not whole: "-0" either way
        [2**53 + 1, 0.5],  # beyond a float's exact integers
        [True, 1, 2.5],
        ["wealth", None, 3],
        [],
    ],
)
def test_numbers_a_shortcut_would_misread(values: list[Any]) -> None:
    assert format_values(values) == list(map(format_value, values))


@pytest.mark.parametrize("language", ["en", "zh", "both"])
@pytest.mark.parametrize(("code", "value", "threshold", "en", "zh"), CASES)
def test_a_line_made_from_a_template_reads_as_the_reasons_line(
    code: str, value: Any, threshold: Any, en: str, zh: str, language: str
) -> None:
    """``lines_of`` (the reasons field from the cells) writes ``reason_line``'s line."""
    reason = make_reason(code, value, threshold)
    assert (
        lines_of(CATALOGUE[code], language, threshold, [value, value])
        == [reason_line(reason, language)] * 2
    )
