"""A text cap longer than the CRM field it is written to is refused at load, never cut
silently by a writer: the policy's ``strategy.reasons_max_chars`` against the long text
field ``reasons`` is written to, as ``[writeback] explanation_max_chars`` against the
explanation's text field. A cut would leave the CRM holding less than the audit trail
records as decided."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from connectors.coverage import REASONS_LIMITS, writeback_problems
from connectors.registry import default_mapping, kinds
from tests.sync.test_sync_config import refusal
from tiering_core.policy import Policy, load_policy

POLICY = load_policy()
#: the reasons field of each CRM's shipped mapping
FIELD = {kind: default_mapping(kind).writeback.fields["reasons"] for kind in kinds()}


def _capped(chars: int) -> Policy:
    strategy = POLICY.strategy.model_copy(update={"reasons_max_chars": chars})
    return POLICY.model_copy(update={"strategy": strategy})


def _refusal(kind: str, chars: int, limit: int) -> str:
    return (
        f"[policy] strategy.reasons_max_chars: {chars} does not fit the {kind} field reasons "
        f"is written to ({FIELD[kind]}, at most {limit} characters); set "
        f"strategy.reasons_max_chars = {limit} or less in the policy file"
    )


#: (CRM, the policy's strategy.reasons_max_chars, its field's length or None: fits)
CASES = [
    pytest.param("salesforce", 4000, None, id="salesforce-long-text-area-full"),
    pytest.param("salesforce", 4001, 4000, id="salesforce-one-over-refused"),
    pytest.param("salesforce", 131_072, 4000, id="salesforce-platform-maximum-refused"),
    pytest.param("zoho", 4000, None, id="zoho-declared-long-text-full"),
    pytest.param("zoho", 5000, 4000, id="zoho-over-refused"),
    pytest.param("fxiaoke", 2000, None, id="fxiaoke-multiline-full"),
    pytest.param("fxiaoke", 2001, 2000, id="fxiaoke-one-over-refused"),
    pytest.param("fxiaoke", 255, None, id="fxiaoke-default-fits"),
]


@pytest.mark.parametrize("kind", kinds())
def test_the_shipped_policy_and_mapping_pass_the_length_check(kind: str) -> None:
    """What ships loads on every CRM: the default policy's reasons cap fits the long text
    field each shipped mapping writes the reasons to (mapped, so the check applies)."""
    shipped = default_mapping(kind).writeback
    assert "reasons" in shipped.fields
    assert POLICY.strategy.reasons_max_chars <= REASONS_LIMITS[kind]
    assert writeback_problems(shipped, POLICY, kind) == []


@pytest.mark.parametrize(("kind", "chars", "limit"), CASES)
def test_reasons_longer_than_their_field_are_refused(
    kind: str, chars: int, limit: int | None
) -> None:
    problems = writeback_problems(default_mapping(kind).writeback, _capped(chars), kind)
    assert problems == ([] if limit is None else [_refusal(kind, chars, limit)])


@pytest.mark.parametrize("kind", kinds())
def test_reasons_switched_off_are_not_held_to_a_field(kind: str) -> None:
    """With ``reasons = false`` nothing is written, so no field bounds the cap."""
    writeback = default_mapping(kind).writeback
    fields = {k: v for k, v in writeback.fields.items() if k != "reasons"}
    off = writeback.model_copy(update={"fields": fields, "switched_off": {"fields.reasons"}})
    assert "reasons" not in off.fields
    assert writeback_problems(off, _capped(200_000), kind) == []


def test_the_config_naming_a_policy_whose_reasons_cannot_fit_does_not_load(tmp_path: Path) -> None:
    """At load, one line: the key, its value, the field and its length."""
    text = resources.files("tiering_core").joinpath("default_policy.toml").read_text()
    assert "\nreasons_max_chars = 255\n" in text
    policy = tmp_path / "policy.toml"
    policy.write_text(text.replace("\nreasons_max_chars = 255\n", "\nreasons_max_chars = 4096\n"))
    shipped = resources.files("connectors.salesforce").joinpath("default_mapping.toml")
    writeback = shipped.read_text()[shipped.read_text().index("\n[writeback]") :]
    path = tmp_path / "bank.toml"
    path.write_text(
        '[crm]\nkind = "salesforce"\nbase_url = "https://x"\n'
        + writeback
        + f'[policy]\nfile = "{policy.name}"\n',
        "utf-8",
    )
    assert refusal(path) == f"{path}: {_refusal('salesforce', 4096, 4000)}"
