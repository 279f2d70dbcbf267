"""The Salesforce error table, row by row: what each vendor failure means for the caller."""

from __future__ import annotations

import pytest

from connectors.errors import (
    AuthExpiredError,
    ConfigError,
    QuotaExhaustedError,
    RateLimitedError,
    TransientError,
)
from connectors.salesforce.errors import classify, record_retryable


@pytest.mark.parametrize(
    ("status", "code", "message", "expected"),
    [
        (403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", QuotaExhaustedError),
        (
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
            RateLimitedError,
        ),
        (401, "INVALID_SESSION_ID", "Session expired or invalid", AuthExpiredError),
        (401, None, "", AuthExpiredError),
        (403, "API_DISABLED_FOR_ORG", "API is not enabled", ConfigError),
        (403, "INSUFFICIENT_ACCESS", "insufficient access rights", ConfigError),
        (400, "invalid_client", "invalid client credentials", ConfigError),
        (400, "invalid_grant", "authentication failure", ConfigError),
        (400, "unsupported_grant_type", "grant type not supported", ConfigError),
        (400, "INVALID_FIELD", "No such column", ConfigError),
        (400, "MALFORMED_QUERY", "unexpected token", ConfigError),
        (400, "INVALID_QUERY_LOCATOR", "invalid query locator", TransientError),
        (400, "EXCEEDED_ID_LIMIT", "record limit reached", ConfigError),
        (404, "NOT_FOUND", "The requested resource does not exist", ConfigError),
        (410, None, "API version retired", ConfigError),
        (409, None, "conflict", TransientError),
        (429, None, "", RateLimitedError),
        (500, "UNKNOWN_EXCEPTION", "", TransientError),
        (502, None, "", TransientError),
        (503, "SERVER_UNAVAILABLE", "", TransientError),
        (504, None, "", TransientError),
        (520, None, "", TransientError),
    ],
)
def test_classification(status, code, message, expected):
    error = classify(status, code, message)
    assert type(error) is expected


def test_rate_limit_carries_retry_after():
    error = classify(429, None, "", retry_after=7.0)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 7.0


def test_error_text_does_not_copy_the_vendor_message():
    """Salesforce messages can echo record values; only status and code are kept."""
    error = classify(400, "INVALID_FIELD", "bad value Canary-Name-0000001")
    assert "Canary" not in str(error)
    assert "INVALID_FIELD" in str(error)


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        ("UNABLE_TO_LOCK_ROW", True),
        ("ALL_OR_NONE_OPERATION_ROLLED_BACK", True),
        ("PROCESSING_HALTED", True),
        ("SERVER_UNAVAILABLE", True),
        ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", False),
        ("ENTITY_IS_DELETED", False),
        ("MALFORMED_ID", False),
        ("FIELD_CUSTOM_VALIDATION_EXCEPTION", False),
        ("DUPLICATE_VALUE", False),
        (None, False),
    ],
)
def test_record_codes(code, retryable):
    assert record_retryable(code) is retryable
