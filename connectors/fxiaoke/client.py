"""The FXiaoke Open API v2 wire: the only module that speaks raw HTTP to FXiaoke.

There is no official Python SDK (FXiaoke publishes a Java demo: github.com/openfxiaoke/demo),
so this is ``requests`` on the shared session and retry loop (connectors/http.py). What it adds
for FXiaoke:

* every call is ``POST`` + JSON to a verb-style path with a fresh ``?thirdTraceId=<uuid4>``,
  and every answer is HTTP 200: success is ``errorCode == 0``, anything else goes through
  the code table in ``errors.py``;
* an access-token cache *per client instance* (never module-global: two tenants in one
  process must never share a token). The token is reused for ``expiresIn - 600`` s (FXiaoke
  hands back the same token for the first 6,600 s of 7,200), refreshed before expiry and on
  20016; token calls are serialised and kept under the token endpoint's 10 calls/minute;
  when parallel calls all see the same expired token, only the first one refreshes it;
* a per-endpoint sliding-window limiter (100 calls / 20 s) in front of every API call;
* an optional budget guard: with ``daily_quota`` set, the client stops at ``api_share`` of it
  with ``QuotaExhaustedError`` before making the call that would exceed it.

Both limits are the tenant's, not the process's: where the state store is shared by several
workers (PostgreSQL), the window and the daily share are taken from the store
(``connectors/limits.py``), so N workers together stay under them; otherwise they are kept
in this process, as the one worker of the embedded store needs.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from connectors import limits
from connectors.calltally import CallCounter
from connectors.errors import ConfigError, QuotaExhaustedError, TransientError
from connectors.fxiaoke import errors
from connectors.fxiaoke.config import FxiaokeConfig
from connectors.fxiaoke.ratelimit import SlidingWindowLimiter
from connectors.http import (
    MAX_CONCURRENT_APPLIES,
    OTHER_CALLERS,
    call_with_retry,
    make_session,
)

log = logging.getLogger(__name__)

OAUTH2_AUTH_PATH = "/oauth2.0/token"
CORP_AUTH_PATH = "/cgi/corpAccessToken/get/V2"
DESCRIBE_PATH = "/cgi/crm/v2/object/describe"
#: A token is refreshed this many seconds before FXiaoke says it expires (7200 - 600 = the
#: 6,600 s during which FXiaoke returns the same token anyway).
REFRESH_MARGIN_SECONDS = 600.0
#: FXiaoke counts the daily quota per day (its rate-limit guide: reset at midnight)
DAY = 86_400.0


def data_path(obj: str, verb: str) -> str:
    """``/cgi/crm/v2/data/<verb>`` for preset objects, ``/cgi/crm/custom/v2/data/<verb>`` for
    custom objects (api names ending ``__c``)."""
    family = "custom/v2" if obj.endswith("__c") else "v2"
    return f"/cgi/crm/{family}/data/{verb}"


def endpoint_kind(path: str) -> str:
    """A short counter name for a path: ``query``, ``update``, ``token``, ``describe``..."""
    if path in (OAUTH2_AUTH_PATH, CORP_AUTH_PATH):
        return "token"
    return path.rsplit("/", 1)[-1]


class _InTransit(Exception):
    """A non-replayable call failed in transit; carries the TransientError out of the retry
    loop, which must not repeat it."""

    def __init__(self, error: TransientError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class Token:
    value: str
    tenant: str  # corpId (legacy) or ea (oauth2)
    obtained: float
    expires_in: float


class TokenCache:
    """One tenant's access token; thread-safe, refreshed lazily and at most once per expiry."""

    def __init__(self, fetch: Callable[[], Token], clock: Callable[[], float]) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Token | None = None

    def current(self) -> Token:
        with self._lock:
            token = self._token
            if token is None or self._clock() >= token.obtained + max(
                token.expires_in - REFRESH_MARGIN_SECONDS, token.expires_in / 2
            ):
                token = self._token = self._fetch()
            return token

    def refresh(self, stale: Token | None) -> None:
        """Replace ``stale`` after the API rejected it; a no-op if another thread already did."""
        with self._lock:
            if self._token is None or self._token is stale:
                self._token = self._fetch()


