"""HTTP plumbing shared by every connector: a session with timeouts and a pinned CA, and
one retry loop (tenacity) that every CRM call goes through.

Why one module: retry storms and hanging calls are the classic reverse-ETL failures
(docs/targets.md R6, S7). Here every call has connect and read timeouts, retries use full-jitter
exponential backoff with a cap, honour ``Retry-After``, stop after a bounded number of
attempts, and re-raise the last error with its original cause. An expired token is
refreshed once, then the call is repeated; a second expiry is not retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from connectors.errors import (
    AuthExpiredError,
    QuotaExhaustedError,
    RateLimitedError,
    TransientError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_base: float = 0.5  # seconds; full jitter draws from [0, base * 2**attempt]
    backoff_cap: float = 120.0  # R6: no API retry waits longer than 2 minutes
    connect_timeout: float = 10.0
    read_timeout: float = 30.0


class TimeoutSession(requests.Session):
    """A ``requests.Session`` that never waits forever and never follows a redirect by
    default (a CRM API that redirects to another host is not to be trusted with a token)."""

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self._timeout = timeout
        #: called with each request as it is sent, before any answer: a connector counts
        #: its calls here, so that one whose answer never came (a timeout, a dropped
        #: connection: it may have landed) is counted as the call it was
        self.on_send: list[Callable[[requests.PreparedRequest], None]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self._timeout)
        kwargs.setdefault("allow_redirects", False)
        return super().request(method, url, *args, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        for hook in self.on_send:
            hook(request)
        return super().send(request, **kwargs)


#: The most ``apply()`` calls the sync layer runs on one connector at once (the upper bound
#: of ``[sync] write_concurrency``), plus a reader and a token fetch: what a connector whose
#: ``apply()`` fans out on threads of its own multiplies its pool size by.
MAX_CONCURRENT_APPLIES = 16
OTHER_CALLERS = 2


def make_session(
    policy: RetryPolicy, ca_bundle: str | None = None, *, pool_size: int | None = None
) -> TimeoutSession:
    """A session for one connector instance.

    ``trust_env`` is off so that ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` or a proxy in the
    environment cannot silently replace the configured CA (a sandbox CA or the bank's own).
    ``pool_size`` keeps that many connections per host: at least as many as calls the
    connector can have in flight at once, or urllib3 discards the surplus with a "Connection
    pool is full" warning and opens new TLS connections (requests' default is 10). A pool
    holds only connections actually opened, so a generous bound costs nothing idle.
    """
    session = TimeoutSession((policy.connect_timeout, policy.read_timeout))
    session.trust_env = False
    session.verify = ca_bundle or True
    if pool_size is not None:
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
    return session


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    jitter = wait_random_exponential(multiplier=policy.backoff_base, max=policy.backoff_cap)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), policy.backoff_cap)
        return float(jitter(state))

    return wait


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning(
        "retrying CRM call",
        extra={"attempt": state.attempt_number, "error": type(exc).__name__},
    )


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, TransientError) or _is_throttled(exc)


def _is_throttled(exc: BaseException) -> bool:
    return isinstance(exc, RateLimitedError) and not isinstance(exc, QuotaExhaustedError)


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    refresh_auth: Callable[[], None] | None = None,
    sleep: Callable[[float], None] | None = None,
    resend: bool = True,
) -> T:
    """Run ``fn`` under the retry policy.

    Retries ``TransientError`` and ``RateLimitedError`` (not ``QuotaExhaustedError``: our
    own budget is spent, waiting will not refill it). On ``AuthExpiredError`` calls
    ``refresh_auth`` once and tries again. Anything else propagates at once.

    Without ``resend`` (a call the CRM may have served though its answer was lost, and
    must not serve twice: an insert with no idempotency key), a ``TransientError``
    propagates at once; a rate limit and an expired token, refusals of an unserved call,
    are still repeated.
    """
    kwargs: dict[str, Any] = {}
    if sleep is not None:
        kwargs["sleep"] = sleep
    retrying = Retrying(
        retry=retry_if_exception(_is_retryable if resend else _is_throttled),
        wait=_wait(policy),
        stop=stop_after_attempt(policy.max_attempts),
        before_sleep=_log_retry,
        reraise=True,
        **kwargs,
    )
    try:
        return retrying(fn)
    except AuthExpiredError:
        if refresh_auth is None:
            raise
        refresh_auth()
        return retrying(fn)
