"""``crmtier doctor`` on the state at rest: a store others can read is flagged with the
``chmod`` to run, and where the audit chain's key lives is said."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from product_crms import needs
from product_doctor import Setup, doctor

from crmtier.config import load_config


@needs["salesforce"]
def test_a_store_others_can_read_is_flagged(org: Setup) -> None:
    _, path, _ = org("salesforce")
    created = doctor(path, "--fix")
    assert "state store file" not in created.output  # crmtier created it 0600
    db = Path(load_config(path).state_url().get_secret_value().removeprefix("sqlite:///"))
    os.chmod(db, 0o644)
    flagged = doctor(path)
    assert "state store file" in flagged.output
    assert f"chmod 600 {db}" in flagged.output


@needs["salesforce"]
@pytest.mark.parametrize("configured", [False, True], ids=["generated", "configured"])
def test_doctor_says_where_the_audit_key_is_kept(
    org: Setup, monkeypatch: pytest.MonkeyPatch, configured: bool
) -> None:
    key = 'audit_key = "env:CRMTIER_TEST_AUDIT_KEY"\n' if configured else ""
    monkeypatch.setenv("CRMTIER_TEST_AUDIT_KEY", "ab" * 32)
    _, path, _ = org("salesforce", lambda t: t.replace("[state]\n", "[state]\n" + key))
    output = " ".join(doctor(path, "--fix").output.split())
    if configured:
        assert "from [state] audit_key" in output
    else:
        assert "signed with a key kept in the state store" in output
        assert "set [state] audit_key" in output
