"""FXiaoke ``errorCode`` → crmtier error class: the lookup table every call result goes through.

FXiaoke answers HTTP 200 to everything, success and failure alike; only ``errorCode`` tells
them apart (0 = success), and the docs warn never to branch on ``errorMessage``. The rows
below are the official 全局返回码 table (developer.fxiaoke.com/openapi_v2/start/guide/
codes.html), each with its official wording and mapped to what crmtier should do next
(connectors/errors.py). Codes that only a wrong setting can cause carry the fix. Three are
ambiguous in the sources and handled on purpose:

* 14001 (接口调用超过限制) and 30004 (秒频次超限): which one the 100 calls / 20 s per-endpoint
  limit produces is not documented, so both mean "back off" by the same window.
* 10013 is both "missing corpAccessToken" and, in the deep-paging FAQ, "offset out of range
  10000". Either way it is our bug (the connector never pages by offset past the wall), so
  it is a ``ConfigError`` whose message says which one it was.
* 10006 is "missing scope" in the table, and the gateway's answer to an unknown path; a
  third-party probe also saw it for a wrong appSecret.

Codes that reject *this record's data* (15002 / 32000 parameter errors, field validation)
become ``RecordError`` on a single-record write; on a read they mean the mapping names a
field the tenant does not have, which is a configuration problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from connectors.errors import (
    RUN_DOCTOR,
    Advice,
    AuthExpiredError,
    ConfigError,
    ConnectorError,
    QuotaExhaustedError,
    RateLimitedError,
    RecordError,
    TransientError,
    refusal_text,
)

#: A custom field's API name in FXiaoke (``field_value_tier__c``): the one part of an
#: ``errorMessage`` that is a name, not a value.
_CUSTOM_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_]*__c")


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
    meaning: str  # the official 全局返回码 wording, then ours in English
    retry_after: float | None = None
    fix: str = ""  # what the admin changes, for codes only a setting can cause


#: Per-endpoint window of FXiaoke's documented limit (100 calls / 20 s): the wait on a limit.
RATE_WINDOW_SECONDS = 20.0
_EMPLOYEE_ID_FIX = (
    'crm.open_user_id: with convention = "oauth2" it must be the CRM employee id of the '
    "integration user (digits: CRM → 人员/Personnel → 员工ID/Employee ID), not an FSUID_ open "
    'user id; with convention = "corp_access_token" it is that user\'s FSUID_ open user id'
)

_ROWS: dict[int, Row] = {
    -1: Row(Action.RETRY, "系统繁忙 system busy"),
    -2: Row(Action.RETRY, "系统错误 system error"),
    50009: Row(Action.RETRY, "服务异常，如:超时 service exception (e.g. timeout)"),
    20016: Row(Action.REFRESH_AUTH, "corpAccessToken不存在或者已经过期 token missing or expired"),
    20005: Row(Action.REFRESH_AUTH, "accessToken不存在或者已经过期 token missing or expired"),
    11014: Row(Action.REFRESH_AUTH, "参数corpAccessToken不合法 invalid corpAccessToken"),
    14001: Row(Action.THROTTLE, "接口调用超过限制 call limit exceeded", RATE_WINDOW_SECONDS),
    30004: Row(Action.THROTTLE, "秒频次超限 frequency limit exceeded", RATE_WINDOW_SECONDS),
    30002: Row(Action.PAUSE, "当天访问频次超限（0点重新统计） daily quota used, resets at 00:00"),
    30003: Row(
        Action.FIX_CONFIG,
        "客户没有购买openapi配额 no Open API quota purchased",
        fix="buy an Open API resource pack for the enterprise",
    ),
    10006: Row(Action.FIX_CONFIG, "缺少参数scope missing scope, or unknown API path"),
    10013: Row(
        Action.FIX_CONFIG, "缺少参数corpAccessToken missing corpAccessToken, or offset past 10000"
    ),
    10014: Row(Action.FIX_CONFIG, "缺少参数corpId missing corpId"),
    11008: Row(Action.FIX_CONFIG, "参数openUserId不合法 invalid openUserId", fix=_EMPLOYEE_ID_FIX),
    11013: Row(
        Action.FIX_CONFIG,
        "参数permanentCode不合法 invalid permanentCode",
        fix="check crm.permanent_code",
    ),
    15002: Row(Action.RECORD, "参数不合法 invalid parameter"),
    32000: Row(Action.RECORD, "参数错误 parameter error"),
    15003: Row(
        Action.FIX_CONFIG,
        "APP没有访问权限 the app has no access to this API",
        fix="grant the app the CRM object API in the FXiaoke open platform",
    ),
    20006: Row(
        Action.FIX_CONFIG,
        "appId或appSecret错误 wrong appId or appSecret",
        fix="check crm.app_id and crm.app_secret",
    ),
    20012: Row(Action.FIX_CONFIG, "openUserId未找到 openUserId not found", fix=_EMPLOYEE_ID_FIX),
    20014: Row(
        Action.FIX_CONFIG,
        "应用没有获取该员工的数据的权限 the app may not act for this employee",
        fix="add the integration user to the app's visible range (可见范围)",
    ),
    20015: Row(
        Action.FIX_CONFIG, "永久授权码错误 wrong permanentCode", fix="check crm.permanent_code"
    ),
    20017: Row(Action.FIX_CONFIG, "corpId未找到 corpId not found"),
    20020: Row(Action.FIX_CONFIG, "应用没有获取该企业的数据的权限 app lacks enterprise permission"),
    20021: Row(
        Action.FIX_CONFIG, "在当前企业下，该app的状态为停用 app disabled in this enterprise"
    ),
    20022: Row(Action.FIX_CONFIG, "企业没有对该app授权 enterprise has not authorised the app"),
    20023: Row(Action.FIX_CONFIG, "APP没有访问department的权限 app lacks department permission"),
    30027: Row(Action.FIX_CONFIG, "员工不存在 no such employee", fix=_EMPLOYEE_ID_FIX),
}

_RANGES: tuple[tuple[int, int, Row], ...] = (
    (10001, 10015, Row(Action.FIX_CONFIG, "缺少参数 missing parameter")),
    (11001, 11018, Row(Action.FIX_CONFIG, "参数不合法 invalid parameter")),
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

    ``message`` is FXiaoke's ``errorMessage``. It never decides the class, and its text never
    reaches a log or a dead letter, since it can quote the record's values: only a custom
    field's API name (``..__c``) is taken from it. ``record_id`` is set on single-record
    writes, which makes RECORD-rows per-record failures; without it the same codes are
    configuration errors.
    """
    row = lookup(code)
    field = next(iter(_CUSTOM_FIELD.findall(message)), None)
    text = f"FXiaoke {endpoint}: errorCode {code} ({row.meaning})"
    if field:
        text = f"{text} on field {field}"
    if row.fix:
        text = f"{text}. Fix: {row.fix}"
    if row.action is Action.RETRY:
        return TransientError(text)
    if row.action is Action.REFRESH_AUTH:
        return AuthExpiredError(text)
    if row.action is Action.THROTTLE:
        return RateLimitedError(text, retry_after=row.retry_after)
    if row.action is Action.PAUSE:
        return QuotaExhaustedError(text)
    if row.action is Action.RECORD and record_id is not None:
        advice = Advice(row.meaning, row.fix or RUN_DOCTOR)
        return RecordError(
            record_id, str(code), refusal_text("FXiaoke", str(code), field=field, advice=advice)
        )
    return ConfigError(text)
