"""Salesforce failures → crmtier error classes, as one lookup table (tested row by row).

Salesforce reports errors as a JSON list ``[{"errorCode", "message"}]`` with an HTTP status;
the status alone misleads: ``REQUEST_LIMIT_EXCEEDED`` is a 403 like a permission problem,
yet it means "the org's API allowance is used up" (``TotalRequests``: wait for the rolling
window), or, with a message naming a concurrency limit, "too many long requests at once"
(back off briefly). Two such limits reach an integration: ``ConcurrentRequests (Concurrent
API Requests) Limit exceeded.`` (Salesforce Help, knowledge article
000389067) and ``ConcurrentPerOrgLongTxn Limit exceeded``, concurrent long-running
transactions, which the org's slow triggers or flows on the records written reach
("Salesforce Diagnostics", Marketo Engage documentation, Adobe Experience League, files it
as intermittent; mautic/mautic#5006). Neither is the daily allowance, so neither may stop
the run as one. Rows are matched top to bottom; the first row whose status, code and
message fragment all match wins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from connectors.errors import (
    RUN_DOCTOR,
    Advice,
    AuthExpiredError,
    ConfigError,
    ConnectorError,
    ErrorRule,
    QuotaExhaustedError,
    RateLimitedError,
    ReadOnlyError,
    TransientError,
    first_match,
    refusal_text,
)

#: The code of a write refused because the org is in read-only mode (planned maintenance).
MAINTENANCE = "INSERT_UPDATE_DELETE_NOT_ALLOWED_DURING_MAINTENANCE"

RULES: tuple[ErrorRule, ...] = (
    # the org is in read-only mode for planned maintenance, which ends by itself: "During
    # read-only mode, you can't ... Perform API write or edit actions" (Salesforce Help,
    # "Read-Only Mode", help.salesforce.com/s/articleView?id=xcloud.setup_maintenance_mode_
    # overview.htm); the HTTP status of a whole call refused so is not documented, so the
    # code decides, at any status. It lasts hours: the run pauses, keeping its writes
    ErrorRule(None, MAINTENANCE, ReadOnlyError),
    ErrorRule(
        403, "REQUEST_LIMIT_EXCEEDED", RateLimitedError, message_contains="ConcurrentRequests"
    ),
    ErrorRule(
        403, "REQUEST_LIMIT_EXCEEDED", RateLimitedError, message_contains="ConcurrentPerOrgLongTxn"
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
    # a bulk job refused at create: the org's daily job allowance is used up, as its 403
    # REQUEST_LIMIT_EXCEEDED twin (Bulk API 2.0 "Errors" page; the REST spelling too)
    ErrorRule(400, "ExceededQuota", QuotaExhaustedError),
    ErrorRule(400, "EXCEEDED_QUOTA", QuotaExhaustedError),
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

#: Per-record status codes inside a 200 collection response that may pass on a retry (a
#: record refused during read-only mode passes once the maintenance is over; a call all of
#: whose records are refused so pauses the run instead: ``read_only_refusal``).
RETRYABLE_RECORD_CODES = frozenset(
    {
        "INSERT_UPDATE_DELETE_NOT_ALLOWED_DURING_MAINTENANCE",
        "UNABLE_TO_LOCK_ROW",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "PROCESSING_HALTED",
        "REQUEST_RUNNING_TOO_LONG",
        "SERVER_UNAVAILABLE",
        "UNKNOWN_EXCEPTION",
    }
)


#: What the codes an admin can act on mean, and the next step (codes as Salesforce's REST
#: and SOAP API StatusCode lists name them; the gists are crmtier's words).
ADVICE: dict[str, Advice] = {
    "INVALID_FIELD": Advice("no such column"),
    "INVALID_TYPE": Advice("no such object", f"check [mapping] object; {RUN_DOCTOR}"),
    "INVALID_FIELD_FOR_INSERT_UPDATE": Advice(
        "not writable by the integration user",
        "grant it Edit in the integration user's permission set (crmtier doctor --fix)",
    ),
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": Advice(
        "value not in the restricted picklist",
        f"add crmtier's values to the picklist; {RUN_DOCTOR}",
    ),
    "STRING_TOO_LONG": Advice("text longer than the field", "lengthen the field"),
    "REQUIRED_FIELD_MISSING": Advice(
        "a required field is empty", "make the field optional or give it a default"
    ),
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": Advice(
        "a validation rule of the org refused the record",
        "exempt the integration user from the rule",
    ),
    "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY": Advice(
        "a trigger or flow of the org failed", "check the org's triggers and flows"
    ),
    "FIELD_INTEGRITY_EXCEPTION": Advice("a value breaks a rule of the field"),
    "INVALID_CROSS_REFERENCE_KEY": Advice(
        "refers to a record that does not exist",
        f"check the ids in [writeback.campaigns] and [writeback.queues]; {RUN_DOCTOR}",
    ),
    "INACTIVE_OWNER_OR_USER": Advice(
        "the owner is an inactive user",
        f"name an active user or a Task queue in [writeback.queues]; {RUN_DOCTOR}",
    ),
    "MALFORMED_ID": Advice("not a Salesforce id", f"check the ids in the config; {RUN_DOCTOR}"),
    "DUPLICATE_VALUE": Advice(
        "a unique field already holds this value", "look for duplicates of the External ID"
    ),
    "INSUFFICIENT_ACCESS": Advice(
        "the integration user lacks a permission",
        "compare its permission set with docs/admin-setup.md",
    ),
    "INSUFFICIENT_ACCESS_OR_READONLY": Advice(
        "the integration user may not edit the record",
        "compare its permission set and sharing with docs/admin-setup.md",
    ),
    "API_DISABLED_FOR_ORG": Advice(
        "API access is off", "give the integration user the API Enabled permission"
    ),
    "invalid_client": Advice(
        "client id or secret refused", "check [crm] client_id, client_secret and the app"
    ),
    "invalid_grant": Advice(
        "authentication failure",
        "check the connected app's Run As user (or the JWT user and certificate) and base_url",
    ),
    "unsupported_grant_type": Advice(
        "the connected app does not allow this flow",
        "enable the Client Credentials Flow (or JWT) on the connected app",
    ),
    MAINTENANCE: Advice(
        "the org is read-only for planned maintenance",
        "nothing to change: the run pauses and the next run after it sends the writes "
        "(its window: trust.salesforce.com)",
    ),
    "MALFORMED_QUERY": Advice("query refused"),
    "EXCEEDED_ID_LIMIT": Advice("too many records in one call", "report this crmtier bug"),
    "NOT_FOUND": Advice("no such resource", f"check base_url and api_version; {RUN_DOCTOR}"),
}

#: The API names Salesforce's messages name (query, describe and write errors alike).
_NAMES = (
    re.compile(r"No such column '(?P<field>\w+)' on (?:sobject of type |entity ')(?P<obj>\w+)"),
    re.compile(r"sObject type '(?P<obj>\w+)' is not supported"),
)


def refusal(
    code: str | None,
    message: str = "",
    *,
    fields: Sequence[str] = (),
    sobject: str | None = None,
    status: int | None = None,
) -> str:
    """The admin's line for a Salesforce error: its code, the field (``fields``, or the
    one the message names) and the object, and the next step; never the message itself."""
    names: dict[str, str] = {}
    for pattern in _NAMES:
        found = pattern.search(message)
        if found:
            names = found.groupdict()
            break
    return refusal_text(
        "Salesforce",
        code or (f"HTTP {status}" if status else None),
        field=next(iter(fields), None) or names.get("field"),
        obj=names.get("obj") or sobject,
        advice=ADVICE.get(code or ""),
    )


def classify(
    status: int,
    code: str | None,
    message: str,
    *,
    retry_after: float | None = None,
    fields: Sequence[str] = (),
) -> ConnectorError:
    """The crmtier error for a failed Salesforce call. A configuration error reads as a
    ``refusal`` (code, field, object, next step); others name the status and code. The
    vendor message is never copied in: Salesforce messages can echo record values."""
    text = f"Salesforce HTTP {status} {code or ''}".strip()
    rule = first_match(RULES, status, code, message)
    error = rule.error if rule is not None else (TransientError if status >= 500 else ConfigError)
    if error is ConfigError:
        text = refusal(code, message, fields=fields, status=status)
    if rule is not None:
        return rule.build(text, retry_after=retry_after)
    return error(text)


#: A failed or aborted Bulk API 2.0 job, by the code its ``errorMessage`` starts with
#: (``InvalidBatch : Field name not found : Tier__c``; codes as the "Errors" page of the
#: Bulk API 2.0 Developer Guide names them: developer.salesforce.com/docs/atlas.en-us.
#: api_asynch.meta/api_bulk_v2/asynch_api_reference_errors.htm). A job Salesforce could
#: not run as asked (a column it does not know, a bad request) fails the same way on
#: every retry; anything else (an internal error, a job aborted by someone else) may
#: pass, and its rows are sent again in a new job.
BULK_JOB_RULES: tuple[ErrorRule, ...] = (
    # the org is in read-only mode for planned maintenance, which ends by itself: "During
    # read-only mode, you can't ... Perform API write or edit actions" (Salesforce Help,
    # "Read-Only Mode", help.salesforce.com/s/articleView?id=xcloud.setup_maintenance_mode_
    # overview.htm); the HTTP status of a whole call refused so is not documented, so the
    # code decides, at any status. It lasts hours: the run pauses, keeping its writes
    ErrorRule(None, MAINTENANCE, ReadOnlyError),
    ErrorRule(None, "InvalidBatch", ConfigError),
    ErrorRule(None, "InvalidJob", ConfigError),
    ErrorRule(None, "ClientInputError", ConfigError),
    ErrorRule(None, "FeatureNotEnabled", ConfigError),
    ErrorRule(None, "InvalidOperation", ConfigError),
    ErrorRule(None, "InvalidUrl", ConfigError),
    ErrorRule(None, "InvalidUser", ConfigError),
    ErrorRule(None, "ExceededQuota", QuotaExhaustedError),
    ErrorRule(None, None, TransientError),
)
#: A code as Salesforce prefixes a message with it (``InvalidBatch : ...``,
#: ``STRING_TOO_LONG:...``): a word before a colon, nothing else.
_CODE = re.compile(r"^[A-Za-z_]+(?=\s*:)")
_BULK_FIELD = re.compile(r"Field name not found\s*:\s*(?P<field>[\w.]+)")


def bulk_job_error(state: str, message: str, sobject: str) -> ConnectorError:
    """The crmtier error for a bulk job that ended ``Failed`` or ``Aborted`` with
    ``message`` (its ``errorMessage``). A job's message is about the job (its CSV header,
    its fields), yet only its code and the API name of a field it names are copied, as
    for every other Salesforce error."""
    code = leading_code(message)
    rule = first_match(BULK_JOB_RULES, 0, code, message)
    assert rule is not None  # the last row matches anything
    if rule.error is ConfigError:
        found = _BULK_FIELD.search(message)
        fields = [found["field"]] if found else []
        return ConfigError(refusal(code, message, fields=fields, sobject=sobject))
    return rule.build(f"Salesforce bulk job {state}: {code or 'no error code'}")


def leading_code(message: str) -> str | None:
    """The code ``message`` starts with (``InvalidBatch : ...``), or none: a message
    without one (``Job aborted by <user>``) is the vendor's words, which can name a person
    or echo a value, so none of it is taken as a code and copied into crmtier's errors."""
    found = _CODE.match(message)
    return found[0] if found else None


def record_retryable(code: str | None) -> bool:
    return code in RETRYABLE_RECORD_CODES


def saved_code(saved: Mapping[str, Any]) -> str | None:
    """The code of one record's result in an sObject Collections answer; None if saved."""
    if saved.get("success"):
        return None
    first = (saved.get("errors") or [{}])[0]
    return first.get("statusCode") or first.get("errorCode") or "UNKNOWN"


def read_only_refusal(codes: Sequence[str | None]) -> ReadOnlyError | None:
    """The error of a write call that saved none of its records, refused (one at least)
    because the org is in read-only mode: Salesforce may report that per record, inside a
    200, yet it holds for the whole org for hours, so the call stands for the run's every
    later write. None when a record was saved (``codes``: one per record, None for a saved
    one) or none was refused so: those stay per-record failures."""
    if not codes or None in codes or MAINTENANCE not in codes:
        return None
    return ReadOnlyError(
        f"Salesforce {MAINTENANCE} on {codes.count(MAINTENANCE)} of {len(codes)} records: "
        "the org is read-only for planned maintenance"
    )
