"""Zoho failure modes over real HTTPS with the real zcrmsdk: token expiry mid-sync, 429
storms, the credit budget, 5xx, dropped and hanging connections, and TLS trust."""

from __future__ import annotations

import time
import tomllib

import pytest

from connectors.contract import FieldUpdate, WritePlan
from connectors.errors import (
    AuthExpiredError,
    ConfigError,
    QuotaExhaustedError,
    RateLimitedError,
)
from connectors.mapping import load_default_mapping
from connectors.sandbox.zoho_auth import zoho_error
from connectors.zoho.client import ZohoClient
from connectors.zoho.config import load_config
from connectors.zoho.connector import ZohoConnector

from .conftest import FAST_RETRIES


def read_pages(connector, since=None):
    return list(connector.read_changed(since))


def test_token_expiry_mid_sync_refreshes_once_and_continues(zoho, zconnect):
    connector = zconnect(zoho)
    pages = connector.read_changed(None)
    first = next(pages)
    zoho.expire_tokens()  # the hour is up between two pages
    rest = list(pages)
    ids = [r.profile.id for p in [first, *rest] for r in p.records]
    assert sorted(ids) == sorted(zoho.customer_ids())
    assert zoho.server.calls.count("token") == 2
    plan = WritePlan(field_updates=(FieldUpdate(ids[0], {"value_tier": "mass"}),))
    assert [r.ok for r in connector.apply(plan)] == [True]
    zoho.expire_tokens()  # and again before a write
    assert [r.ok for r in connector.apply(plan)] == [True]
    assert zoho.server.calls.count("token") == 3
    assert zoho.server.calls.count("update") == 3  # one, then the 401 and its repeat


def test_a_second_expiry_in_a_row_is_not_retried_forever(zoho, zconnect):
    connector = zconnect(zoho)
    read_pages(connector)
    expired = zoho_error("INVALID_TOKEN", "invalid oauth token", 401)
    zoho.server.inject("read", response=expired, times=None)
    with pytest.raises(AuthExpiredError):
        read_pages(connector)
    assert zoho.server.calls.count("token") == 2  # refreshed once, then gave up


def test_429_storm_is_bounded_and_the_read_resumes_with_at_most_one_page_reread(zoho, zconnect):
    connector = zconnect(zoho)
    everything = [r.profile.id for p in read_pages(connector) for r in p.records]
    zoho.server.reset()
    pages = connector.read_changed(None)
    done = [next(pages)]
    before = zoho.server.calls.count("read")
    zoho.rate_limit("read", times=None)  # the storm starts after the first page
    with pytest.raises(RateLimitedError):
        done += list(pages)
    assert zoho.server.calls.count("read") - before == FAST_RETRIES["max_attempts"]
    zoho.server.faults.clear()
    cursor = done[-1].cursor
    resumed = [r.profile.id for p in read_pages(connector, cursor) for r in p.records]
    already = [r.profile.id for p in done for r in p.records]
    assert resumed[0] == already[-1]  # inclusive cursor: the bookmark's record once more
    assert already + resumed[1:] == everything


def test_429_backoff_uses_full_jitter_within_the_cap(zoho, monkeypatch):
    text, env = zoho.crmtier_config()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    raw = tomllib.loads(text)
    config = load_config(
        {**raw["crm"], "max_attempts": 5, "backoff_base": 0.01, "backoff_cap": 0.05}
    )
    sleeps: list[float] = []
    default = load_default_mapping("zoho")
    connector = ZohoConnector(
        config, default.mapping, default.writeback, client=ZohoClient(config, sleep=sleeps.append)
    )
    try:
        zoho.rate_limit("read", times=3)
        assert sum(len(p.records) for p in read_pages(connector)) == 250
        assert len(sleeps) == 3
        assert all(0 <= s <= 0.05 for s in sleeps)
    finally:
        connector.close()


def test_rate_limited_writes_are_retried_and_each_record_written_once(zoho, zconnect):
    connector = zconnect(zoho)
    ids = zoho.customer_ids()[:150]
    zoho.rate_limit("update", times=2)
    plan = WritePlan(field_updates=tuple(FieldUpdate(i, {"value_tier": "affluent"}) for i in ids))
    assert all(r.ok for r in connector.apply(plan))
    assert zoho.server.calls.count("update") == 2 + 2  # two throttled, then two batches
    assert all(zoho.written(i)["value_tier"] == "affluent" for i in ids)


