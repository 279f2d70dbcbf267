"""Salesforce failures → crmtier error classes, as one lookup table (tested row by row).

Salesforce reports errors as a JSON list ``[{"errorCode", "message"}]`` with an HTTP status;
the status alone misleads: ``REQUEST_LIMIT_EXCEEDED`` is a 403 like a permission problem,
yet it means "the org's API allowance is used up" (wait for the rolling window), or, with a
``ConcurrentRequests`` message, "too many long requests at once" (back off briefly). Rows are
matched top to bottom; the first row whose status, code and message fragment all match wins.
"""

from __future__ import annotations

from connectors.errors import (
    AuthExpiredError,
    ConfigError,
    ConnectorError,
    ErrorRule,
    QuotaExhaustedError,
    RateLimitedError,
    TransientError,
    first_match,
)

RULES: tuple[ErrorRule, ...] = (
    ErrorRule(
        403, "REQUEST_LIMIT_EXCEEDED", RateLimitedError, message_contains="ConcurrentRequests"
    ),
    ErrorRule(403, "REQUEST_LIMIT_EXCEEDED", QuotaExhaustedError),
    ErrorRule(401, "INVALID_SESSION_ID", AuthExpiredError),
    ErrorRule(401, None, AuthExpiredError),
    ErrorRule(403, "API_DISABLED_FOR_ORG", ConfigError),
    ErrorRule(403, "INSUFFICIENT_ACCESS", ConfigError),
    ErrorRule(403, None, ConfigError),
    ErrorRule(400, "invalid_client", ConfigError),
    ErrorRule(400, "invalid_grant", ConfigError),
    ErrorRule(400, "unsupported_grant_type", ConfigError),
    ErrorRule(400, "INVALID_QUERY_LOCATOR", TransientError),
    ErrorRule(400, "INVALID_FIELD", ConfigError),
    ErrorRule(400, "INVALID_TYPE", ConfigError),
    ErrorRule(400, "MALFORMED_QUERY", ConfigError),
    ErrorRule(400, "EXCEEDED_ID_LIMIT", ConfigError),
    ErrorRule(400, None, ConfigError),
    ErrorRule(404, None, ConfigError),
    ErrorRule(410, None, ConfigError),  # a retired API version
    ErrorRule(409, None, TransientError),
    ErrorRule(429, None, RateLimitedError),
    ErrorRule(500, None, TransientError),
    ErrorRule(502, None, TransientError),
    ErrorRule(503, None, TransientError),
    ErrorRule(504, None, TransientError),
)

#: Per-record status codes inside a 200 collection response that may pass on a retry.
RETRYABLE_RECORD_CODES = frozenset(
    {
        "UNABLE_TO_LOCK_ROW",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "PROCESSING_HALTED",
        "REQUEST_RUNNING_TOO_LONG",
        "SERVER_UNAVAILABLE",
        "UNKNOWN_EXCEPTION",
    }
)


def classify(
    status: int, code: str | None, message: str, *, retry_after: float | None = None
) -> ConnectorError:
    """The crmtier error for a failed Salesforce call. The message names the code only;
    Salesforce messages can echo record values, so they are not copied in."""
    text = f"Salesforce HTTP {status} {code or ''}".strip()
    rule = first_match(RULES, status, code, message)
    if rule is not None:
        return rule.build(text, retry_after=retry_after)
    return TransientError(text) if status >= 500 else ConfigError(text)


def record_retryable(code: str | None) -> bool:
    return code in RETRYABLE_RECORD_CODES
