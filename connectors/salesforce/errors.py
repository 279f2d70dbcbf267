"""Salesforce failures → crmtier error classes, as one lookup table (tested row by row).

Salesforce reports errors as a JSON list ``[{"errorCode", "message"}]`` with an HTTP status;
the status alone misleads: ``REQUEST_LIMIT_EXCEEDED`` is a 403 like a permission problem,
yet it means "the org's API allowance is used up" (wait for the rolling window), or, with a
``ConcurrentRequests`` message, "too many long requests at once" (back off briefly). Rows are
matched top to bottom; the first row whose status, code and message fragment all match wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.errors import (
    AuthExpiredError,
    ConfigError,
    ConnectorError,
    QuotaExhaustedError,
    RateLimitedError,
    TransientError,
)


@dataclass(frozen=True)
class Rule:
    status: int | None  # None: any status
    code: str | None  # Salesforce errorCode (or OAuth "error"); None: any
    error: type[ConnectorError]
    message_contains: str | None = None

    def matches(self, status: int, code: str | None, message: str) -> bool:
        return (
            (self.status is None or self.status == status)
            and (self.code is None or self.code == code)
            and (self.message_contains is None or self.message_contains in message)
        )


RULES: tuple[Rule, ...] = (
    Rule(403, "REQUEST_LIMIT_EXCEEDED", RateLimitedError, "ConcurrentRequests"),
    Rule(403, "REQUEST_LIMIT_EXCEEDED", QuotaExhaustedError),
    Rule(401, "INVALID_SESSION_ID", AuthExpiredError),
    Rule(401, None, AuthExpiredError),
    Rule(403, "API_DISABLED_FOR_ORG", ConfigError),
    Rule(403, "INSUFFICIENT_ACCESS", ConfigError),
    Rule(403, None, ConfigError),
    Rule(400, "invalid_client", ConfigError),
    Rule(400, "invalid_grant", ConfigError),
    Rule(400, "unsupported_grant_type", ConfigError),
    Rule(400, "INVALID_QUERY_LOCATOR", TransientError),
    Rule(400, "INVALID_FIELD", ConfigError),
    Rule(400, "INVALID_TYPE", ConfigError),
    Rule(400, "MALFORMED_QUERY", ConfigError),
    Rule(400, "EXCEEDED_ID_LIMIT", ConfigError),
    Rule(400, None, ConfigError),
    Rule(404, None, ConfigError),
    Rule(410, None, ConfigError),  # a retired API version
    Rule(409, None, TransientError),
    Rule(429, None, RateLimitedError),
    Rule(500, None, TransientError),
    Rule(502, None, TransientError),
    Rule(503, None, TransientError),
    Rule(504, None, TransientError),
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
    for rule in RULES:
        if rule.matches(status, code, message):
            if issubclass(rule.error, RateLimitedError):
                return rule.error(text, retry_after=retry_after)
            return rule.error(text)
    return TransientError(text) if status >= 500 else ConfigError(text)


def record_retryable(code: str | None) -> bool:
    return code in RETRYABLE_RECORD_CODES