def test_credit_budget_stops_before_overspending_and_a_later_run_resumes(zoho, zconnect):
    # api_share 0.2 x 20 daily credits = a budget of 4: metadata + three reads
    connector = zconnect(zoho, daily_credits=20, page_size=50)
    pages = connector.read_changed(None)
    done = []
    with pytest.raises(QuotaExhaustedError, match="budget"):
        for page in pages:
            done.append(page)
    assert zoho.credits.used == 4  # the refused call was never sent
    assert connector.api_usage().allowance_used == 4
    later = zconnect(zoho, page_size=50)  # the next window, with a fresh budget
    resumed = [r.profile.id for p in read_pages(later, done[-1].cursor) for r in p.records]
    already = [r.profile.id for p in done for r in p.records]
    assert already[-1] == resumed[0]
    assert sorted(set(already + resumed)) == sorted(zoho.customer_ids())


def test_org_credit_exhaustion_pauses_after_one_refused_call(sandbox_factory, zconnect):
    # fields of Contacts and of Accounts (zcrmsdk reads the Account_Name lookup's module)
    # + one page
    zoho = sandbox_factory("zoho", customers=250, credit_limit=3)
    connector = zconnect(zoho, daily_credits=1_000_000)  # our own budget is not the limit
    with pytest.raises(QuotaExhaustedError):
        read_pages(connector)
    answered = zoho.credits.by_kind["read"]
    # docs/targets.md R5: at most one further call; none here, X-API-CREDITS-REMAINING said 0
    assert zoho.server.calls.count("read") == answered
    zoho.credits.limit += 1  # one credit left: the write of 20 records costs 2
    ids = zoho.customer_ids()[:20]
    plan = WritePlan(field_updates=tuple(FieldUpdate(i, {"value_tier": "mass"}) for i in ids))
    with pytest.raises(QuotaExhaustedError):
        connector.apply(plan)
    assert zoho.write_calls() == 0


def test_server_errors_and_dropped_connections_are_retried(zoho, zconnect):
    connector = zconnect(zoho)
    zoho.server_error("read", times=1, status=503)
    zoho.server.inject("read", drop=True, times=1)
    assert sum(len(p.records) for p in read_pages(connector)) == 250


def test_a_hanging_answer_times_out_and_is_retried(zoho, zconnect):
    # the timeout leaves a stalled test process (GC, GIL) ample room; the hang is far past it
    connector = zconnect(zoho, read_timeout=1.0)
    zoho.server.inject("update", delay=3.0, times=1)
    ids = zoho.customer_ids()[:2]
    plan = WritePlan(field_updates=tuple(FieldUpdate(i, {"value_tier": "private"}) for i in ids))
    assert all(r.ok for r in connector.apply(plan))
    assert zoho.server.calls.count("update") == 2
    # the abandoned request still completes on the server (as on Zoho); wait for it so the
    # sandbox is not stopped under it
    deadline = time.monotonic() + 30
    while len(zoho.write_triggers()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(zoho.write_triggers()) == 2


def test_trust_comes_from_ca_bundle_not_the_environment(zoho, zconnect, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(zoho.ca_bundle))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(zoho.ca_bundle))
    with pytest.raises(ConfigError, match="ca_bundle"):
        read_pages(zconnect(zoho, ca_bundle=""))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    assert sum(len(p.records) for p in read_pages(zconnect(zoho))) == 250


def test_a_sixteenth_process_on_one_refresh_token_costs_the_oldest_its_token_once(
    sandbox_factory, zconnect
):
    """Zoho keeps 15 live access tokens per refresh token and invalidates the oldest for a
    16th ("Token Validity"): the oldest client's next call is refused (401), it takes a new
    token and goes on, without the caller seeing a failure."""
    zoho = sandbox_factory("zoho", customers=1, refresh_limit=100)
    clients = [zconnect(zoho).client for _ in range(16)]
    for client in clients:
        assert client.current_user() is not None
    assert zoho.accounts.refreshes == 16
    assert clients[-1].current_user() is not None
    assert zoho.accounts.refreshes == 16  # the newest token still works
    assert clients[0].current_user() is not None
    assert zoho.accounts.refreshes == 17  # the oldest was invalidated and refreshed once
