"""The shared row type of every CRM's error table: first match wins, None matches anything."""

from __future__ import annotations

import pytest

from connectors.errors import (
    ConfigError,
    ErrorRule,
    QuotaExhaustedError,
    RateLimitedError,
    TransientError,
    first_match,
)

RULES = (
    ErrorRule(403, "LIMIT", RateLimitedError, message_contains="Concurrent"),
    ErrorRule(403, "LIMIT", QuotaExhaustedError),
    ErrorRule(403, None, ConfigError),
    ErrorRule(None, "BUSY", TransientError),
)


@pytest.mark.parametrize(
    ("status", "code", "message", "expected"),
    [
        (403, "LIMIT", "ConcurrentRequests", RateLimitedError),
        (403, "LIMIT", "TotalRequests", QuotaExhaustedError),
        (403, "OTHER", "", ConfigError),
        (403, None, "", ConfigError),
        (500, "BUSY", "", TransientError),
        (200, "BUSY", "", TransientError),
        (500, None, "", None),
    ],
)
def test_first_matching_row_wins(
    status: int, code: str | None, message: str, expected: type | None
) -> None:
    rule = first_match(RULES, status, code, message)
    assert (rule.error if rule else None) is expected


def test_build_passes_retry_after_only_to_rate_limits() -> None:
    limited = ErrorRule(429, None, RateLimitedError).build("slow down", retry_after=3.0)
    assert isinstance(limited, RateLimitedError) and limited.retry_after == 3.0
    config = ErrorRule(400, None, ConfigError).build("bad", retry_after=3.0)
    assert type(config) is ConfigError and str(config) == "bad"
