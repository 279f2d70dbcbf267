"""Zoho CRM failures → crmtier error classes: one lookup table, tested row by row.

Zoho signals failures three ways (Zoho CRM v2 "Status Codes"; zcrmsdk 3.1.0): an HTTP status with
a JSON ``code`` for the whole call (401 ``INVALID_TOKEN``, 429 ``TOO_MANY_REQUESTS``), a per-record
``code`` inside a 200/202/400 write answer (``INVALID_DATA``, ``RECORD_LOCKED``), and, from
zcrmsdk itself, an ``SDKException`` raised before or around the HTTP call (a refused refresh
token, a client-side picklist check, a connection error). Each is classified here by what
the caller should do next; nothing else in the connector looks at Zoho codes.
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
    TransientError,
    first_match,
)

#: Call-level rules, first match wins. Statuses from the v2 status-code table.
CALL_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(401, "INVALID_TOKEN", AuthExpiredError, "access token expired or revoked"),
    ErrorRule(401, "AUTHENTICATION_FAILURE", AuthExpiredError, "access token not accepted"),
    ErrorRule(
        401,
        "OAUTH_SCOPE_MISMATCH",
        ConfigError,
        "the refresh token lacks a scope this call needs (the list: docs/admin-setup.md)",
    ),
    ErrorRule(403, "NO_PERMISSION", ConfigError, "the integration user lacks permission"),
    ErrorRule(429, "TOO_MANY_REQUESTS", RateLimitedError, "concurrency or rate limit hit"),
    ErrorRule(None, "LIMIT_REACHED", QuotaExhaustedError, "the org's daily API credits are spent"),
    ErrorRule(400, "INVALID_MODULE", ConfigError, "the configured module does not exist"),
    ErrorRule(404, "INVALID_URL_PATTERN", ConfigError, "wrong base_url or API path"),
    # From API v2.1 on (the override audit's v5 timeline) Zoho serves only its API domain
    # and refuses any other host with 400 INVALID_HOST (Zoho CRM API v3 "Changelogs", "API
    # Domain"): crm.zoho.com, a UI host, fails there.
    ErrorRule(
        400,
        "INVALID_HOST",
        ConfigError,
        "crm.base_url must be the data centre's API domain, https://www.zohoapis.<dc> "
        "(e.g. https://www.zohoapis.com.cn), not a web host",
    ),
    ErrorRule(400, "LIMIT_EXCEEDED", ConfigError, "a request exceeded a Zoho size limit"),
    ErrorRule(400, "INVALID_DATA", ConfigError, "Zoho refused the request's parameters"),
    ErrorRule(400, "MANDATORY_NOT_FOUND", ConfigError, "a required request parameter is missing"),
    ErrorRule(429, None, RateLimitedError, "throttled"),
    ErrorRule(500, None, TransientError, "Zoho internal error"),
    ErrorRule(502, None, TransientError, "bad gateway"),
    ErrorRule(503, None, TransientError, "service unavailable"),
    ErrorRule(504, None, TransientError, "gateway timeout"),
    ErrorRule(401, None, AuthExpiredError, "not authenticated"),
    ErrorRule(403, None, ConfigError, "forbidden"),
    ErrorRule(404, None, ConfigError, "not found"),
)

#: Per-record codes a later attempt may fix (others need a human: dead-letter them).
RETRYABLE_RECORD_CODES = frozenset({"RECORD_LOCKED", "RECORD_IN_BLUEPRINT", "INTERNAL_ERROR"})

#: zcrmsdk ``SDKException`` codes raised before any HTTP exchange or around it, first match
#: wins. ``INVALID CLIENT ERROR`` carries Zoho Accounts' OAuth ``error``: its "Access Denied"
#: is throttling, not bad credentials.
SDK_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(
        None,
        "INVALID CLIENT ERROR",
        RateLimitedError,
        "too many token requests",
        message_contains="Access Denied",
    ),
    ErrorRule(
        None,
        "INVALID CLIENT ERROR",
        ConfigError,
        "it knows no such client or refresh token there: check crm.client_id, client_secret "
        "and refresh_token, and that crm.accounts_url is the data centre where the self "
        "client was made",
    ),
    ErrorRule(
        None, "UNACCEPTED VALUES ERROR", ConfigError, "a picklist value is not in the field's list"
    ),
    ErrorRule(None, "TYPE ERROR", ConfigError, "a value has the wrong type for its Zoho field"),
    ErrorRule(
        None, "DATA TYPE ERROR", ConfigError, "a value has the wrong type for its Zoho field"
    ),
    ErrorRule(
        None, "MAXIMUM LENGTH ERROR", ConfigError, "a value is longer than its Zoho field allows"
    ),
    ErrorRule(None, "MANDATORY VALUE ERROR", ConfigError, "a required field is missing"),
    ErrorRule(None, "MANDATORY VALUE NULL ERROR", ConfigError, "a required field is null"),
    ErrorRule(None, "INITIALIZATION ERROR", ConfigError, "zcrmsdk could not be initialised"),
    ErrorRule(
        None, "USERSIGNATURE ERROR", ConfigError, "crm.user_email is not a valid e-mail address"
    ),
    ErrorRule(None, "TOKEN ERROR", ConfigError, "client id, secret or refresh token malformed"),
    ErrorRule(None, "Exception in saving tokens", TransientError, "token refresh failed"),
    ErrorRule(
        None, "SDK UNINITIALIZED ERROR", ConfigError, "zcrmsdk used outside its tenant binding"
    ),
    ErrorRule(None, None, TransientError, "zcrmsdk failed"),
)

#: An OAuth ``error`` code as Zoho Accounts names it (``invalid_client``, ``invalid_code``;
#: RFC 6749 section 5.2): the only text of its answer copied into crmtier's message.
_OAUTH_ERROR = re.compile(r"[a-z_]{1,40}")


def classify_call(status: int, code: str | None, message: str = "") -> ConnectorError:
    """The error for a failed call (HTTP status + Zoho code)."""
    rule = first_match(CALL_RULES, status, code or None, message)
    if rule is not None:
        # Zoho sends no Retry-After: rate limits carry none.
        return rule.build(f"Zoho {status} {code or 'error'}: {rule.hint}")
    if 500 <= status < 600:
        return TransientError(f"Zoho {status} {code}: server error")
    # Zoho's message can quote a record's values: only the status and code are kept.
    return ConfigError(f"Zoho {status} {code or 'error'}: unexpected answer — {RUN_DOCTOR}")


def classify_sdk(code: str | None, message: str | None, accounts_url: str = "") -> ConnectorError:
    """The error for an ``SDKException`` that carries no connector error as its cause.
    Zoho Accounts' refusals name the endpoint that refused (``accounts_url``) and its OAuth
    ``error`` (``invalid_client``, ``invalid_code``), never a secret, and no other text."""
    code = (code or "").strip()
    rule = first_match(SDK_RULES, 0, code, message or "") or SDK_RULES[-1]
    if code != "INVALID CLIENT ERROR":
        return rule.build(f"zcrmsdk {code or 'error'}: {rule.hint}")
    if rule.error is RateLimitedError:  # Zoho sends no Retry-After
        return rule.build(f"Zoho Accounts: {rule.hint}")
    answer = message if message and _OAUTH_ERROR.fullmatch(message) else "with an error"
    return rule.build(
        f"Zoho Accounts at {accounts_url or 'crm.accounts_url'} answered {answer}: {rule.hint}"
    )


#: zcrmsdk's code for a Zoho refusal it meets in a look-up of its own (the Contacts related
#: lists before a relate or delink, a module's fields): ``SDKException("API_EXCEPTION")``
#: whose ``details`` hold Zoho's ``code`` (a Zoho error code, or the HTTP status where the
#: answer had none) but no HTTP status (zcrmsdk 3.1.0, ``Utility.get_related_list_details``
#: and ``Utility.get_fields_details``).
API_EXCEPTION = "API_EXCEPTION"
_ZOHO_CODE = re.compile(r"[A-Z][A-Z_]{0,59}")


def classify_api_exception(code: object) -> ConnectorError:
    """The error for zcrmsdk's ``API_EXCEPTION``, by the Zoho code it carries: the call rule
    naming that code (each code has one row, whatever its status), so a refused scope is
    the ``ConfigError`` naming the scope list and not a transient failure retried on every
    run; an HTTP status is classified as a call's; anything else stays transient."""
    if isinstance(code, int) and not isinstance(code, bool):
        return classify_call(code, None)
    known = isinstance(code, str) and _ZOHO_CODE.fullmatch(code) is not None
    rule = next((r for r in CALL_RULES if known and r.code == code), None)
    if rule is None:
        shown = code if known else "error"
        return TransientError(f"zcrmsdk {API_EXCEPTION} {shown}: zcrmsdk failed")
    return rule.build(f"Zoho {code}: {rule.hint}")


def record_retryable(code: str) -> bool:
    return code in RETRYABLE_RECORD_CODES


#: Per-record codes of a write answer (Zoho CRM API v2, "Update Specific Record" and
#: "Upsert Records": each row's ``code`` and ``details.api_name``), in a few words with the
#: admin's next step. Zoho's own ``message`` is never shown: it can quote the value.
RECORD_ADVICE: dict[str, Advice] = {
    "INVALID_DATA": Advice("a value does not fit the field's type or picklist"),
    "MANDATORY_NOT_FOUND": Advice(
        "a required field is empty", "make the field optional for the integration user's layout"
    ),
    "DUPLICATE_DATA": Advice(
        "a unique field already holds this value elsewhere", "check the field's unique setting"
    ),
    "RECORD_LOCKED": Advice("the record is locked for approval or review", "retried later"),
    "RECORD_IN_BLUEPRINT": Advice("the record is in a Blueprint transition", "retried later"),
    "INTERNAL_ERROR": Advice("Zoho internal error", "retried later"),
    "LIMIT_EXCEEDED": Advice("a value is longer than the field allows"),
    "NO_PERMISSION": Advice(
        "the integration user may not edit this record or field",
        f"grant the profile edit rights; {RUN_DOCTOR}",
    ),
}
