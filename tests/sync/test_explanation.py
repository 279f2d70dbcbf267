"""The explanation written to the CRM (``sync.explanation``): bounded, in the configured
language, never showing the AML rating unless its field is restricted, stable (no date),
and planned like any write-back field (only when mapped, only when it changed)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from connectors.mapping import WritebackConfig, load_default_mapping
from connectors.sandbox.generator import generate
from sync.explanation import render
from sync.planner import Known, desired_fields, plan_customer
from tiering_core.engine import decide_batch
from tiering_core.models import CustomerProfile
from tiering_core.policy import load_policy

POLICY = load_policy()
DAY = date(2026, 12, 6)
DECISIONS = decide_batch(
    [
        CustomerProfile.model_validate({"id": c.id, **c.profile})
        for c in generate(300, seed=11, dirty_share=0)
    ],
    POLICY,
    DAY,
)
AML_WORDS = ("AML", "反洗钱", "洗钱", "sanction", "制裁", "PEP", "政治公众人物")


def _without_aml(assessment: Any) -> Any:
    """The assessment with no AML reason and another AML rating."""
    reasons = [r for r in assessment["reasons"] if r["dimension"] != "aml"]
    other = "low" if assessment["aml_risk"] != "low" else "high"
    return {**assessment, "reasons": reasons, "aml_risk": other}


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("max_chars", [60, 100, 255, 2000])
def test_the_text_is_bounded_and_hides_the_aml_rating(lang: str, max_chars: int) -> None:
    for a in DECISIONS:
        text = render(a, lang, max_chars, show_aml=False)
        assert 0 < len(text) <= max_chars
        assert not any(word in text for word in AML_WORDS), text
        assert text == render(_without_aml(a), lang, max_chars, show_aml=False)
        assert text == render(a, lang, max_chars, show_aml=False)  # deterministic
        assert DAY.isoformat() not in text  # no date: an unchanged decision is not rewritten
        label = "价值等级" if lang == "zh" else "Value"
        assert text.startswith(f"{label} {a['value_tier']}")


def test_a_long_enough_field_holds_every_level_reason_and_the_version() -> None:
    for a in DECISIONS:
        text = render(a, "en", 2000, show_aml=False)
        for key in ("value_tier", "needs_tier", "credit_risk", "ops_risk"):
            assert f" {a[key]}" in text
        assert text.endswith(f"Policy {a['policy_version']}.")
        heaviest = max(
            (r for r in a["reasons"] if r["dimension"] == "value"),
            key=lambda r: (r["weight"], r["code"]),
            default=None,
        )
        if heaviest is not None and heaviest["weight"] > 0:
            assert any(r["text"]["en"] in text for r in a["reasons"] if r["dimension"] == "value")


def test_reasons_go_before_levels_when_the_field_is_short() -> None:
    """Cut to fit: the last dimensions' reasons go first, the levels stay."""
    a = next(a for a in DECISIONS if len(render(a, "en", 2000, show_aml=False)) > 200)
    short = render(a, "en", 120, show_aml=False)
    assert len(short) <= 120 and short.startswith(f"Value {a['value_tier']}")
    zh = render(a, "zh", 2000, show_aml=False)
    assert zh.endswith(f"策略 {a['policy_version']}。")


def test_a_restricted_field_shows_the_aml_rating() -> None:
    a = next(a for a in DECISIONS if a["aml_risk"] in ("high", "prohibited"))
    assert f"AML risk {a['aml_risk']}" in render(a, "en", 2000, show_aml=True)
    assert "AML" not in render(a, "en", 2000, show_aml=False)


WRITEBACK = load_default_mapping("salesforce").writeback


def _with(**update: Any) -> WritebackConfig:
    fields = {**WRITEBACK.fields, "explanation": "Tier_Explanation__c"}
    return WritebackConfig.model_validate(
        {**WRITEBACK.model_dump(), "switched_off": (), "fields": fields, **update}
    )


def test_the_planner_writes_the_explanation_only_when_mapped_and_changed() -> None:
    a = DECISIONS[0]
    assert "explanation" not in desired_fields(a, WRITEBACK)
    zh = _with(explanation_language="zh", explanation_max_chars=100)
    wanted = desired_fields(a, zh)["explanation"]
    assert wanted == render(a, "zh", 100, show_aml=False)
    assert plan_customer(a, {}, Known(), zh).fields["explanation"] == wanted
    shown = {**desired_fields(a, zh)}
    assert "explanation" not in plan_customer(a, shown, Known(), zh).fields
    restricted = _with(restricted=("aml_risk", "explanation"), explanation_max_chars=2000)
    assert "AML risk" in desired_fields(a, restricted)["explanation"]


def test_the_values_given_are_copied_not_changed() -> None:
    """``desired_fields`` adds the explanation to a dict of its own: the caller's values
    (a page's ``field_rows``) stay as they were."""
    a = DECISIONS[0]
    zh = _with(explanation_language="zh")
    values = desired_fields(a, WRITEBACK)  # the mapped set_field values, no explanation
    given = dict(values)
    desired = desired_fields(a, zh, values)
    assert values == given and desired is not values
    assert desired == desired_fields(a, zh)


@pytest.mark.parametrize("max_chars", [60, 100, 255])
def test_the_text_fits_in_utf16_code_units_as_salesforce_counts(max_chars: int) -> None:
    """A policy version of emoji (two UTF-16 code units each) must not make the line
    longer than the field by Salesforce's count: by code points it came out near twice
    ``max_chars`` and the field refused it."""
    for a in DECISIONS[:20]:
        text = render({**a, "policy_version": "😀" * 200}, "en", max_chars, show_aml=False)
        assert len(text.encode("utf-16-le")) // 2 <= max_chars
