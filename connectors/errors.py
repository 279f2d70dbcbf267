"""Connector errors, named by what the caller should do next (docs/architecture.md).

Every vendor failure is translated into exactly one of these by a per-CRM classification
table (``connectors/<crm>/errors.py``-style lookup rows, tested row by row), so the sync layer
never inspects vendor codes:

==========================  =================================================================
``ConfigError``             fatal: stop and tell the admin what to fix; retrying cannot help
``AuthExpiredError``        refresh the token once, then repeat the call
``RateLimitedError``        back off (honouring ``retry_after``); if it persists, pause the run
``QuotaExhaustedError``     our configured share of the API allowance is used: checkpoint and
                            pause the run (status ``paused_quota``), resume in a later window
``TransientError``          retry with full-jitter backoff, bounded
``ReadOnlyError``           the CRM refuses every write for now (planned maintenance): stop
                            writing, keep the writes, pause the run (``paused_quota``)
``RecordError``             this one record failed; the rest of the batch stands. Retried a few
                            times, then dead-lettered with its code
==========================  =================================================================

Messages never contain secrets or raw personal data: records are named by CRM id only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class ConnectorError(Exception):
    """Base of all connector errors."""


class ConfigError(ConnectorError):
    """The configuration or the CRM org setup is wrong; a human must fix it."""


class AuthExpiredError(ConnectorError):
    """The access token expired or was revoked; refresh once and retry."""


class RateLimitedError(ConnectorError):
    """The CRM throttled us. ``retry_after`` is in seconds when the CRM said so."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExhaustedError(RateLimitedError):
    """The configured share of the CRM's API allowance is used up (or the CRM's own daily
    limit is hit); the run must checkpoint and pause, not spin."""


class TransientError(ConnectorError):
    """A failure that may pass: 5xx, timeouts, dropped connections, row locks."""


class ReadOnlyError(ConnectorError):
    """The CRM refuses every write for now, reads going on: an org in read-only mode for
    planned maintenance, which lasts hours and ends by itself. Nothing is wrong with the
    records, and a retry within the run cannot pass: not retried (each retry would only
    spend API calls), the run stops writing and pauses (status ``paused_quota``) with its
    writes kept for the next run, never dead-lettered."""


#: The error code of a write whose call failed as a whole with a ``TransientError`` (a
#: timeout, a 5xx, a lost answer): unlike a record's own refusal, the CRM may have applied it.
UNANSWERED = "TRANSIENT"


class RecordError(ConnectorError):
    """One record was rejected; carries the CRM record id and the vendor's error code."""

    def __init__(self, record_id: str, code: str, message: str, *, retryable: bool = False):
        super().__init__(f"record {record_id}: {code}: {message}")
        self.record_id = record_id
        self.code = code
        self.retryable = retryable


@dataclass(frozen=True)
class ErrorRule:
    """One row of a CRM's classification table (``connectors/<crm>/errors.py``).

    Rows are matched top to bottom and the first match wins, so specific rows (a code, a
    message fragment) go above the catch-all rows for a status. ``None`` matches anything.
    """

    status: int | None
    code: str | None
    error: type[ConnectorError]
    hint: str = ""
    message_contains: str | None = None

    def matches(self, status: int, code: str | None, message: str = "") -> bool:
        return (
            (self.status is None or self.status == status)
            and (self.code is None or self.code == code)
            and (self.message_contains is None or self.message_contains in message)
        )

    def build(self, text: str, *, retry_after: float | None = None) -> ConnectorError:
        """The error this row names, with ``retry_after`` where the class carries one."""
        if issubclass(self.error, RateLimitedError):
            return self.error(text, retry_after=retry_after)
        return self.error(text)


def first_match(
    rules: tuple[ErrorRule, ...], status: int, code: str | None, message: str = ""
) -> ErrorRule | None:
    return next((rule for rule in rules if rule.matches(status, code, message)), None)


#: The next step when a code has no better one: doctor checks the whole CRM set-up.
RUN_DOCTOR = "run crmtier doctor"
#: An API name (``Value_Tier__c``, ``Account``, ``ns__Obj__c``), optionally ``Object.Field``:
#: the only text of a CRM error copied into crmtier's own message.
_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)?")


@dataclass(frozen=True)
class Advice:
    """What a CRM error code means, in a few words, and what the admin does next. Each
    connector keeps a table of these by its CRM's own codes."""

    gist: str
    next_step: str = RUN_DOCTOR


def refusal_text(
    crm: str,
    code: str | None,
    *,
    field: str | None = None,
    obj: str | None = None,
    advice: Advice | None = None,
) -> str:
    """One line for an admin: ``Salesforce refused field Value_Tier__c on Account:
    INVALID_FIELD (no such column) — run crmtier doctor``. Made of the CRM's code, the API
    names of the field and object, and the advice only: a CRM's own message can quote the
    record's values, so it is never copied, and a name that does not look like an API name
    is left out."""
    field = field if field and _API_NAME.fullmatch(field) else None
    obj = obj if obj and _API_NAME.fullmatch(obj) else None
    if field and obj:
        target = f" field {field} on {obj}"
    elif field or obj:
        target = f" field {field}" if field else f" {obj}"
    else:
        target = ""
    gist = f" ({advice.gist})" if advice is not None and advice.gist else ""
    step = advice.next_step if advice is not None else RUN_DOCTOR
    return f"{crm} refused{target}: {code or 'an error without a code'}{gist} — {step}"
