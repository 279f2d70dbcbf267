"""FXiaoke ``errorCode`` → crmtier error class: the lookup table every call result goes through.

FXiaoke answers HTTP 200 to everything, success and failure alike; only ``errorCode`` tells
them apart (0 = success), and the docs warn never to branch on ``errorMessage``. The rows
below are the official 全局返回码 table as transcribed in reference/crm_apis.md §3.6, each
mapped to what crmtier should do next (connectors/errors.py). Two codes are ambiguous in the
sources and handled on purpose:

* 14001 (接口调用超过限制) and 30004 (秒频次超限): which one the 100 calls / 20 s per-endpoint
  limit produces is not documented, so both mean "back off", with the window as the wait.
* 10013 is both "missing corpAccessToken" and, in the deep-paging FAQ, "offset out of range
  10000". Either way it is our bug (the connector never pages by offset past the wall), so
  it is a ``ConfigError`` whose message says which one it was.

Codes that reject *this record's data* (15002 / 32000 parameter errors, field validation)
become ``RecordError`` on a single-record write; on a read they mean the mapping names a
field the tenant does not have, which is a configuration problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from connectors.errors import (
    AuthExpiredError,
    ConfigError,
    ConnectorError,
    QuotaExhaustedError,
    RateLimitedError,
    RecordError,
    TransientError,
)


class Action(Enum):
    RETRY = "retry"  # TransientError
    REFRESH_AUTH = "refresh_token"  # AuthExpiredError
    THROTTLE = "throttle"  # RateLimitedError
    PAUSE = "pause"  # QuotaExhaustedError: daily quota, resets at 00:00
    FIX_CONFIG = "fix_config"  # ConfigError
    RECORD = "record"  # RecordError on a write, ConfigError on a read


@dataclass(frozen=True)
class Row:
    action: Action
    meaning: str
    retry_after: float | None = None


#: Per-endpoint window of FXiaoke's documented limit (100 calls / 20 s): the wait on 14001.
RATE_WINDOW_SECONDS = 20.0

_ROWS: dict[int, Row] = {
    -1: Row(Action.RETRY, "system busy"),
    -2: Row(Action.RETRY, "system error"),
    50009: Row(Action.RETRY, "service exception (e.g. timeout)"),
    20016: Row(Action.REFRESH_AUTH, "corpAccessToken missing or expired"),
    20005: Row(Action.REFRESH_AUTH, "accessToken missing or expired"),
    11014: Row(Action.REFRESH_AUTH, "invalid corpAccessToken"),
    14001: Row(Action.THROTTLE, "interface call limit exceeded", RATE_WINDOW_SECONDS),
    30004: Row(Action.THROTTLE, "per-second frequency exceeded", 1.0),
    30002: Row(Action.PAUSE, "daily call quota exhausted (resets at 00:00)"),
    30003: Row(Action.FIX_CONFIG, "no Open API quota purchased"),
    10006: Row(Action.FIX_CONFIG, "unknown API path, or wrong appSecret"),
    10013: Row(Action.FIX_CONFIG, "missing corpAccessToken, or query offset beyond 10000"),
    10014: Row(Action.FIX_CONFIG, "missing corpId"),
    11013: Row(Action.FIX_CONFIG, "invalid permanentCode"),
    15002: Row(Action.RECORD, "invalid parameter"),
    32000: Row(Action.RECORD, "parameter error"),
    15003: Row(Action.FIX_CONFIG, "app has no access to this API"),
    20006: Row(Action.FIX_CONFIG, "wrong appId or appSecret"),
    20015: Row(Action.FIX_CONFIG, "wrong permanentCode"),
    20017: Row(Action.FIX_CONFIG, "corpId not found"),
    20020: Row(Action.FIX_CONFIG, "app lacks enterprise permission"),
    20021: Row(Action.FIX_CONFIG, "app lacks department permission"),
    20022: Row(Action.FIX_CONFIG, "app disabled"),
    20023: Row(Action.FIX_CONFIG, "enterprise has not authorised the app"),
}

_RANGES: tuple[tuple[int, int, Row], ...] = (
    (10001, 10015, Row(Action.FIX_CONFIG, "missing parameter")),
    (11001, 11018, Row(Action.FIX_CONFIG, "invalid parameter")),
)

#: Codes not in the table: retried a bounded number of times, then the run fails loudly.
UNKNOWN = Row(Action.RETRY, "unknown error code")


def lookup(code: int) -> Row:
    """The table row of a non-zero ``errorCode``."""
    row = _ROWS.get(code)
    if row is not None:
        return row
    for low, high, ranged in _RANGES:
        if low <= code <= high:
            return ranged
    return UNKNOWN


def classify(
    code: int, message: str, *, endpoint: str, record_id: str | None = None
) -> ConnectorError:
    """The exception to raise for a non-zero ``errorCode``.

    ``message`` is FXiaoke's ``errorMessage``: it goes into the text for the admin but never
    decides the class. ``record_id`` is set on single-record writes, which makes RECORD-rows
    per-record failures; without it the same codes are configuration errors.
    """
    row = lookup(code)
    text = f"FXiaoke {endpoint}: errorCode {code} ({row.meaning}): {message}"
    if row.action is Action.RETRY:
        return TransientError(text)
    if row.action is Action.REFRESH_AUTH:
        return AuthExpiredError(text)
    if row.action is Action.THROTTLE:
        return RateLimitedError(text, retry_after=row.retry_after)
    if row.action is Action.PAUSE:
        return QuotaExhaustedError(text)
    if row.action is Action.RECORD and record_id is not None:
        return RecordError(record_id, str(code), f"{row.meaning}: {message}")
    return ConfigError(text)
