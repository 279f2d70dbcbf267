"""Households in a real org: what they need in the CRM is checked before anything relies on
it (docs/households.md). Each sandbox can lack a prerequisite as a real org would:
Salesforce without Contacts to Multiple Accounts (no ``AccountContactRelation``), Zoho
without the ``ZohoCRM.coql.READ`` scope or without the ``Household_Role`` field, FXiaoke
without the two ``ContactObj`` fields. With ``[households] enabled``, ``crmtier doctor``
fails on that one line with its fix, and ``crmtier sync`` refuses to start (exit 2, one line
naming it) instead of tiering without households; with households off the households line is
not asked for. A prerequisite that a write kind needs too (Zoho's COQL scope: every task
write looks its key up by COQL) still stops the sync at start while that kind is on
(``sync.write_readiness``), and asks nothing once ``[writeback] tasks = false``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from product_crms import needs
from product_org import start_org

from connectors.sandbox.base import Sandbox
from crmtier.cli import cli

ON = "[households]\nenabled = true\n"
OFF = "[households]\nenabled = false\n"

#: (crm, sandbox options that take the prerequisite away, the detail, the fix) per case
LACKING = [
    pytest.param(
        "salesforce",
        {"contacts_to_multiple_accounts": False},
        "AccountContactRelation is not readable",
        "enable Contacts to Multiple Accounts",
        marks=needs["salesforce"],
        id="salesforce-no-contacts-to-multiple-accounts",
    ),
    pytest.param(
        "zoho",
        {"coql_scope": False},
        "a COQL query was refused",
        "add the scope ZohoCRM.coql.READ",
        marks=needs["zoho"],
        id="zoho-no-coql-scope",
    ),
    pytest.param(
        "zoho",
        {"household_role_field": False},
        "Contacts has no field Household_Role",
        "add a picklist Household_Role to Contacts",
        marks=needs["zoho"],
        id="zoho-no-household-role",
    ),
    pytest.param(
        "fxiaoke",
        {"household_fields": False},
        "ContactObj has no field field_member_account__c, field_household_role__c",
        "add to ContactObj: field_member_account__c",
        marks=needs["fxiaoke"],
        id="fxiaoke-no-contact-fields",
    ),
]
#: the cases whose lacking prerequisite a write kind needs too: the ``[writeback]`` switch of
#: that kind and what the sync's one line at start says of it
WRITES_NEED = {"zoho-no-coql-scope": ("tasks", "ZohoCRM.coql.READ")}
READY = {
    "salesforce": "AccountContactRelation readable",
    "zoho": "Contacts.Household_Role, COQL readable",
    "fxiaoke": "ContactObj.field_member_account__c, field_household_role__c",
}

Org = Callable[..., tuple[Sandbox, Path]]


@pytest.fixture
def org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Org]:
    """``org(crm, policy_text, **sandbox_options)``: a started sandbox of 20 customers and
    its crmtier.toml, whose policy file is ``policy_text`` (secrets in the env)."""
    started: list[Sandbox] = []

    def make(crm: str, policy_text: str, **options: Any) -> tuple[Sandbox, Path]:
        sandbox, text, _ = start_org(crm, tmp_path / crm, monkeypatch, started, **options)
        policy = tmp_path / "households.toml"
        policy.write_text(policy_text, encoding="utf-8")
        text = re.sub(r'\[policy\]\nfile = "[^"]*"\n', "", text)
        path = tmp_path / "crmtier.toml"
        path.write_text(f'{text}\n[policy]\nfile = "{policy}"\n', encoding="utf-8")
        return sandbox, path

    yield make
    for sandbox in started:
        sandbox.stop()


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "250"})


def _households_line(output: str) -> str:
    lines = [line for line in output.splitlines() if "│ households " in line]
    assert len(lines) == 1, output
    return " ".join(lines[0].split())


@pytest.mark.parametrize(("crm", "options", "detail", "fix"), LACKING)
def test_a_missing_prerequisite_fails_doctor_and_stops_the_sync(
    org: Org, crm: str, options: dict[str, Any], detail: str, fix: str
) -> None:
    sandbox, path = org(crm, ON, **options)
    checked = _run("doctor", "--config", str(path))
    assert checked.exit_code == 1, checked.output
    line = _households_line(checked.output)
    assert "✗" in line and detail in line and fix in line

    synced = _run("sync", "--config", str(path), "--quiet")
    assert synced.exit_code == 2, synced.output
    [message] = synced.stderr.splitlines()
    assert message.startswith("crmtier sync: households are on in the policy, but ")
    assert detail in message and fix in message
    assert "[households] enabled = false" in message
    assert sandbox.write_calls() == 0  # refused before the first read: nothing written


@pytest.mark.parametrize(("crm", "options", "detail", "fix"), LACKING)
def test_with_households_off_the_prerequisite_is_not_asked_for(
    request: pytest.FixtureRequest,
    org: Org,
    crm: str,
    options: dict[str, Any],
    detail: str,
    fix: str,
) -> None:
    sandbox, path = org(crm, OFF, **options)
    checked = _run("doctor", "--config", str(path))
    assert "│ households " not in checked.output
    assert detail not in checked.output
    synced = _run("sync", "--config", str(path), "--quiet")
    needed = WRITES_NEED.get(request.node.callspec.id)
    if needed is None:
        assert synced.exit_code == 0, synced.output
        return
    switch, missing = needed
    assert synced.exit_code == 2, synced.output  # a write kind needs it: refused at start
    [message] = synced.stderr.splitlines()
    assert message.startswith(f"crmtier sync: {switch} are on, but ")
    assert missing in message and f"set {switch} = false in [writeback]" in message
    assert "households" not in message
    assert sandbox.write_calls() == 0
    text = path.read_text(encoding="utf-8")  # the write kind turned off in [writeback]
    path.write_text(text.replace(f"\n{switch} = true\n", f"\n{switch} = false\n"), "utf-8")
    synced = _run("sync", "--config", str(path), "--quiet")
    assert synced.exit_code == 0, synced.output


@pytest.mark.parametrize("crm", [pytest.param(c, marks=needs[c]) for c in READY])
def test_a_ready_org_passes_the_line_and_syncs_with_households(org: Org, crm: str) -> None:
    sandbox, path = org(crm, ON)
    checked = _run("doctor", "--config", str(path))
    line = _households_line(checked.output)
    assert "✓" in line and READY[crm] in line
    synced = _run("sync", "--config", str(path), "--quiet")
    assert synced.exit_code == 0, synced.output
    assert sandbox.write_calls() > 0
