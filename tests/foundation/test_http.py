"""The shared retry loop: which errors are retried, how long it waits, when it gives up."""

from __future__ import annotations

import pytest
import requests

from connectors.errors import (
    AuthExpiredError,
    ConfigError,
    QuotaExhaustedError,
    RateLimitedError,
    RecordError,
    TransientError,
)
from connectors.http import RetryPolicy, call_with_retry, make_session

POLICY = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_cap=0.05)


class Flaky:
    """Raises the given errors in turn, then returns 'ok'."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


@pytest.mark.parametrize(
    ("errors", "calls"),
    [
        ((), 1),
        ((TransientError("503"),), 2),
        ((TransientError("reset"), RateLimitedError("429")), 3),
        ((TransientError("a"), TransientError("b"), TransientError("c")), 4),
    ],
)
def test_retryable_errors_are_retried_until_success(
    errors: tuple[Exception, ...], calls: int
) -> None:
    fn = Flaky(*errors)
    assert call_with_retry(fn, POLICY, sleep=lambda _: None) == "ok"
    assert fn.calls == calls


def test_gives_up_after_max_attempts_and_reraises_the_last_error() -> None:
    fn = Flaky(*(TransientError(str(i)) for i in range(10)))
    with pytest.raises(TransientError, match="3"):
        call_with_retry(fn, POLICY, sleep=lambda _: None)
    assert fn.calls == POLICY.max_attempts


@pytest.mark.parametrize(
    "error",
    [
        ConfigError("bad field"),
        QuotaExhaustedError("share used", retry_after=1.0),
        RecordError("001", "INVALID_FIELD", "bad"),
        ValueError("a bug"),
    ],
)
def test_non_retryable_errors_propagate_at_once(error: Exception) -> None:
    fn = Flaky(error)
    with pytest.raises(type(error)):
        call_with_retry(fn, POLICY, sleep=lambda _: None)
    assert fn.calls == 1


def test_retry_after_is_honoured_and_capped() -> None:
    waits: list[float] = []
    fn = Flaky(
        RateLimitedError("slow down", retry_after=0.02), RateLimitedError("x", retry_after=99)
    )
    call_with_retry(fn, POLICY, sleep=waits.append)
    assert waits == [0.02, POLICY.backoff_cap]


def test_full_jitter_waits_stay_within_the_exponential_envelope() -> None:
    waits: list[float] = []
    fn = Flaky(TransientError("a"), TransientError("b"), TransientError("c"))
    call_with_retry(fn, POLICY, sleep=waits.append)
    assert len(waits) == 3
    for attempt, wait in enumerate(waits, start=1):
        assert 0 <= wait <= min(POLICY.backoff_base * 2**attempt, POLICY.backoff_cap)


def test_expired_auth_is_refreshed_exactly_once() -> None:
    refreshed: list[bool] = []
    fn = Flaky(AuthExpiredError("expired"))
    assert call_with_retry(fn, POLICY, refresh_auth=lambda: refreshed.append(True)) == "ok"
    assert refreshed == [True]

    twice = Flaky(AuthExpiredError("expired"), AuthExpiredError("still"))
    with pytest.raises(AuthExpiredError):
        call_with_retry(twice, POLICY, refresh_auth=lambda: refreshed.append(True))
    assert len(refreshed) == 2  # one more refresh for the second call, then it gives up


def test_session_ignores_environment_ca_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    session = make_session(POLICY, ca_bundle="/configured/ca.pem")
    settings = session.merge_environment_settings("https://example.test", {}, None, None, None)
    assert settings["verify"] == "/configured/ca.pem"


@pytest.mark.parametrize("calls", [10, 24])
def test_a_pool_sized_to_the_calls_in_flight_discards_no_connection(
    calls: int, caplog: pytest.LogCaptureFixture
) -> None:
    """``calls`` connections taken from the session's pool at once (as that many threads
    in flight do) and given back: with the pool sized to them none is discarded with
    urllib3's "Connection pool is full" warning (what ``crmtier demo --crm fxiaoke``
    printed with requests' default pool of 10)."""
    session = make_session(POLICY, pool_size=calls)
    url = "https://crm.example.test/"
    pool = session.get_adapter(url).get_connection_with_tls_context(  # type: ignore[attr-defined]
        requests.Request("GET", url).prepare(), verify=True
    )
    in_flight = [pool._get_conn() for _ in range(calls)]  # no network: connections are lazy
    for conn in in_flight:
        pool._put_conn(conn)
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


def test_the_fxiaoke_pool_holds_every_write_the_sync_layer_can_have_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from connectors.fxiaoke.client import FxiaokeClient
    from connectors.fxiaoke.config import FxiaokeConfig
    from connectors.http import MAX_CONCURRENT_APPLIES

    monkeypatch.setenv("FX_TEST_UNUSED", "never-sent")
    config = FxiaokeConfig.model_validate(
        {
            "kind": "fxiaoke",
            "base_url": "https://open.fxiaoke.example",
            "app_id": "a",
            "app_secret": "env:FX_TEST_UNUSED",
            "permanent_code": "env:FX_TEST_UNUSED",
            "open_user_id": "1001",
            "write_concurrency": 6,
        }
    )
    client = FxiaokeClient(config)
    adapter = client._session.get_adapter("https://open.fxiaoke.example/")
    assert adapter._pool_maxsize >= 6 * MAX_CONCURRENT_APPLIES  # type: ignore[attr-defined]
