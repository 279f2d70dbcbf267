"""Zoho CRM failures → crmtier error classes: one lookup table, tested row by row.

Zoho signals failures three ways (crm_apis.md §2.6, §4.2): an HTTP status with a JSON
``code`` for the whole call (401 ``INVALID_TOKEN``, 429 ``TOO_MANY_REQUESTS``), a per-record
``code`` inside a 200/202/400 write answer (``INVALID_DATA``, ``RECORD_LOCKED``), and, from
zcrmsdk itself, an ``SDKException`` raised before or around the HTTP call (a refused refresh
token, a client-side picklist check, a connection error). Each is classified here by what
the caller should do next; nothing else in the connector looks at Zoho codes.
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
    code: str  # Zoho code ("*" = any code with this status)
    status: int | None  # HTTP status (None = any)
    error: type[ConnectorError]
    hint: str


#: Call-level rules, first match wins. Statuses from the v2 status-code table.
CALL_RULES: tuple[Rule, ...] = (
    Rule("INVALID_TOKEN", 401, AuthExpiredError, "access token expired or revoked"),
    Rule("AUTHENTICATION_FAILURE", 401, AuthExpiredError, "access token not accepted"),
    Rule(
        "OAUTH_SCOPE_MISMATCH",
        401,
        ConfigError,
        "the refresh token lacks a scope: grant ZohoCRM.modules, settings and notifications",
    ),
    Rule("NO_PERMISSION", 403, ConfigError, "the integration user lacks permission"),
    Rule("TOO_MANY_REQUESTS", 429, RateLimitedError, "concurrency or rate limit hit"),
    Rule("LIMIT_REACHED", None, QuotaExhaustedError, "the org's daily API credits are used up"),
    Rule("INVALID_MODULE", 400, ConfigError, "the configured module does not exist"),
    Rule("INVALID_URL_PATTERN", 404, ConfigError, "wrong base_url or API path"),
    Rule("LIMIT_EXCEEDED", 400, ConfigError, "a request exceeded a Zoho size limit"),
    Rule("INVALID_DATA", 400, ConfigError, "Zoho refused the request's parameters"),
    Rule("MANDATORY_NOT_FOUND", 400, ConfigError, "a required request parameter is missing"),
    Rule("*", 429, RateLimitedError, "throttled"),
    Rule("*", 500, TransientError, "Zoho internal error"),
    Rule("*", 502, TransientError, "bad gateway"),
    Rule("*", 503, TransientError, "service unavailable"),
    Rule("*", 504, TransientError, "gateway timeout"),
    Rule("*", 401, AuthExpiredError, "not authenticated"),
    Rule("*", 403, ConfigError, "forbidden"),
    Rule("*", 404, ConfigError, "not found"),
)

#: Per-record codes a later attempt may fix (others need a human: dead-letter them).
RETRYABLE_RECORD_CODES = frozenset({"RECORD_LOCKED", "RECORD_IN_BLUEPRINT", "INTERNAL_ERROR"})

#: zcrmsdk ``SDKException`` codes raised before any HTTP exchange or around it.
SDK_RULES: dict[str, tuple[type[ConnectorError], str]] = {
    "UNACCEPTED VALUES ERROR": (ConfigError, "a picklist value is not in the field's list"),
    "TYPE ERROR": (ConfigError, "a value has the wrong type for its Zoho field"),
    "DATA TYPE ERROR": (ConfigError, "a value has the wrong type for its Zoho field"),
    "MAXIMUM LENGTH ERROR": (ConfigError, "a value is longer than its Zoho field allows"),
    "MANDATORY VALUE ERROR": (ConfigError, "a required field is missing"),
    "MANDATORY VALUE NULL ERROR": (ConfigError, "a required field is null"),
    "INITIALIZATION ERROR": (ConfigError, "zcrmsdk could not be initialised"),
    "USERSIGNATURE ERROR": (ConfigError, "crm.user_email is not a valid e-mail address"),
    "TOKEN ERROR": (ConfigError, "client id, secret or refresh token malformed"),
    "INVALID CLIENT ERROR": (ConfigError, "Zoho Accounts refused the client or refresh token"),
    "Exception in saving tokens": (TransientError, "token refresh failed"),
    "SDK UNINITIALIZED ERROR": (ConfigError, "zcrmsdk used outside its tenant binding"),
}

#: Accounts answers that are throttling, not bad credentials.
ACCOUNTS_THROTTLED = frozenset({"Access Denied"})


def classify_call(status: int, code: str | None, message: str = "") -> ConnectorError:
    """The error for a failed call (HTTP status + Zoho code)."""
    code = code or ""
    for rule in CALL_RULES:
        if rule.code in (code, "*") and rule.status in (status, None):
            text = f"Zoho {status} {code or 'error'}: {rule.hint}"
            if rule.error is RateLimitedError:
                return RateLimitedError(text, retry_after=None)  # Zoho sends no Retry-After
            return rule.error(text)
    if 500 <= status < 600:
        return TransientError(f"Zoho {status} {code}: server error")
    return ConfigError(f"Zoho {status} {code}: unexpected answer ({message[:120]})")


def classify_sdk(code: str | None, message: str | None) -> ConnectorError:
    """The error for an ``SDKException`` that carries no connector error as its cause."""
    code = (code or "").strip()
    if code == "INVALID CLIENT ERROR" and (message or "") in ACCOUNTS_THROTTLED:
        return RateLimitedError("Zoho Accounts: too many token requests", retry_after=None)
    error, hint = SDK_RULES.get(code, (TransientError, "zcrmsdk failed"))
    return error(f"zcrmsdk {code or 'error'}: {hint}")


def record_retryable(code: str) -> bool:
    return code in RETRYABLE_RECORD_CODES
