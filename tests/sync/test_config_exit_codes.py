"""Bad configuration exits 2 in every command, and says which file and key: a key that
names nothing, an unset secret variable, credentials the CRM refuses, a mapped field the
CRM lacks. (1 stays "the run failed" / "doctor: not ready"; 2 means "fix the config".)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmtier.cli import cli
from tests.sync.conftest import Harness, salesforce_harness

COMMANDS = [
    ["sync", "--dry-run"],
    ["doctor"],
    ["serve", "--no-sync"],
    ["worker"],
    ["report", "--output", "{dir}/r.html"],
    ["audit", "verify"],
    ["audit", "show"],
    ["coverage", "--roster", "{dir}/roster.toml"],
]


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    with salesforce_harness(tmp_path / "sf", monkeypatch, 20) as h:
        yield h


def _run(args: list[str], config: Path) -> tuple[int, str]:
    argv = [a.replace("{dir}", str(config.parent)) for a in args]
    result = CliRunner(env={"COLUMNS": "400"}).invoke(cli, [*argv, "--config", str(config)])
    return result.exit_code, result.output


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_config_that_does_not_load_exits_2_in_every_command(
    harness: Harness, args: list[str]
) -> None:
    bad = harness.data_dir / "bank-prod.toml"
    bad.write_text(harness.text.replace("value_tier =", "valu_tier ="), "utf-8")
    code, output = _run(args, bad)
    assert code == 2, output
    assert f"{bad}: [writeback.fields] valu_tier: unknown field; did you mean value_tier?" in (
        output
    )


@pytest.mark.parametrize("args", [["sync", "--dry-run"], ["doctor"]], ids=["sync", "doctor"])
def test_an_unset_secret_variable_exits_2_naming_the_key(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.delenv("CRMTIER_SF_CLIENT_SECRET")
    code, output = _run(args, harness.config)
    assert code == 2, output
    assert "crm.client_secret:" in output and "CRMTIER_SF_CLIENT_SECRET" in output
    assert "Value error" not in output


@pytest.mark.parametrize(
    "breakage", ["wrong secret", "missing field"], ids=["wrong-secret", "missing-field"]
)
def test_a_run_the_crm_refuses_for_its_configuration_exits_2(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, breakage: str
) -> None:
    config = harness.config
    if breakage == "wrong secret":
        monkeypatch.setenv("CRMTIER_SF_CLIENT_SECRET", "not-the-secret")
    else:
        config = harness.data_dir / "other.toml"
        config.write_text(harness.text.replace('"Deposits__c"', '"Deposit__c"'), "utf-8")
    code, output = _run(["sync", "--json"], config)
    assert code == 2, output
    if breakage == "wrong secret":  # refused by the start checks' first call: no run
        assert output.startswith("crmtier sync: Salesforce refused: invalid_client"), output
        assert len(output.splitlines()) == 1 and "not-the-secret" not in output
    else:  # the run's first read names the field
        assert '"status": "failed"' in output
