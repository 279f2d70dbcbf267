"""A reason's text: rendered when read, and reading as the text the catalogue gives."""

from __future__ import annotations

from typing import Any

import pytest

from tiering_core.models import Reason
from tiering_core.reasons import make_reason

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
