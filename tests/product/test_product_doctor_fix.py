"""``crmtier doctor --fix`` on a Salesforce org that lacks crmtier's fields: the first run
names them, ``--fix`` creates them through the Metadata API and grants them, the next run is
clean; what the API must not or cannot do is printed as a step by hand."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import pytest
from product_crms import needs
from product_doctor import Setup, csat_to_missing_field, doctor

from connectors.sandbox.salesforce_metadata import INTEGRATION_PERMISSION_SET, soap_fault
from tiering_core.models import ValueTier

WRITE_BACK = (
    "Value_Tier__c",
    "Value_Score__c",
    "EDD_Required__c",
    "Next_Review__c",
    "Tier_Reasons__c",
)
GRANTED = f'api_share = 0.2\npermission_set = "{INTEGRATION_PERMISSION_SET}"'


@pytest.fixture
def bare_org(org: Setup) -> Callable[..., tuple[Any, Path]]:
    """A Salesforce sandbox without the write-back fields above and the Task key, and its
    crmtier.toml (optionally edited)."""

    def make(edit: Callable[[str], str] = lambda t: t) -> tuple[Any, Path]:
        sandbox: Any  # a SalesforceSandbox: its org's schema is edited below
        sandbox, path, _ = org("salesforce", edit)
        for name in WRITE_BACK:
            del sandbox.org.schema["Account"].fields[name]
        del sandbox.org.schema["Task"].fields["Crmtier_Key__c"]
        return sandbox, path

    return make


@needs["salesforce"]
def test_fix_creates_the_missing_fields_and_the_next_run_is_clean(bare_org) -> None:
    sandbox, path = bare_org(lambda t: t.replace("api_share = 0.2", GRANTED))
    before = doctor(path)
    assert before.exit_code == 1
    for name in WRITE_BACK:
        assert f"write-back {name}" in before.output
    assert "external id Task.Crmtier_Key__c" in before.output

    fixed = doctor(path, "--fix")
    assert fixed.exit_code == 0, fixed.output
    for line in (
        "fixed created Account.Value_Score__c (Number)",
        "fixed created Account.EDD_Required__c (Checkbox)",
        "fixed created Account.Next_Review__c (Date)",
        "fixed created Account.Tier_Reasons__c (LongTextArea)",
        "fixed created Account.Value_Tier__c (Picklist)",
        "fixed created Task.Crmtier_Key__c (Text)",
    ):
        assert line in fixed.output, line
    assert "by hand" not in fixed.output
    account = sandbox.org.schema["Account"].fields
    # every value the model can write, the corporate ladder's included
    assert account["Value_Tier__c"].picklist == get_args(ValueTier)
    assert sandbox.org.schema["Task"].fields["Crmtier_Key__c"].external_id
    assert sandbox.server.calls.count("metadata") == 3  # create, read the set, grant

    after = doctor(path)
    assert after.exit_code == 0, after.output
    assert "ready: 0 error(s)" in after.output
    assert ": missing" not in after.output and "not marked External ID" not in after.output


@needs["salesforce"]
def test_an_input_field_and_an_ungranted_field_stay_by_hand(bare_org) -> None:
    _, path = bare_org(csat_to_missing_field)
    fixed = doctor(path, "--fix")
    assert fixed.exit_code == 1
    out = " ".join(fixed.output.split())
    assert "by hand field Satisfaction__c: create Account.Satisfaction__c" in out
    assert "input fields hold the bank's own data" in out
    assert (
        "by hand Account.Value_Score__c was created, but the integration user cannot edit it yet"
    ) in out
    assert "[crm] permission_set" in out
    assert "fixed created" not in out  # created, yet nobody can use them: not fixed


@needs["salesforce"]
def test_a_soap_fault_is_one_line_by_hand_not_a_traceback(bare_org) -> None:
    sandbox, path = bare_org(lambda t: t.replace("api_share = 0.2", GRANTED))
    sandbox.server.inject(
        "metadata", response=soap_fault("INVALID_TYPE", "Unknown type: CustomField"), times=None
    )
    fixed = doctor(path, "--fix")
    assert fixed.exit_code == 1
    assert isinstance(fixed.exception, SystemExit)
    assert "Traceback" not in fixed.output
    lines = [ln for ln in fixed.output.splitlines() if "Metadata API INVALID_TYPE" in ln]
    assert lines == [
        "by hand Salesforce Metadata API: Metadata API INVALID_TYPE: Unknown type: "
        "CustomField; create the fields in Setup"
    ]
    assert "fixed" not in fixed.output


@needs["salesforce"]
def test_fix_without_then_with_a_permission_set_converges(bare_org) -> None:
    """The first ``--fix`` has no ``permission_set``: it creates the fields, which the
    integration user cannot see (a created field is granted to nobody). The admin then
    names the set and reruns ``--fix``: the fields exist (the Metadata API says
    DUPLICATE_DEVELOPER_NAME), so they are granted, not created again, and the org is ready."""
    sandbox, path = bare_org()
    first = doctor(path, "--fix")
    assert first.exit_code == 1
    assert "was created, but the integration user cannot edit it yet" in first.output

    path.write_text(path.read_text().replace("api_share = 0.2", GRANTED, 1))
    second = doctor(path, "--fix")
    out = " ".join(second.output.split())
    assert second.exit_code == 0, second.output
    assert "DUPLICATE_DEVELOPER_NAME" not in out and "by hand" not in out
    for name in WRITE_BACK:
        assert f"fixed granted Edit on Account.{name}" in out, name
    assert "fixed granted Edit on Task.Crmtier_Key__c" in out
    assert sandbox.org.schema["Account"].fields["Value_Tier__c"].updateable

    third = doctor(path)
    assert third.exit_code == 0, third.output
    assert "ready: 0 error(s)" in third.output