class FxiaokeClient:
    def __init__(
        self,
        config: FxiaokeConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.config = config
        self.policy = config.retry_policy()
        # apply() fans each batch out on write_concurrency threads, and the sync layer may
        # run up to MAX_CONCURRENT_APPLIES applies at once: one connection for each call.
        self._session = make_session(
            self.policy,
            config.ca_bundle or None,
            pool_size=config.write_concurrency * MAX_CONCURRENT_APPLIES + OTHER_CALLERS,
        )
        self._sleep = sleep
        tenant = (config.base_url, config.app_id)
        self.limiter: limits.Slots = limits.shared_slots(
            limits.limit_name("fxiaoke", "calls", *tenant),
            config.calls_per_window,
            config.window_seconds,
        ) or SlidingWindowLimiter(
            config.calls_per_window, config.window_seconds, clock=clock, sleep=sleep
        )
        self._token_limiter: limits.Slots = limits.shared_slots(
            limits.limit_name("fxiaoke", "token", *tenant), config.token_calls_per_minute, 60.0
        ) or SlidingWindowLimiter(config.token_calls_per_minute, 60.0, clock=clock, sleep=sleep)
        self._tokens = TokenCache(self._fetch_token, clock)
        self._clock = clock
        self._count_lock = threading.Lock()
        self._calls = CallCounter()  # by endpoint (and by run)
        self._budget = (
            int(config.daily_quota * config.api_share) if config.daily_quota is not None else None
        )
        self._shared_budget = (
            limits.shared_quota(limits.limit_name("fxiaoke", "daily", *tenant), self._budget, DAY)
            if self._budget is not None
            else None
        )

    # --- public ---------------------------------------------------------------------

    def call(
        self,
        path: str,
        data: Mapping[str, Any],
        *,
        top: Mapping[str, Any] | None = None,
        record_id: str | None = None,
        replay_safe: bool = True,
    ) -> dict[str, Any]:
        """POST ``{"data": data, **top}`` with auth; return the whole success envelope.

        ``record_id`` marks a single-record write, so data errors come back as
        ``RecordError``. ``replay_safe=False`` (creates: FXiaoke has no idempotency key)
        still refreshes an expired token and waits out a limit code, since FXiaoke refused
        those calls before doing anything, but a failure in transit (timeout, reset, 5xx)
        is raised at once: whether the record was created is unknown, and the caller must
        look before it tries again.
        """
        used: list[Token] = []

        def attempt() -> dict[str, Any]:
            token = self._tokens.current()
            used.append(token)
            try:
                return self._post(path, self._body(token, data, top), token, record_id)
            except TransientError as exc:
                if replay_safe:
                    raise
                raise _InTransit(exc) from exc

        try:
            return call_with_retry(
                attempt,
                self.policy,
                refresh_auth=lambda: self._tokens.refresh(used[-1] if used else None),
                sleep=self._sleep,
            )
        except _InTransit as lost:
            raise lost.error from lost.error.__cause__

    def calls(self) -> dict[str, int]:
        return self._calls.counts()

    @property
    def budget(self) -> int | None:
        return self._budget

    def close(self) -> None:
        self._session.close()

    # --- token ----------------------------------------------------------------------

    def _fetch_token(self) -> Token:
        """One token call, serialised by the TokenCache lock and rate-limited to the token
        endpoint's own allowance (10/min, never concurrent)."""
        cfg = self.config
        body: dict[str, Any] = {
            "appId": cfg.app_id,
            "appSecret": cfg.app_secret.get_secret_value(),
            "permanentCode": cfg.permanent_code.get_secret_value(),
        }
        path = CORP_AUTH_PATH if cfg.convention == "corp_access_token" else OAUTH2_AUTH_PATH
        if cfg.convention == "oauth2":
            body["grantType"] = "app_secret"

        def attempt() -> dict[str, Any]:
            with self._token_limiter.slot(path):
                return self._send(path, body, headers={}, record_id=None)

        answer = call_with_retry(attempt, self.policy, sleep=self._sleep)
        try:
            if cfg.convention == "corp_access_token":
                value, tenant = answer["corpAccessToken"], answer["corpId"]
            else:
                value, tenant = answer["accessToken"], answer["ea"]
            expires = float(answer.get("expiresIn", 7200))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"FXiaoke {path}: token response lacks the token fields") from None
        log.info("fxiaoke access token obtained", extra={"style": cfg.convention})
        return Token(str(value), str(tenant), self._clock(), expires)

    # --- transport ------------------------------------------------------------------

    def _body(
        self, token: Token, data: Mapping[str, Any], top: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = dict(top or {})
        if self.config.convention == "corp_access_token":
            body.update(
                corpAccessToken=token.value,
                corpId=token.tenant,
                currentOpenUserId=self.config.open_user_id,
            )
        else:
            body.update(convertUserId=False, convertMediaId=False)
        body["data"] = dict(data)
        return body

    def _headers(self, token: Token) -> dict[str, str]:
        if self.config.convention == "corp_access_token":
            return {}
        return {
            "authorization": f"Bearer {token.value}",
            "x-fs-ea": token.tenant,
            "x-fs-userid": self.config.open_user_id,
        }

    def _post(
        self, path: str, body: dict[str, Any], token: Token, record_id: str | None
    ) -> dict[str, Any]:
        with self.limiter.slot(path):
            return self._send(path, body, self._headers(token), record_id)

    def _send(
        self, path: str, body: dict[str, Any], headers: dict[str, str], record_id: str | None
    ) -> dict[str, Any]:
        self._spend(path)
        url = f"{self.config.base_url}{path}"
        try:
            response = self._session.post(
                url, json=body, headers=headers, params={"thirdTraceId": str(uuid.uuid4())}
            )
        except requests.Timeout as exc:
            raise TransientError(f"FXiaoke {path}: timed out") from exc
        except requests.ConnectionError as exc:
            raise TransientError(f"FXiaoke {path}: connection failed") from exc
        if response.status_code != 200:  # a gateway's answer, not FXiaoke's
            raise errors.classify_http(response.status_code, path)
        try:
            answer = response.json()
        except ValueError:
            raise TransientError(f"FXiaoke {path}: response is not JSON") from None
        if not isinstance(answer, dict) or "errorCode" not in answer:
            raise TransientError(f"FXiaoke {path}: response has no errorCode")
        code = int(answer["errorCode"])
        if code != 0:
            raise errors.classify(
                code,
                str(answer.get("errorMessage", "")),
                endpoint=endpoint_kind(path),
                record_id=record_id,
            )
        return answer

    def _spend(self, path: str) -> None:
        with self._count_lock:
            if self._shared_budget is not None:
                spent = not self._shared_budget.take(1)
            else:
                spent = self._budget is not None and self._calls.total() >= self._budget
            if spent:
                raise QuotaExhaustedError(
                    f"FXiaoke: this run's share of the daily quota ({self._budget} calls) is used"
                )
            self._calls.add(endpoint_kind(path))
