"""docs/targets.md S6 for Zoho: ``doctor`` reads the integration user's profile from
``users?type=CurrentUser`` and warns when it is the built-in Administrator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.sandbox.zoho import ZohoSandbox
from connectors.zoho.client_values import CurrentUser
from connectors.zoho.connector import ZohoConnector

NAME = "integration user rights: profile"


def _line(connector: ZohoConnector) -> Any:
    [line] = [c for c in connector.check() if c.name == NAME]
    return line


def test_the_current_user_is_read_through_zcrmsdk(
    sandbox_factory: Callable[..., Any], zconnect: Callable[..., ZohoConnector]
) -> None:
    sandbox: ZohoSandbox = sandbox_factory("zoho", customers=1)
    connector = zconnect(sandbox)
    assert connector.client.current_user() == CurrentUser("crmtier Integration", "Integration")
    assert connector.client.usage()["users"] == 1


def test_a_least_privilege_profile_is_an_ok_line(
    sandbox_factory: Callable[..., Any], zconnect: Callable[..., ZohoConnector]
) -> None:
    line = _line(zconnect(sandbox_factory("zoho", customers=1)))
    assert (line.ok, line.detail, line.fix) == (
        True,
        "profile crmtier Integration, role Integration",
        "",
    )


def test_the_administrator_profile_is_a_warning_with_the_fix(
    sandbox_factory: Callable[..., Any], zconnect: Callable[..., ZohoConnector]
) -> None:
    sandbox = sandbox_factory("zoho", customers=1, integration_profile="Administrator")
    connector = zconnect(sandbox)
    line = _line(connector)
    assert (line.ok, line.severity) == (False, "warning")
    assert line.detail == "profile Administrator, role Integration"
    assert "custom profile" in line.fix and "Edit only on the tier fields" in line.fix
    assert not any(c.severity == "error" and not c.ok for c in connector.check())


def test_an_unreadable_current_user_is_a_warning_not_a_crash(
    sandbox_factory: Callable[..., Any], zconnect: Callable[..., ZohoConnector]
) -> None:
    sandbox = sandbox_factory("zoho", customers=1)
    connector = zconnect(sandbox, max_attempts=1)
    sandbox.server_error(kind="users", status=403, times=None)
    line = _line(connector)
    assert (line.ok, line.severity) == (False, "warning")
    assert line.detail.startswith("could not read the current user")
    assert "ZohoCRM.users.READ" in line.fix
