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
from connectors.fxiaoke.errors import RATE_WINDOW_SECONDS, classify

ROWS: list[tuple[int, type[ConnectorError]]] = [
    (-1, TransientError),
    (-2, TransientError),
    (50009, TransientError),
    (20016, AuthExpiredError),
    (20005, AuthExpiredError),
    (11014, AuthExpiredError),
    (14001, RateLimitedError),
    (30004, RateLimitedError),
    (30002, QuotaExhaustedError),
    (30003, ConfigError),
    (10006, ConfigError),
    (10013, ConfigError),
    (10014, ConfigError),
    (10001, ConfigError),  # the 10001-10015 missing-parameter range
    (10015, ConfigError),
    (11001, ConfigError),  # the 11001-11018 invalid-parameter range
    (11013, ConfigError),
    (11018, ConfigError),
    (15003, ConfigError),
    (20006, ConfigError),
    (20015, ConfigError),
    (20017, ConfigError),
    (20020, ConfigError),
    (20021, ConfigError),
    (20022, ConfigError),
    (20023, ConfigError),
    (15002, ConfigError),  # parameter errors on a read: the mapping is wrong
    (32000, ConfigError),
    (99999, TransientError),  # unknown: bounded retries, then the run fails loudly
]


@pytest.mark.parametrize(("code", "expected"), ROWS)
def test_each_code_maps_to_its_recovery_class(code: int, expected: type[ConnectorError]) -> None:
    exc = classify(code, "message", endpoint="query")
    assert type(exc) is expected
    assert f"errorCode {code}" in str(exc)


@pytest.mark.parametrize("code", [15002, 32000])
def test_parameter_errors_on_a_single_record_write_are_record_errors(code: int) -> None:
    exc = classify(
        code, "字段 field_value_tier__c: no such option", endpoint="update", record_id="C1"
    )
    assert isinstance(exc, RecordError)
    assert (exc.record_id, exc.code, exc.retryable) == ("C1", str(code), False)
    assert "field_value_tier__c" in str(exc)


@pytest.mark.parametrize(("code", "wait"), [(14001, RATE_WINDOW_SECONDS), (30004, 1.0)])
def test_limit_codes_carry_the_wait(code: int, wait: float) -> None:
    exc = classify(code, "limit", endpoint="update")
    assert isinstance(exc, RateLimitedError) and exc.retry_after == wait


def test_codes_never_become_record_errors_without_a_record() -> None:
    for code, _ in ROWS:
        assert not isinstance(classify(code, "m", endpoint="query"), RecordError)


def test_the_message_never_decides_the_class() -> None:
    # FXiaoke: "errorMessage会有变化" - branch on the code only.
    assert type(classify(20016, "success", endpoint="q")) is AuthExpiredError
    assert type(classify(-1, "token expired", endpoint="q")) is TransientError
