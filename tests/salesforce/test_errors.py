"""The Salesforce error table, row by row: what each vendor failure means for the caller."""

from __future__ import annotations

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connectors.errors import (
    AuthExpiredError,
    ConfigError,
    QuotaExhaustedError,
    RateLimitedError,
    ReadOnlyError,
    TransientError,
)
from connectors.salesforce.client import _classify_sf
from connectors.salesforce.errors import (
    MAINTENANCE,
    classify,
    read_only_refusal,
    record_retryable,
    refusal,
)


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
        (
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "ConcurrentPerOrgLongTxn Limit exceeded.",
            RateLimitedError,
        ),
        (401, "INVALID_SESSION_ID", "Session expired or invalid", AuthExpiredError),
        (400, "INSERT_UPDATE_DELETE_NOT_ALLOWED_DURING_MAINTENANCE", "", ReadOnlyError),
        (503, "INSERT_UPDATE_DELETE_NOT_ALLOWED_DURING_MAINTENANCE", "", ReadOnlyError),
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
        ("INSERT_UPDATE_DELETE_NOT_ALLOWED_DURING_MAINTENANCE", True),
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


@pytest.mark.parametrize(
    ("codes", "pauses"),
    [
        ([MAINTENANCE] * 3, True),  # the org is read-only: every record refused so
        ([MAINTENANCE, "UNABLE_TO_LOCK_ROW"], True),  # nothing saved, the org read-only
        ([MAINTENANCE, None], False),  # one record saved: the rest are per-record failures
        (["UNABLE_TO_LOCK_ROW", "UNABLE_TO_LOCK_ROW"], False),  # not read-only
        ([], False),
    ],
)
def test_a_call_that_saved_nothing_for_read_only_mode_pauses_the_run(codes, pauses):
    refused = read_only_refusal(codes)
    assert isinstance(refused, ReadOnlyError) if pauses else refused is None


@pytest.mark.parametrize(
    ("status", "code", "message", "fields", "text"),
    [
        (
            400,
            "INVALID_FIELD",
            "No such column 'Value_Tier__c' on sobject of type Account",
            [],
            "Salesforce refused field Value_Tier__c on Account: INVALID_FIELD (no such column)"
            " — run crmtier doctor",
        ),
        (
            400,
            "INVALID_FIELD",
            "No such column 'Credit_Scor__c' on entity 'Account'. If you are attempting to use"
            " a custom field, be sure to append the '__c' after the custom field name.",
            [],
            "Salesforce refused field Credit_Scor__c on Account: INVALID_FIELD",
        ),
        (
            400,
            "INVALID_TYPE",
            "sObject type 'Acount' is not supported.",
            [],
            "Salesforce refused Acount: INVALID_TYPE (no such object) — check [mapping] object",
        ),
        (
            400,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of date from VALUE_STRING value Canary-Value-42",
            [],
            "Salesforce refused: JSON_PARSER_ERROR — run crmtier doctor",
        ),
        (403, "INSUFFICIENT_ACCESS", "insufficient access rights", [], "docs/admin-setup.md"),
        (404, None, "", [], "Salesforce refused: HTTP 404 — run crmtier doctor"),
        (
            400,
            "invalid_grant",
            "authentication failure",
            [],
            "Salesforce refused: invalid_grant (authentication failure) — check the connected",
        ),
    ],
)
def test_a_configuration_error_names_code_field_object_and_next_step(
    status, code, message, fields, text
):
    error = classify(status, code, message, fields=fields)
    assert isinstance(error, ConfigError)
    assert text in str(error)
    assert "Canary" not in str(error)


@pytest.mark.parametrize(
    ("code", "message", "fields", "sobject", "text"),
    [
        (
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "Value Tier: bad value for restricted picklist field: Canary-Platinum",
            ["Value_Tier__c"],
            "Account",
            "Salesforce refused field Value_Tier__c on Account: "
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST (value not in the restricted picklist)",
        ),
        (
            "INACTIVE_OWNER_OR_USER",
            "operation performed with inactive user [005000000000101AAA] as owner of task",
            [],
            "Task",
            "Salesforce refused Task: INACTIVE_OWNER_OR_USER (the owner is an inactive user) — "
            "name an active user or a Task queue in [writeback.queues]",
        ),
        # a "field" that is not an API name (a value) is never copied
        ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Canary", ["Canary value!"], "Account", "Account:"),
    ],
)
def test_a_record_error_names_code_field_object_never_a_value(code, message, fields, sobject, text):
    line = refusal(code, message, fields=fields, sobject=sobject)
    assert text in line and "Canary" not in line


@pytest.mark.parametrize("code", ["ExceededQuota", "EXCEEDED_QUOTA"])
def test_a_bulk_job_refused_at_create_on_the_quota_is_quota_exhausted(code):
    """HTTP 400 from create_job: the SDK's error through the client's classification."""
    refused = SalesforceMalformedRequest(
        "jobs/ingest", 400, "jobs", [{"errorCode": code, "message": "jobs per 24 hours"}]
    )
    assert type(_classify_sf(refused)) is QuotaExhaustedError
