"""Each CRM client takes its limits from the store when shared limits are installed, and
keeps its in-process limiters otherwise (issue 22 item 3): two Zoho "workers" share one
credit budget; FXiaoke's window and Salesforce's concurrent calls become store slots."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from connectors import limits
from connectors.errors import QuotaExhaustedError
from connectors.fxiaoke.client import FxiaokeClient
from connectors.fxiaoke.config import load_config as fx_config
from connectors.fxiaoke.ratelimit import SlidingWindowLimiter
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.config import load_settings as sf_settings
from connectors.zoho.config import load_config as zoho_config
from connectors.zoho.transport import credit_budget
from sync import shared_limits
from sync.shared_limits import PgLimits, PgSlots
from sync.store import StateStore
from tests.sync.conftest import PG_URL, pg_schema

ZOHO = {
    "kind": "zoho",
    "base_url": "https://www.zohoapis.com.cn",
    "accounts_url": "https://accounts.zoho.com.cn",
    "client_id": "env:ZOHO_ID",
    "client_secret": "env:ZOHO_SECRET",
    "refresh_token": "env:ZOHO_REFRESH",
    "daily_credits": 100,
    "api_share": 0.25,
}
FX = {
    "kind": "fxiaoke",
    "convention": "corp_access_token",
    "app_id": "FSAID_1",
    "app_secret": "env:FX_SECRET",
    "permanent_code": "env:FX_CODE",
    "open_user_id": "FSUID_6D7E0C7A",
    "daily_quota": 1000,
}
SF = {
    "kind": "salesforce",
    "base_url": "https://acme.my.salesforce.com",
    "client_id": "env:SF_ID",
    "client_secret": "env:SF_SECRET",
}


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ZOHO_ID", "ZOHO_SECRET", "ZOHO_REFRESH", "FX_SECRET", "FX_CODE"):
        monkeypatch.setenv(name, "placeholder")
    monkeypatch.setenv("SF_ID", "id")
    monkeypatch.setenv("SF_SECRET", "secret")


@pytest.fixture
def shared() -> Iterator[PgLimits]:
    with pg_schema() as name:
        engine = sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={name}"})
        installed = shared_limits.share(StateStore(engine))
        assert installed is not None and limits.installed() is installed
        yield installed
        engine.dispose()


def _spend_until_refused(budget: object) -> int:
    spent = 0
    while True:
        try:
            budget.reserve(1)  # type: ignore[attr-defined]
        except QuotaExhaustedError:
            return spent
        spent += 1


def test_two_zoho_workers_share_one_credit_budget(shared: PgLimits) -> None:
    config = zoho_config(ZOHO)
    first, second = credit_budget(config), credit_budget(config)
    assert config.credit_budget == 25
    # alternate, as two workers would: each spends from its block until the store refuses
    spent = _spend_until_refused(first) + _spend_until_refused(second)
    assert spent == 25  # never more; here no block is left unspent
    assert first.used + second.used == spent


def test_without_shared_limits_each_zoho_run_counts_for_itself() -> None:
    config = zoho_config(ZOHO)
    first, second = credit_budget(config), credit_budget(config)
    assert _spend_until_refused(first) == 25
    assert _spend_until_refused(second) == 25


def test_fxiaoke_and_salesforce_take_store_slots_when_shared(shared: PgLimits) -> None:
    fx = FxiaokeClient(fx_config(FX))
    sf = SalesforceClient(sf_settings(SF))
    try:
        assert isinstance(fx.limiter, PgSlots)
        assert (fx.limiter.limit, fx.limiter.window) == (100, 20.0)
        assert isinstance(sf._in_flight, PgSlots) and sf._in_flight.window == 0.0
        with fx.limiter.slot("/cgi/crm/v2/data/query"):
            pass
        assert shared.round_trips >= 3  # rows made, slot taken, slot given back
    finally:
        fx.close()
        sf.close()


def test_in_process_limiters_without_shared_limits() -> None:
    fx = FxiaokeClient(fx_config(FX))
    sf = SalesforceClient(sf_settings(SF))
    try:
        assert isinstance(fx.limiter, SlidingWindowLimiter)
        assert sf._in_flight is None
    finally:
        fx.close()
        sf.close()
