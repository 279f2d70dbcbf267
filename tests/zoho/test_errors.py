"""The Zoho classification table, row by row: every Zoho failure maps to the error class
that says what to do next."""

from __future__ import annotations

import pytest
from zcrmsdk.src.com.zoho.crm.api.exception import SDKException

from connectors.errors import (
    AuthExpiredError,
    ConfigError,
    QuotaExhaustedError,
    RateLimitedError,
    TransientError,
)
from connectors.zoho.client_errors import translate
from connectors.zoho.errors import (
    CALL_RULES,
    SDK_RULES,
    classify_call,
    classify_sdk,
    record_retryable,
)

CALLS = [
    (401, "INVALID_TOKEN", AuthExpiredError),
    (401, "AUTHENTICATION_FAILURE", AuthExpiredError),
    (401, "OAUTH_SCOPE_MISMATCH", ConfigError),
    (403, "NO_PERMISSION", ConfigError),
    (429, "TOO_MANY_REQUESTS", RateLimitedError),
    (429, "LIMIT_REACHED", QuotaExhaustedError),
    (400, "LIMIT_REACHED", QuotaExhaustedError),
    (400, "INVALID_MODULE", ConfigError),
    (404, "INVALID_URL_PATTERN", ConfigError),
    (400, "INVALID_HOST", ConfigError),
    (400, "LIMIT_EXCEEDED", ConfigError),
    (400, "INVALID_DATA", ConfigError),
    (400, "MANDATORY_NOT_FOUND", ConfigError),
    (429, "SOMETHING_NEW", RateLimitedError),
    (500, "INTERNAL_ERROR", TransientError),
    (502, None, TransientError),
    (503, None, TransientError),
    (504, None, TransientError),
    (599, "ODD", TransientError),
    (401, None, AuthExpiredError),
    (403, "ODD", ConfigError),
    (404, None, ConfigError),
    (418, "TEAPOT", ConfigError),
]


@pytest.mark.parametrize(("status", "code", "expected"), CALLS)
def test_call_failures_are_classified(status, code, expected):
    error = classify_call(status, code, "message")
    assert type(error) is expected
    assert str(status) in str(error)


def test_a_host_other_than_the_api_domain_names_base_url():
    """v2.1+ calls (the v5 timeline) on a host other than https://www.zohoapis.<dc> answer
    400 INVALID_HOST (Zoho CRM API v3 "Changelogs", "API Domain")."""
    error = classify_call(400, "INVALID_HOST", "the host given seems to be invalid")
    assert type(error) is ConfigError
    assert "crm.base_url" in str(error) and "www.zohoapis" in str(error)


def test_every_call_rule_has_a_row():
    covered = {(s, c) for s, c, _ in CALLS}
    for rule in CALL_RULES:
        if rule.code is not None:
            assert any(c == rule.code for _, c in covered), rule
        else:
            assert any(s == rule.status for s, _ in covered), rule


def test_rate_limits_carry_no_retry_after_because_zoho_sends_none():
    error = classify_call(429, "TOO_MANY_REQUESTS")
    assert isinstance(error, RateLimitedError) and error.retry_after is None


SDK = [
    ("UNACCEPTED VALUES ERROR", None, ConfigError),
    ("TYPE ERROR", None, ConfigError),
    ("DATA TYPE ERROR", None, ConfigError),
    ("MAXIMUM LENGTH ERROR", None, ConfigError),
    ("MANDATORY VALUE ERROR", None, ConfigError),
    ("MANDATORY VALUE NULL ERROR", None, ConfigError),
    ("INITIALIZATION ERROR", None, ConfigError),
    ("USERSIGNATURE ERROR", None, ConfigError),
    ("TOKEN ERROR", None, ConfigError),
    ("INVALID CLIENT ERROR", "invalid_code", ConfigError),
    ("INVALID CLIENT ERROR", "invalid_client", ConfigError),
    ("INVALID CLIENT ERROR", "Access Denied", RateLimitedError),
    ("Exception in saving tokens", None, TransientError),
    ("SDK UNINITIALIZED ERROR", None, ConfigError),
    ("SOMETHING ELSE", None, TransientError),
    (None, None, TransientError),
]


@pytest.mark.parametrize(("code", "message", "expected"), SDK)
def test_sdk_exceptions_are_classified(code, message, expected):
    assert type(classify_sdk(code, message)) is expected


def test_every_sdk_rule_has_a_row():
    assert {rule.code for rule in SDK_RULES} - {None} <= {code for code, _, _ in SDK}
    assert SDK_RULES[-1].code is None  # anything else: retried, bounded


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        ("RECORD_LOCKED", True),
        ("RECORD_IN_BLUEPRINT", True),
        ("INTERNAL_ERROR", True),
        ("INVALID_DATA", False),
        ("MANDATORY_NOT_FOUND", False),
        ("DUPLICATE_DATA", False),
        ("NO_PERMISSION", False),
    ],
)
def test_record_codes_say_whether_a_retry_can_help(code, retryable):
    assert record_retryable(code) is retryable


#: zcrmsdk meets some Zoho refusals in look-ups of its own (the related lists before a
#: relate or delink, a module's fields) and raises them as ``API_EXCEPTION`` with Zoho's
#: code (or the HTTP status) in ``details`` and no HTTP status of the call.
API_EXCEPTIONS = [
    ("OAUTH_SCOPE_MISMATCH", ConfigError, "scope"),
    ("NO_PERMISSION", ConfigError, "permission"),
    ("INVALID_TOKEN", AuthExpiredError, "expired"),
    ("TOO_MANY_REQUESTS", RateLimitedError, "limit"),
    ("INVALID_MODULE", ConfigError, "module"),
    ("SOMETHING_NEW", TransientError, "SOMETHING_NEW"),
    ("quotes a value: Jane Doe", TransientError, "API_EXCEPTION error"),
    (None, TransientError, "zcrmsdk failed"),
    (401, AuthExpiredError, "401"),
    (500, TransientError, "500"),
]


@pytest.mark.parametrize(("code", "expected", "named"), API_EXCEPTIONS)
def test_a_refusal_met_in_zcrmsdks_own_look_ups_is_classified_by_zohos_code(code, expected, named):
    exc = SDKException("API_EXCEPTION", None, {"code": code, "status": "error", "message": "m"})
    error = translate(exc, "https://accounts.example/oauth/v2/token")
    assert type(error) is expected
    assert named in str(error)
    assert "Jane" not in str(error)
