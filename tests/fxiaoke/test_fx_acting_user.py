"""``crm.open_user_id``: each auth convention names the acting user its own way, a value of
the other kind is refused at load with the fix, and an id FXiaoke does not know (30027
员工不存在) is a configuration error at once, not five transient retries."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectors.errors import ConfigError
from connectors.fxiaoke.config import load_config
from connectors.fxiaoke.connector import FxiaokeConnector
from connectors.sandbox.fxiaoke import FxiaokeSandbox
from connectors.sandbox.generator import customer_id

Connect = Callable[..., FxiaokeConnector]


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FX_SECRET", "placeholder")
    monkeypatch.setenv("FX_CODE", "placeholder")


@pytest.mark.parametrize(
    ("convention", "user", "refused_with"),
    [
        ("oauth2", "1000", None),
        ("oauth2", " 1000 ", None),
        ("oauth2", "FSUID_6D7E0C7A", "not an FSUID_ open user id"),
        ("oauth2", "zhang.san", "CRM employee id"),
        ("corp_access_token", "FSUID_6D7E0C7A", None),
        ("corp_access_token", "1000", 'goes with convention = "oauth2"'),
    ],
)
def test_the_acting_user_matches_the_convention(
    convention: str, user: str, refused_with: str | None
) -> None:
    crm = {
        "kind": "fxiaoke",
        "convention": convention,
        "app_id": "FSAID_1",
        "app_secret": "env:FX_SECRET",
        "permanent_code": "env:FX_CODE",
        "open_user_id": user,
    }
    if refused_with is None:
        assert load_config(crm).open_user_id == user.strip()
        return
    with pytest.raises(ConfigError, match=r"^crm\.open_user_id: ") as caught:
        load_config(crm)
    assert refused_with in str(caught.value)


def test_an_unknown_employee_is_a_config_error_without_retries(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    sleeps: list[float] = []
    connector = connect(sandbox, sleep=sleeps.append, open_user_id="4242", max_attempts=5)
    with pytest.raises(ConfigError, match="errorCode 30027") as caught:
        connector.fetch([customer_id(0)])
    assert "Fix: crm.open_user_id" in str(caught.value)
    assert sandbox.server.calls.count("query") == 1 and sleeps == []


def test_the_legacy_convention_acts_as_the_fsuid_open_user_id(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    connector = connect(
        sandbox, convention="corp_access_token", open_user_id=sandbox.acting_open_user_id
    )
    assert [r.profile.id for r in connector.fetch([customer_id(0)])] == [customer_id(0)]


def test_doctor_names_the_setting_before_a_sync_runs(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    (line,) = connect(sandbox, open_user_id="4242").check()
    assert not line.ok and "30027" in line.detail and "crm.open_user_id" in line.detail
