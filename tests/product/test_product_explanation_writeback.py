"""The explanation written to the CRM, end to end on each sandbox: the admin maps
``explanation`` in ``[writeback.fields]``; ``crmtier sync`` writes each customer's short
explanation to that field, bounded by the CRM's text field and in the configured
language, without the AML rating; ``crmtier explain`` shows the very text the CRM holds;
a second sync writes nothing (the text has no date and changes only with the decision)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from product_crms import CRM_PARAMS

from connectors.coverage import EXPLANATION_LIMITS
from connectors.sandbox.base import open_sandbox
from connectors.sandbox.optional import OPTIONAL_TARGETS
from crmtier.cli import cli
from crmtier.config import load_config

AS_OF = "2026-12-06"


def _mapped(config_text: str, crm: str, lang: str) -> str:
    target = OPTIONAL_TARGETS[crm]["explanation"]
    limit = EXPLANATION_LIMITS[crm]
    text = config_text.replace(
        "[writeback.fields]\n", f'[writeback.fields]\nexplanation = "{target}"\n', 1
    )
    options = f'explanation_language = "{lang}"\nexplanation_max_chars = {limit}\n'
    return text.replace("[writeback]\n", f"[writeback]\n{options}", 1)


@pytest.mark.parametrize("crm", CRM_PARAMS)
def test_sync_writes_the_explanation_explain_shows(
    crm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lang = "zh" if crm == "fxiaoke" else "en"
    sandbox = open_sandbox(crm, data_dir=tmp_path / crm)
    sandbox.seed(30)
    sandbox.start()
    try:
        text, env = sandbox.crmtier_config()
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        config = tmp_path / "crmtier.toml"
        config.write_text(_mapped(text, crm, lang), encoding="utf-8")
        runner = CliRunner()
        sync = ["sync", "--config", str(config), "--as-of", AS_OF, "--quiet"]
        result = runner.invoke(cli, sync, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        ids = _customer_ids(config)[:5]
        assert ids
        for cid in ids:
            written = sandbox.written(cid)["explanation"]
            assert 0 < len(written) <= EXPLANATION_LIMITS[crm]
            assert "AML" not in written and "反洗钱" not in written
            assert ("价值等级" if lang == "zh" else "Value") in written
            shown = runner.invoke(
                cli, ["explain", "--config", str(config), cid, "--json", "--lang", lang]
            )
            assert shown.exit_code == 0, shown.output
            assert json.loads(shown.output)["crm_explanation"] == written
        before = sandbox.write_calls()
        again = runner.invoke(cli, [*sync[:-1], "--full", "--quiet"], catch_exceptions=False)
        assert again.exit_code == 0, again.output
        assert sandbox.write_calls() == before
    finally:
        sandbox.stop()


def _customer_ids(config: Path) -> list[str]:
    connector = load_config(config).connector()
    try:
        return [r.profile.id for page in connector.read_changed(None) for r in page.records]
    finally:
        connector.close()
