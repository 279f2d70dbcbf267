from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from connectors.secrets import SecretRef, SecretRefError, resolve_secret


class Cfg(BaseModel):
    client_secret: SecretRef


def test_env_reference_resolves_and_stays_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARY_SECRET", "s3cr3t-canary-value")
    cfg = Cfg(client_secret="env:CANARY_SECRET")
    assert cfg.client_secret.get_secret_value() == "s3cr3t-canary-value"
    assert "s3cr3t-canary-value" not in repr(cfg) + str(cfg) + cfg.model_dump_json()


def test_file_reference_strips_the_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("from-a-file\n")
    assert resolve_secret(f"file:{path}").get_secret_value() == "from-a-file"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("plain-literal-secret", "literal secrets are not allowed"),
        ("vault:thing", "literal secrets are not allowed"),
        ("env:", "literal secrets are not allowed"),
        ("env:CRMTIER_SURELY_UNSET_VAR", "CRMTIER_SURELY_UNSET_VAR is not set"),
        ("file:/nonexistent/secret", "cannot read secret file"),
    ],
)
def test_bad_references_are_refused_without_echoing_the_value(ref: str, message: str) -> None:
    with pytest.raises(SecretRefError, match=message) as info:
        resolve_secret(ref, name="crm.client_secret")
    assert "crm.client_secret" in str(info.value)
    if ref == "plain-literal-secret":
        assert ref not in str(info.value)


def test_literal_in_a_config_model_fails_validation() -> None:
    with pytest.raises(ValidationError, match="literal secrets"):
        Cfg(client_secret="hunter2")


def test_crm_settings_errors_never_quote_the_input() -> None:
    from connectors.settings import CrmSettings

    class Settings(CrmSettings):
        client_secret: SecretRef

    with pytest.raises(ValidationError) as info:
        Settings(client_secret="hunter2-literal")
    assert "hunter2-literal" not in str(info.value)
