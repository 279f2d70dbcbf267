"""A text longer than its Zoho field's metadata ``length`` is refused before the write
call, for its record only (the rest of the plan is written), naming the output, the
field, both lengths and the key that bounds it (never the text, which may hold a
customer's figures); it was cut to fit, which left the CRM holding less than the audit
trail records as decided. ``doctor`` names such a field before the first sync."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from connectors.contract import FieldUpdate, WritePlan
from connectors.errors import ConfigError
from connectors.mapping import WritebackConfig
from connectors.zoho.checks import _length_check
from connectors.zoho.mapping import FieldInfo, TextTooLong, zoho_value
from connectors.zoho.writes import TEXT_TOO_LONG

#: (output, field type, field length, text length, refusal or None: written whole)
CASES = [
    pytest.param("reasons", "textarea", 2000, 2000, None, id="reasons-filling-the-field"),
    pytest.param("reasons", "textarea", None, 40_000, None, id="reasons-no-length-given"),
    pytest.param(
        "reasons",
        "textarea",
        2000,
        2001,
        "writeback.fields.reasons -> Zoho Accounts.Tier_Reasons: a text of 2001 characters does "
        "not fit the field (at most 2000 characters); lengthen Tier_Reasons in Zoho, or "
        "shorten what reasons holds (the policy's strategy.reasons_max_chars)",
        id="reasons-one-over-refused",
    ),
    pytest.param(
        "explanation",
        "text",
        100,
        255,
        "writeback.fields.explanation -> Zoho Accounts.Tier_Reasons: a text of 255 characters does "
        "not fit the field (at most 100 characters); lengthen Tier_Reasons in Zoho, or "
        "shorten what explanation holds ([writeback] explanation_max_chars)",
        id="explanation-over-a-short-field-refused",
    ),
    pytest.param(
        "policy_version",
        "text",
        10,
        11,
        "writeback.fields.policy_version -> Zoho Accounts.Tier_Reasons: a text of 11 characters "
        "does not fit the field (at most 10 characters); lengthen Tier_Reasons in Zoho, or "
        "shorten what policy_version holds (its text)",
        id="policy-version-over-refused",
    ),
]


@pytest.mark.parametrize(("output", "kind", "length", "chars", "refusal"), CASES)
def test_text_is_written_whole_or_refused(
    output: str, kind: str, length: int | None, chars: int, refusal: str | None
) -> None:
    field = FieldInfo("Tier_Reasons", kind, length=length)
    text = "字" * chars  # characters, not bytes, are counted
    if refusal is None:
        assert zoho_value(output, text, field, module="Accounts") == text
        return
    with pytest.raises(TextTooLong) as info:
        zoho_value(output, text, field, module="Accounts")
    assert not isinstance(info.value, ConfigError)  # one record's, not the run's
    assert str(info.value) == refusal
    assert "字" not in str(info.value)


def test_a_text_longer_than_its_field_fails_its_record_only(zoho, zconnect):
    """How long a text is depends on the customer: one too long for its field fails that
    customer's update (not retried, so the sync dead-letters it with this reason), and
    the customers around it are written, in one call, rather than the whole plan (and,
    re-sent each run, every later run) stopping on it."""
    connector = zconnect(zoho)
    first, second, third = zoho.customer_ids()[:3]
    plan = WritePlan(
        field_updates=(
            FieldUpdate(first, {"policy_version": "v1"}),
            FieldUpdate(second, {"policy_version": "v" * 256}),  # the sandbox's text: 255
            FieldUpdate(third, {"policy_version": "v1"}),
        )
    )
    results = connector.apply(plan)
    assert [(r.key, r.ok) for r in results] == [(first, True), (second, False), (third, True)]
    bad = results[1]
    assert (bad.error_code, bad.retryable) == (TEXT_TOO_LONG, False)
    assert bad.message is not None
    assert re.search(r"policy_version.*text of 256 characters.*at most 255", bad.message)
    assert "vvv" not in bad.message
    assert zoho.write_calls() == 1


#: (output, field type, field length, explanation_max_chars, (ok, severity) or None: no line)
DOCTOR_CASES = [
    pytest.param("reasons", "textarea", None, 255, None, id="doctor-reasons-length-unknown"),
    pytest.param("reasons", "textarea", 32_000, 255, None, id="doctor-reasons-long-field"),
    pytest.param("reasons", "textarea", 4000, 255, None, id="doctor-reasons-field-holds-all"),
    pytest.param("reasons", "textarea", 2000, 255, (True, "warning"), id="doctor-reasons-warns"),
    pytest.param("explanation", "text", 255, 255, None, id="doctor-explanation-fits"),
    pytest.param("explanation", "text", 100, 255, (False, "error"), id="doctor-explanation-fails"),
    pytest.param("explanation", "text", 100, 100, None, id="doctor-explanation-capped-fits"),
    pytest.param("value_tier", "picklist", 10, 255, None, id="doctor-picklist-not-text"),
]


@pytest.mark.parametrize(("output", "kind", "length", "cap", "line"), DOCTOR_CASES)
def test_doctor_names_a_text_field_shorter_than_what_crmtier_may_write(
    output: str, kind: str, length: int | None, cap: int, line: tuple[bool, str] | None
) -> None:
    """Before the first sync: a field shorter than the explanation's cap fails; one
    shorter than the longest reasons the config allows warns with the most the policy's
    ``strategy.reasons_max_chars`` may be (doctor does not read the policy)."""
    writeback = WritebackConfig(explanation_max_chars=cap)
    connector = SimpleNamespace(writeback=writeback)
    field = FieldInfo("Tier_Field", kind, length=length)
    check = _length_check(connector, output, field)  # type: ignore[arg-type]
    if line is None:
        assert check is None
        return
    assert check is not None
    assert (check.ok, check.severity) == line
    said = f"{check.detail} {check.fix}"
    assert f"Tier_Field holds {length} characters" in said
    key = "explanation_max_chars" if output == "explanation" else "strategy.reasons_max_chars"
    assert f"{key} = {length} or less" in said or f"{key} at {length} or less" in said
