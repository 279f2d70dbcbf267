"""The shared retry loop: which errors are retried, how long it waits, when it gives up."""

from __future__ import annotations

import pytest

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
