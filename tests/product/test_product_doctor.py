"""``crmtier doctor`` against the sandboxes: a healthy org passes, a broken one fails with
the fix on the line, ``--fix`` does what the API allows and says what it cannot."""

from __future__ import annotations

import pytest
from product_crms import needs
from product_doctor import Setup, csat_to_missing_field, doctor


@needs["salesforce"]
def test_a_ready_org_passes_and_no_secret_is_printed(org: Setup) -> None:
    _, path, env = org("salesforce")
    result = doctor(path)
    assert result.exit_code == 0, result.output
    assert "ready: 0 error(s)" in result.output
    for line in (
        "auth",
        "field Deposits__c",
        "write-back Value_Tier__c",
        "external id Task.Crmtier_Key__c",
        "campaign vip_events",
        "API allowance",
        "policy",
        "TLS to the CRM",
        "integration user rights",
    ):
        assert line in result.output, line
    for secret in env.values():
        assert secret not in result.output


@needs["salesforce"]
def test_a_missing_field_fails_with_its_fix_and_fix_says_it_is_by_hand(org: Setup) -> None:
    _, path, _ = org("salesforce", csat_to_missing_field)
    result = doctor(path)
    assert result.exit_code == 1
    assert "not ready: 1 error(s)" in result.output
    assert "create Account.Satisfaction__c" in result.output
    assert "does not exist yet" in result.output  # a plain doctor creates nothing
    fixed = doctor(path, "--fix")
    assert fixed.exit_code == 1  # no field was created, so it is still not ready
    assert "schema up to date" in fixed.output  # the local state store was
    assert "by hand field Satisfaction__c" in fixed.output
    assert "input fields hold the bank's own data" in " ".join(fixed.output.split())


@needs["salesforce"]
def test_fix_on_a_ready_org_says_it_created_the_state_store(org: Setup) -> None:
    """The one thing --fix did was to make the store: it says so, not "nothing to fix"."""
    _, path, _ = org("salesforce")
    fixed = doctor(path, "--fix")
    assert fixed.exit_code == 0, fixed.output
    flat = " ".join(fixed.output.split())
    assert "created /" in flat, fixed.output
    assert "nothing to fix in the CRM" in flat
    again = " ".join(doctor(path, "--fix").output.split())
    assert "created /" not in again  # a second run made nothing


@needs["salesforce"]
def test_unset_secret_is_an_error_naming_the_variable(
    org: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, path, env = org("salesforce")
    name = next(k for k in env if k.endswith("CLIENT_SECRET"))
    monkeypatch.delenv(name)
    result = doctor(path)
    assert result.exit_code == 2  # the config cannot be used: as in every command
    assert name in result.output


@needs["zoho"]
def test_fix_registers_the_zoho_notification_channel(org: Setup) -> None:
    sandbox, path, _ = org(
        "zoho",
        lambda t: t.replace(
            "[webhooks]\n", '[webhooks]\npublic_url = "https://crmtier.bank.example"\n'
        ),
    )
    before = doctor(path)
    assert "no notification channel watches" in before.output
    fixed = doctor(path, "--fix")
    assert fixed.exit_code == 0, fixed.output
    assert "fixed notification channel" in fixed.output
    channels = sandbox.channels()  # type: ignore[attr-defined]
    assert [c.notify_url for c in channels] == ["https://crmtier.bank.example/webhooks/zoho"]
    after = doctor(path)
    assert "no notification channel watches" not in after.output


@needs["zoho"]
def test_zoho_fix_without_public_url_says_what_to_set(org: Setup) -> None:
    _, path, _ = org("zoho")
    fixed = doctor(path, "--fix")
    assert "by hand set [webhooks] public_url" in fixed.output


@needs["fxiaoke"]
def test_fxiaoke_org_is_checked(org: Setup) -> None:
    _, path, _ = org("fxiaoke")
    result = doctor(path)
    assert "FXiaoke API and credentials" in result.output
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("crm", [pytest.param(c, marks=needs[c]) for c in ("zoho", "fxiaoke")])
def test_a_crm_that_stops_answering_part_way_is_one_line_not_a_traceback(
    org: Setup, crm: str
) -> None:
    """The CRM answers the first checks, then drops every connection: doctor ends with a
    line saying the CRM could not be reached and the exit code of an unready org, not a
    traceback. Retries wait 10 ms at the base, not 0.5 s: each check's retries on the
    dropped connections slept seconds, and the test is about the line, not the back-off."""
    sandbox, path, _ = org(
        crm, lambda text: text.replace("[crm]\n", "[crm]\nbackoff_base = 0.01\n", 1)
    )
    assert "\nbackoff_base = 0.01\n" in path.read_text("utf-8")  # or it sleeps seconds
    sandbox.server.inject("*", drop=True, times=None, after=4)
    result = doctor(path)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1, result.output
    assert "CRM reachable" in result.output
