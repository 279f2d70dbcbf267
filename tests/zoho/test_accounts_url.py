"""``crm.accounts_url``: the Accounts host (as docs/admin-setup.md gives it) or its token
endpoint both work, anything else is refused at load, and a token endpoint that does not
answer like Zoho Accounts is named in the error instead of blaming the credentials."""

from __future__ import annotations

import pytest

from connectors.errors import ConfigError
from connectors.sandbox.server import Response
from connectors.zoho.config import load_config


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ZOHO_ID", "ZOHO_SECRET", "ZOHO_REFRESH"):
        monkeypatch.setenv(name, "placeholder")


BASE = {
    "kind": "zoho",
    "base_url": "https://www.zohoapis.com.cn",
    "client_id": "env:ZOHO_ID",
    "client_secret": "env:ZOHO_SECRET",
    "refresh_token": "env:ZOHO_REFRESH",
}


@pytest.mark.parametrize(
    ("given", "endpoint"),
    [
        ("https://accounts.zoho.com.cn", "https://accounts.zoho.com.cn/oauth/v2/token"),
        ("https://accounts.zoho.com.cn/", "https://accounts.zoho.com.cn/oauth/v2/token"),
        ("https://accounts.zoho.eu/oauth/v2/token", "https://accounts.zoho.eu/oauth/v2/token"),
        ("https://accounts.zoho.com/oauth/v2/token/", "https://accounts.zoho.com/oauth/v2/token"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443/oauth/v2/token"),
    ],
)
def test_the_accounts_host_or_its_token_endpoint_is_accepted(given: str, endpoint: str) -> None:
    assert load_config({**BASE, "accounts_url": given}).accounts_url == endpoint


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("https://accounts.zoho.com.cn/oauth/v2/auth", "/oauth/v2/auth"),
        ("https://accounts.zoho.com.cn/signin", "/signin"),
        ("http://accounts.zoho.com.cn", "https://"),
    ],
)
def test_other_accounts_urls_are_refused_at_load(given: str, says: str) -> None:
    with pytest.raises(ConfigError, match=r"crm\.accounts_url") as caught:
        load_config({**BASE, "accounts_url": given})
    assert says in str(caught.value)


def test_the_documented_host_value_logs_in(zoho, zconnect):
    """docs/admin-setup.md shows the Accounts host; the connector reaches the endpoint."""
    connector = zconnect(zoho, accounts_url=zoho.server.base_url)
    assert "Transactions_90D" in connector.schema("Contacts")
    assert zoho.server.calls.count("token") == 1


def test_a_token_endpoint_that_is_not_one_is_named_and_not_retried(zoho, zconnect):
    page = Response.text("<html>Zoho Accounts sign in</html>", 200, "text/html")
    zoho.server.inject("token", response=page, times=None)
    connector = zconnect(zoho)
    with pytest.raises(ConfigError) as caught:
        connector.schema("Contacts")
    text = str(caught.value)
    assert f"{zoho.server.base_url}/oauth/v2/token" in text and "crm.accounts_url" in text
    assert zoho.server.calls.count("token") == 1


def test_a_refused_client_names_the_endpoint_and_the_data_centre(zoho, zconnect, monkeypatch):
    monkeypatch.setenv("WRONG_ZOHO_SECRET", "not-the-secret")
    connector = zconnect(zoho, client_secret="env:WRONG_ZOHO_SECRET")
    with pytest.raises(ConfigError) as caught:
        connector.schema("Contacts")
    text = str(caught.value)
    assert f"at {zoho.server.base_url}/oauth/v2/token answered invalid_client" in text
    assert "data centre" in text and "not-the-secret" not in text


def test_doctor_names_the_api_domain_zoho_accounts_gives(zoho, zconnect):
    """An org lives in one data centre and Zoho Accounts names its API host (``api_domain``)
    in every token answer ("Refresh Access Tokens"; "Multi DC Support"): a crm.base_url of
    another centre fails like a bad token, and doctor names the host Zoho gave."""
    zoho.accounts.move_org("https://www.zohoapis.eu")
    connector = zconnect(zoho)
    try:
        first = connector.check()[0]
    finally:
        connector.close()
    assert first.name == "zoho: connect and authenticate" and not first.ok
    assert "https://www.zohoapis.eu" in first.fix and "crm.base_url" in first.fix


def test_a_run_on_another_centres_host_names_base_url_not_an_expired_token(zoho, zconnect):
    """At run time too: a fresh token refused while Zoho Accounts names another API host
    is a configuration error naming crm.base_url and that host (it was "access token
    expired or revoked"), and nothing is sent to that host: crmtier calls base_url only."""
    zoho.accounts.move_org("https://www.zohoapis.eu")
    connector = zconnect(zoho)
    try:
        with pytest.raises(ConfigError) as caught:
            list(connector.read_changed(None))
    finally:
        connector.close()
    text = str(caught.value)
    assert "crm.base_url" in text and "https://www.zohoapis.eu" in text
    assert zoho.server.base_url in text
