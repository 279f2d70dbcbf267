"""The errorCode table, row by row: every code ends in the class that says what to do next."""

from __future__ import annotations

import pytest

from connectors.errors import (
    AuthExpiredError,
    ConfigError,
    ConnectorError,
    QuotaExhaustedError,
    RateLimitedError,
    RecordError,
    TransientError,
)
from connectors.fxiaoke.errors import (
    HTTP_RULES,
    RATE_WINDOW_SECONDS,
    RULES,
    classify,
    classify_http,
    lookup,
)

#: Every code of the connector's table, its class, and its wording in FXiaoke's official
#: 全局返回码 table (developer.fxiaoke.com/openapi_v2/start/guide/codes.html, as transcribed
#: in api-evangelist/fxiaoke errors/fxiaoke-problem-types.yml).
ROWS: list[tuple[int, type[ConnectorError], str]] = [
    (-1, TransientError, "系统繁忙"),
    (-2, TransientError, "系统错误"),
    (50009, TransientError, "服务异常，如:超时"),
    (20016, AuthExpiredError, "corpAccessToken不存在或者已经过期"),
    (20005, AuthExpiredError, "accessToken不存在或者已经过期"),
    (11014, AuthExpiredError, "参数corpAccessToken不合法"),
    (14001, RateLimitedError, "接口调用超过限制"),
    (30004, RateLimitedError, "秒频次超限"),
    (30002, QuotaExhaustedError, "当天访问频次超限（0点重新统计）"),
    (30003, ConfigError, "客户没有购买openapi配额"),
    (10006, ConfigError, "缺少参数scope"),
    (10013, ConfigError, "缺少参数corpAccessToken"),
    (10014, ConfigError, "缺少参数corpId"),
    (10001, ConfigError, "缺少参数"),  # the 10001-10015 missing-parameter range
    (10015, ConfigError, "缺少参数"),
    (11001, ConfigError, "参数不合法"),  # the 11001-11018 invalid-parameter range
    (11008, ConfigError, "参数openUserId不合法"),
    (11013, ConfigError, "参数permanentCode不合法"),
    (11018, ConfigError, "参数不合法"),
    (15003, ConfigError, "APP没有访问权限"),
    (20006, ConfigError, "appId或appSecret错误"),
    (20012, ConfigError, "openUserId未找到"),
    (20014, ConfigError, "应用没有获取该员工的数据的权限"),
    (20015, ConfigError, "永久授权码错误"),
    (20017, ConfigError, "corpId未找到"),
    (20020, ConfigError, "应用没有获取该企业的数据的权限"),
    (20021, ConfigError, "在当前企业下，该app的状态为停用"),
    (20022, ConfigError, "企业没有对该app授权"),
    (20023, ConfigError, "APP没有访问department的权限"),
    (30027, ConfigError, "员工不存在"),
    (15002, ConfigError, "参数不合法"),  # parameter errors on a read: the mapping is wrong
    (32000, ConfigError, "参数错误"),
    (99999, TransientError, "unknown"),  # unknown: bounded retries, then the run fails loudly
]


@pytest.mark.parametrize(("code", "expected", "official"), ROWS)
def test_each_code_maps_to_its_recovery_class_and_official_meaning(
    code: int, expected: type[ConnectorError], official: str
) -> None:
    exc = classify(code, "message", endpoint="query")
    assert type(exc) is expected
    assert f"errorCode {code}" in str(exc)
    assert lookup(code).hint.startswith(official)


#: The documented ranges (全局返回码: 10001-10015 缺少参数, 11001-11018 参数不合法) minus
#: their codes with a row of their own.
RANGES = {
    code: official
    for first, last, official in ((10001, 10015, "缺少参数"), (11001, 11018, "参数不合法"))
    for code in range(first, last + 1)
}


@pytest.mark.parametrize("code", sorted(set(RANGES) - {code for code, _, _ in ROWS}))
def test_every_code_of_a_documented_range_is_a_config_error(code: int) -> None:
    assert type(classify(code, "m", endpoint="query")) is ConfigError
    assert lookup(code).hint.startswith(RANGES[code])


def test_every_row_of_the_table_is_checked() -> None:
    listed = {int(rule.code) for rule in RULES if rule.code is not None}
    assert listed <= {code for code, _, _ in ROWS} | set(RANGES)
    assert RULES[-1].code is None and RULES[-1].error is TransientError  # the catch-all


#: What a gateway or load balancer in front of FXiaoke answers, and what crmtier does.
GATEWAY: list[tuple[int, type[ConnectorError]]] = [
    (429, RateLimitedError),
    (500, TransientError),
    (502, TransientError),
    (503, TransientError),
    (504, TransientError),
    (507, TransientError),  # any other 5xx may pass too
    (404, ConfigError),
    (302, ConfigError),
]


@pytest.mark.parametrize(("status", "expected"), GATEWAY)
def test_gateway_statuses_map_row_by_row(status: int, expected: type[ConnectorError]) -> None:
    exc = classify_http(status, "/cgi/crm/v2/data/query")
    assert type(exc) is expected and f"HTTP {status}" in str(exc)
    if isinstance(exc, RateLimitedError):
        assert exc.retry_after == RATE_WINDOW_SECONDS


def test_every_gateway_row_is_checked() -> None:
    assert {rule.status for rule in HTTP_RULES} <= {status for status, _ in GATEWAY}


@pytest.mark.parametrize("code", [30027, 20012, 11008])
def test_a_wrong_acting_user_says_how_to_fix_it(code: int) -> None:
    text = str(classify(code, "员工不存在", endpoint="query"))
    assert "crm.open_user_id" in text and "employee id" in text and "FSUID_" in text


@pytest.mark.parametrize("code", [15002, 32000])
def test_parameter_errors_on_a_single_record_write_are_record_errors(code: int) -> None:
    exc = classify(
        code, "字段 field_value_tier__c: no such option", endpoint="update", record_id="C1"
    )
    assert isinstance(exc, RecordError)
    assert (exc.record_id, exc.code, exc.retryable) == ("C1", str(code), False)
    assert "field_value_tier__c" in str(exc)


@pytest.mark.parametrize("record_id", ["C1", None])
def test_the_vendor_message_never_reaches_the_text(record_id: str | None) -> None:
    """errorMessage can quote the record's values (here a name and an amount): only the
    code, its official meaning and a custom field's API name are kept."""
    message = "字段 field_aum__c 的值 张三 5000000.00 不合法"
    text = str(classify(15002, message, endpoint="update", record_id=record_id))
    assert "field_aum__c" in text and "15002" in text
    assert "张三" not in text and "5000000" not in text


@pytest.mark.parametrize("code", [14001, 30004])
def test_both_limit_codes_wait_out_the_window(code: int) -> None:
    # Which of the two the 100 calls / 20 s limit produces is undocumented: same handling.
    exc = classify(code, "limit", endpoint="update")
    assert isinstance(exc, RateLimitedError) and exc.retry_after == RATE_WINDOW_SECONDS


def test_codes_never_become_record_errors_without_a_record() -> None:
    for code, _, _ in ROWS:
        assert not isinstance(classify(code, "m", endpoint="query"), RecordError)


def test_the_message_never_decides_the_class() -> None:
    # FXiaoke: "errorMessage会有变化" - branch on the code only.
    assert type(classify(20016, "success", endpoint="q")) is AuthExpiredError
    assert type(classify(-1, "token expired", endpoint="q")) is TransientError
