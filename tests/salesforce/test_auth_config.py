"""Auth flows against the sandbox's token endpoint, and the [crm] config's validation."""

from __future__ import annotations

import pytest
import requests
from requests.adapters import HTTPAdapter
from sf_helpers import read_all
from simple_salesforce import Salesforce, SalesforceLogin

from connectors.errors import ConfigError
from connectors.salesforce.config import load_settings


@pytest.fixture
def sandbox(sandbox_factory):
    return sandbox_factory("salesforce", customers=5)


def test_jwt_bearer_flow(sandbox, connect, monkeypatch):
    connector = connect(
        sandbox,
        auth="jwt",
        client_secret=None,
        private_key=f"file:{sandbox.app.jwt_key_path}",
        username="integration@crmtier.sandbox",
    )
    assert len(read_all(connector)) == 5


def test_jwt_for_an_unknown_user_is_a_config_error(sandbox, connect):
    connector = connect(
        sandbox,
        auth="jwt",
        client_secret=None,
        private_key=f"file:{sandbox.app.jwt_key_path}",
        username="someone@else",
    )
    with pytest.raises(ConfigError):
        read_all(connector)
    assert sandbox.server.calls.count("oauth_token") == 1  # not retried


def test_wrong_client_secret_is_a_config_error_and_check_says_so(sandbox, connect, monkeypatch):
    monkeypatch.setenv("WRONG_SECRET", "nope")
    connector = connect(sandbox, client_secret="env:WRONG_SECRET")
    with pytest.raises(ConfigError):
        read_all(connector)
    checks = connector.check()
    assert [(c.name, c.ok) for c in checks] == [("auth", False)]
    assert "nope" not in repr(checks)


class _ToSandbox(HTTPAdapter):
    """Sends https://<anything>.salesforce.com/... to the sandbox (simple-salesforce's own
    login helpers hard-code that host)."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def send(self, request, **kwargs):
        path = request.url.split(".salesforce.com", 1)[1]
        request.url = self.base_url + path
        return super().send(request, **kwargs)


def _routed_session(sandbox, host: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = sandbox.info().ca_bundle
    session.mount(host, _ToSandbox(sandbox.info().base_url))
    return session


def test_unmodified_simple_salesforce_logs_in_with_client_credentials(sandbox):
    """simple-salesforce's own client-credentials login (Basic auth header) works."""
    info = sandbox.info()
    session = _routed_session(sandbox, "https://acme.my.salesforce.com")
    token, instance = SalesforceLogin(
        consumer_key=info.credentials["client_id"],
        consumer_secret=info.credentials["client_secret"],
        domain="acme.my",
        session=session,
    )
    sf = Salesforce(session_id=token, instance_url=f"https://{instance}", session=session)
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 5
    assert sf.api_usage["api-usage"].total == 100_000


def test_unmodified_simple_salesforce_logs_in_with_jwt(sandbox):
    info = sandbox.info()
    session = _routed_session(sandbox, "https://login.salesforce.com")
    sf = Salesforce(
        username="integration@crmtier.sandbox",
        consumer_key=info.credentials["client_id"],
        privatekey_file=str(sandbox.app.jwt_key_path),
        session=session,
    )
    assert len(sf.query_all("SELECT Id FROM Account")["records"]) == 5


BASE = {
    "kind": "salesforce",
    "base_url": "https://acme.my.salesforce.com",
    "client_id": "env:SF_ID",
    "client_secret": "env:SF_SECRET",
}


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"base_url": "http://acme.my.salesforce.com"}, "crm.base_url"),
        ({"client_secret": "hunter2"}, "crm.client_secret"),
        ({"client_secret": None}, "needs client_secret"),
        ({"auth": "jwt"}, "needs private_key and username"),
        ({"auth": "password"}, "crm.auth"),
        ({"api_share": 1.5}, "crm.api_share"),
        ({"page_size": 5000}, "crm.page_size"),
        ({"api_version": "latest"}, "crm.api_version"),
        # collections upsert needs 46.0, CampaignMember.AccountId 50.0 (config.MIN_API_VERSION)
        ({"api_version": "45.0"}, "crm.api_version: must be 50.0 or later"),
        ({"api_version": "49.0"}, "crm.api_version: must be 50.0 or later"),
        ({"colour": "blue"}, "crm.colour"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(monkeypatch, change, fragment):
    monkeypatch.setenv("SF_ID", "id")
    monkeypatch.setenv("SF_SECRET", "s3cret-value")
    with pytest.raises(ConfigError) as info:
        load_settings({**BASE, **change})
    message = str(info.value)
    assert fragment in message and "\n" not in message
    assert "hunter2" not in message and "s3cret-value" not in message


def test_api_versions_from_50_are_taken(monkeypatch):
    monkeypatch.setenv("SF_ID", "id")
    monkeypatch.setenv("SF_SECRET", "s3cret-value")
    for version in ("50.0", "59.0", "66.0"):
        assert load_settings({**BASE, "api_version": version}).api_version == version


def test_settings_hide_secrets(monkeypatch):
    monkeypatch.setenv("SF_ID", "id")
    monkeypatch.setenv("SF_SECRET", "s3cret-value")
    settings = load_settings(BASE)
    assert "s3cret-value" not in repr(settings) and "s3cret-value" not in str(settings)
    assert settings.retry_policy().max_attempts == 5
