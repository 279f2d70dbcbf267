"""The explanation written to the CRM, end to end on each sandbox: the admin maps
``explanation`` in ``[writeback.fields]``; ``crmtier sync`` writes each customer's short
explanation to that field, bounded by the CRM's text field and in the configured
language, without the AML rating; ``crmtier explain`` shows the very text the CRM holds;
a second sync writes nothing (the text has no date and changes only with the decision)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from product_crms import CRM_PARAMS
from product_synced import run, started, sync

from connectors.coverage import EXPLANATION_LIMITS
from connectors.sandbox.optional import OPTIONAL_TARGETS
from crmtier.config import load_config


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
    with started(crm, 30, tmp_path, monkeypatch) as (sandbox, config):
        config.write_text(_mapped(config.read_text("utf-8"), crm, lang), encoding="utf-8")
        sync(config)
        ids = _customer_ids(config)[:5]
        assert ids
        for cid in ids:
            written = sandbox.written(cid)["explanation"]
            assert 0 < len(written) <= EXPLANATION_LIMITS[crm]
            assert "AML" not in written and "反洗钱" not in written
            assert ("价值等级" if lang == "zh" else "Value") in written
            shown = run("explain", "--config", str(config), cid, "--json", "--lang", lang)
            assert shown.exit_code == 0, shown.output
            assert json.loads(shown.output)["crm_explanation"] == written
        before = sandbox.write_calls()
        sync(config, "--full")
        assert sandbox.write_calls() == before


def _customer_ids(config: Path) -> list[str]:
    connector = load_config(config).connector()
    try:
        return [r.profile.id for page in connector.read_changed(None) for r in page.records]
    finally:
        connector.close()
