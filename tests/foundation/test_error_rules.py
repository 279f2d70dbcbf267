"""The shared row type of every CRM's error table: first match wins, None matches anything;
and every CRM folder classifies through it."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import connectors
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


CRM_FOLDERS = ("salesforce", "zoho", "fxiaoke")
#: The file set every CRM folder has, each file owning one job (issue 19, item 3).
FILE_SET = ("config", "client", "errors", "mapping", "connector", "writes", "checks", "webhook")


@pytest.mark.parametrize("crm", CRM_FOLDERS)
def test_every_crm_folder_has_the_same_file_set(crm: str) -> None:
    folder = Path(connectors.__file__).parent / crm
    assert {f"{name}.py" for name in FILE_SET} <= {p.name for p in folder.glob("*.py")}


@pytest.mark.parametrize("crm", CRM_FOLDERS)
def test_every_crm_classifies_through_rule_tables(crm: str) -> None:
    """Each CRM's errors module keeps its tables as ``ErrorRule`` rows, and has no class
    of its own standing in for the shared error classes."""
    module = importlib.import_module(f"connectors.{crm}.errors")
    tables = [
        value
        for value in vars(module).values()
        if isinstance(value, tuple) and value and all(isinstance(r, ErrorRule) for r in value)
    ]
    assert tables
    own_classes = [
        name
        for name, value in vars(module).items()
        if isinstance(value, type) and value.__module__ == module.__name__
    ]
    assert own_classes == []
