"""A write call the CRM refuses for its configuration ends the run as a configuration
error: ``RunReport.config_error``, so ``crmtier sync`` exits 2 ("fix the config"), as a
refusal at start does, not 1 ("the run failed"). The start gate (sync/write_readiness.py)
catches what it can before any write; what changes under a running process (a scope taken
from the grant, a picklist value renamed) meets the same one-line ``ConfigError`` at its
first write of that kind, on a write pool thread, and stops the run there."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmtier.commands.sync import open_engine
from crmtier.config import load_config
from sync.engine import RunOptions
from tests.sync.conftest import crm_harness


def test_a_write_refused_for_configuration_fails_the_run_as_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        crm_harness("zoho", tmp_path, monkeypatch, 40) as harness,
        open_engine(load_config(harness.config)) as engine,  # the start gate passes
    ):
        api = harness.sandbox.api  # type: ignore[attr-defined]
        api.scopes = api.scopes - {"ZohoCRM.coql.READ"}  # then the grant loses COQL
        report = engine.run(RunOptions(full=True, actor="test"))
    assert report.status == "failed"
    assert report.error is not None and "\n" not in report.error
    assert "OAUTH_SCOPE_MISMATCH" in report.error or "coql" in report.error.lower()
    assert report.config_error
