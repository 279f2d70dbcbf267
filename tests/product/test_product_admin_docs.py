"""The ``[crm]`` tables docs/admin-setup.md tells an admin to write are valid for their
connector, and the commands it shows exist: the set-up guide cannot rot either."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors.fxiaoke.config import FxiaokeConfig
from connectors.salesforce.config import SalesforceSettings
from connectors.zoho.config import ZohoConfig
from crmtier.cli import cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "admin-setup.md"
MODELS = {"salesforce": SalesforceSettings, "zoho": ZohoConfig, "fxiaoke": FxiaokeConfig}


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", DOC.read_text("utf-8"), re.S | re.M)


def test_every_crm_has_a_valid_crm_table(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = set()
    for block in _blocks("toml"):
        crm = tomllib.loads(block)["crm"]
        for name in re.findall(r'"env:([A-Z0-9_]+)"', block):
            monkeypatch.setenv(name, f"dummy-{name.lower()}")
        MODELS[crm["kind"]].model_validate(crm)
        seen.add(crm["kind"])
    assert seen == set(MODELS)


def test_the_commands_it_shows_exist() -> None:
    for block in _blocks("bash"):
        for line in block.strip().splitlines():
            words = line.split()
            assert words[0] == "crmtier"
            result = CliRunner().invoke(cli, [words[1], "--help"])
            assert result.exit_code == 0
            for option in (w for w in words if w.startswith("--")):
                assert option in result.output
