"""Every CRM sandbox offers the same surface (connectors/sandbox/base.py), so
tests, the demo and admins use the three the same way."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.sandbox.base import open_sandbox

#: The credential names each CRM's own auth uses.
CREDENTIALS = {
    "salesforce": {"client_id", "client_secret"},
    "zoho": {"client_id", "client_secret", "refresh_token", "accounts_url"},
    "fxiaoke": {"app_id", "app_secret", "permanent_code", "open_user_id"},
}


@pytest.fixture(params=sorted(CREDENTIALS))
def crm(request) -> str:
    return request.param


def test_info_line_names_the_crms_own_credentials(crm, sandbox_factory):
    sandbox = sandbox_factory(crm, customers=1)
    line = sandbox.info().as_json()
    assert set(line) == {"crm", "base_url", "ca_bundle", "credentials", "control_token"}
    assert line["crm"] == crm and line["base_url"].startswith("https://127.0.0.1:")
    assert Path(line["ca_bundle"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert set(line["credentials"]) == CREDENTIALS[crm]


def test_edits_bump_the_modstamp_or_pin_it(crm, sandbox_factory, connect):
    sandbox = sandbox_factory(crm, customers=5)
    connector = connect(sandbox)
    first = [r for page in connector.read_changed(None) for r in page.records]
    victim = first[0].profile.id
    sandbox.edit_customer(victim, {"credit.score": 601})
    after = [r for page in connector.read_changed(None) for r in page.records]
    assert after[-1].profile.id == victim and after[-1].modstamp > first[-1].modstamp
    assert after[-1].profile.credit.score == 601
    pinned = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
    sandbox.edit_customer(first[1].profile.id, {"credit.score": 602}, modstamp=pinned)
    (record,) = connector.fetch([first[1].profile.id])
    assert record.modstamp == pinned


def test_unknown_crm_is_refused(tmp_path):
    with pytest.raises(ValueError, match="dynamics"):
        open_sandbox("dynamics", data_dir=tmp_path)
