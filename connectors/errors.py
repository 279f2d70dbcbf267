"""Connector errors, named by what the caller should do next (DESIGN §4).

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
``RecordError``             this one record failed; the rest of the batch stands. Retried a few
                            times, then dead-lettered with its code
==========================  =================================================================

Messages never contain secrets or raw personal data: records are named by CRM id only.
"""

from __future__ import annotations


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


class RecordError(ConnectorError):
    """One record was rejected; carries the CRM record id and the vendor's error code."""

    def __init__(self, record_id: str, code: str, message: str, *, retryable: bool = False):
        super().__init__(f"record {record_id}: {code}: {message}")
        self.record_id = record_id
        self.code = code
        self.retryable = retryable
