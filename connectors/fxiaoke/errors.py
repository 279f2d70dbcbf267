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

The table is ``connectors.errors.ErrorRule`` rows like every CRM's: the ``code`` is the
``errorCode`` as text, the ``hint`` the official wording with ours in English, and the
status is left open (FXiaoke answers 200 either way). Rows whose class is ``RecordError``
reject *this record's data* (15002 / 32000 parameter errors, field validation): a
``RecordError`` on a single-record write; on a read they mean the mapping names a field the
tenant does not have, a ``ConfigError``. Gateways and load balancers in front of FXiaoke
answer with an HTTP status instead: ``HTTP_RULES``.

No vendor text leaves this module: ``errorMessage`` can quote the record's values, so an
error is made of the code, the row's wording, a custom field's API name and the fix only.
"""

from __future__ import annotations

import re

from connectors.errors import (
    RUN_DOCTOR,
    Advice,
    AuthExpiredError,
    ConfigError,
    ConnectorError,
    ErrorRule,
    QuotaExhaustedError,
    RateLimitedError,
    RecordError,
    TransientError,
    first_match,
    refusal_text,
)

#: A custom field's API name in FXiaoke (``field_value_tier__c``): the one part of an
#: ``errorMessage`` that is a name, not a value.
_CUSTOM_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_]*__c")

#: Per-endpoint window of FXiaoke's documented limit (100 calls / 20 s): the wait on a limit.
RATE_WINDOW_SECONDS = 20.0
_EMPLOYEE_ID_FIX = (
    'crm.open_user_id: with convention = "oauth2" it must be the CRM employee id of the '
    "integration user (digits: CRM → 人员/Personnel → 员工ID/Employee ID), not an FSUID_ open "
    'user id; with convention = "corp_access_token" it is that user\'s FSUID_ open user id'
)


def _code(
    code: int, error: type[ConnectorError], meaning: str, *, through: int | None = None
) -> tuple[ErrorRule, ...]:
    """Rows for ``code`` (or every code up to ``through``), with the official meaning."""
    last = code if through is None else through
    return tuple(ErrorRule(None, str(c), error, meaning) for c in range(code, last + 1))


#: The errorCode table, first match wins: specific codes, then the documented ranges, then
#: the catch-all (codes not in the table: retried a bounded number of times, then the run
#: fails loudly).
RULES: tuple[ErrorRule, ...] = (
    *_code(-1, TransientError, "系统繁忙 system busy"),
    *_code(-2, TransientError, "系统错误 system error"),
    *_code(50009, TransientError, "服务异常，如:超时 service exception (e.g. timeout)"),
    *_code(20016, AuthExpiredError, "corpAccessToken不存在或者已经过期 token missing or expired"),
    *_code(20005, AuthExpiredError, "accessToken不存在或者已经过期 token missing or expired"),
    *_code(11014, AuthExpiredError, "参数corpAccessToken不合法 invalid corpAccessToken"),
    *_code(14001, RateLimitedError, "接口调用超过限制 call limit exceeded"),
    *_code(30004, RateLimitedError, "秒频次超限 frequency limit exceeded"),
    *_code(
        30002,
        QuotaExhaustedError,
        "当天访问频次超限（0点重新统计） daily quota used, resets at 00:00",
    ),
    *_code(30003, ConfigError, "客户没有购买openapi配额 no Open API quota purchased"),
    *_code(10006, ConfigError, "缺少参数scope missing scope, or unknown API path"),
    *_code(
        10013, ConfigError, "缺少参数corpAccessToken missing corpAccessToken, or offset past 10000"
    ),
    *_code(10014, ConfigError, "缺少参数corpId missing corpId"),
    *_code(11008, ConfigError, "参数openUserId不合法 invalid openUserId"),
    *_code(11013, ConfigError, "参数permanentCode不合法 invalid permanentCode"),
    *_code(15002, RecordError, "参数不合法 invalid parameter"),
    *_code(32000, RecordError, "参数错误 parameter error"),
    *_code(15003, ConfigError, "APP没有访问权限 the app has no access to this API"),
    *_code(20006, ConfigError, "appId或appSecret错误 wrong appId or appSecret"),
    *_code(20012, ConfigError, "openUserId未找到 openUserId not found"),
    *_code(
        20014, ConfigError, "应用没有获取该员工的数据的权限 the app may not act for this employee"
    ),
    *_code(20015, ConfigError, "永久授权码错误 wrong permanentCode"),
    *_code(20017, ConfigError, "corpId未找到 corpId not found"),
    *_code(20020, ConfigError, "应用没有获取该企业的数据的权限 app lacks enterprise permission"),
    *_code(20021, ConfigError, "在当前企业下，该app的状态为停用 app disabled in this enterprise"),
    *_code(20022, ConfigError, "企业没有对该app授权 enterprise has not authorised the app"),
    *_code(20023, ConfigError, "APP没有访问department的权限 app lacks department permission"),
    *_code(30027, ConfigError, "员工不存在 no such employee"),
    *_code(10001, ConfigError, "缺少参数 missing parameter", through=10015),
    *_code(11001, ConfigError, "参数不合法 invalid parameter", through=11018),
    ErrorRule(None, None, TransientError, "unknown error code"),
)

#: What the admin changes, for the codes only a setting can cause.
FIXES: dict[str, str] = {
    "30003": "buy an Open API resource pack for the enterprise",
    "11008": _EMPLOYEE_ID_FIX,
    "11013": "check crm.permanent_code",
    "15003": "grant the app the CRM object API in the FXiaoke open platform",
    "20006": "check crm.app_id and crm.app_secret",
    "20012": _EMPLOYEE_ID_FIX,
    "20014": "add the integration user to the app's visible range (可见范围)",
    "20015": "check crm.permanent_code",
    "30027": _EMPLOYEE_ID_FIX,
}

#: FXiaoke itself answers 200; these statuses come from gateways and load balancers.
HTTP_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(429, None, RateLimitedError, "throttled by a gateway"),
    ErrorRule(500, None, TransientError, "gateway error"),
    ErrorRule(502, None, TransientError, "bad gateway"),
    ErrorRule(503, None, TransientError, "service unavailable"),
    ErrorRule(504, None, TransientError, "gateway timeout"),
)


def lookup(code: int) -> ErrorRule:
    """The table row of a non-zero ``errorCode`` (the catch-all when it is not listed)."""
    return first_match(RULES, 200, str(code)) or RULES[-1]


def classify(
    code: int, message: str, *, endpoint: str, record_id: str | None = None
) -> ConnectorError:
    """The exception to raise for a non-zero ``errorCode``.

    ``message`` is FXiaoke's ``errorMessage``. It never decides the class, and its text never
    reaches a log or a dead letter, since it can quote the record's values: only a custom
    field's API name (``..__c``) is taken from it. ``record_id`` is set on single-record
    writes, which makes ``RecordError`` rows per-record failures; without it the same codes
    are configuration errors.
    """
    rule = lookup(code)
    field = next(iter(_CUSTOM_FIELD.findall(message)), None)
    fix = FIXES.get(str(code), "")
    text = f"FXiaoke {endpoint}: errorCode {code} ({rule.hint})"
    if field:
        text = f"{text} on field {field}"
    if fix:
        text = f"{text}. Fix: {fix}"
    if rule.error is RecordError:
        if record_id is None:
            return ConfigError(text)
        advice = Advice(rule.hint, fix or RUN_DOCTOR)
        return RecordError(
            record_id, str(code), refusal_text("FXiaoke", str(code), field=field, advice=advice)
        )
    retry_after = RATE_WINDOW_SECONDS if rule.error is RateLimitedError else None
    return rule.build(text, retry_after=retry_after)


def classify_http(status: int, path: str) -> ConnectorError:
    """The exception for an answer that is not HTTP 200 (a gateway's, not FXiaoke's)."""
    rule = first_match(HTTP_RULES, status, None)
    if rule is not None:
        return rule.build(f"FXiaoke {path}: HTTP {status}", retry_after=RATE_WINDOW_SECONDS)
    error = TransientError if status >= 500 else ConfigError
    return error(f"FXiaoke {path}: unexpected HTTP {status}")
