"""The sections of ``crmtier.toml`` that crmtier itself validates: ``[policy]``, ``[state]``,
``[sync]``, ``[coverage]``, ``[workers]`` and ``[privacy]``, with their defaults and ranges.

Apart from ``crmtier/config.py``, which reads the file, refuses literal secrets and checks
the file as a whole: each section here is only its keys, and README.md and
docs/admin-setup.md describe them.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.http import MAX_CONCURRENT_APPLIES
from connectors.secrets import SecretRef

_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> timedelta:
    """``30s``, ``15m``, ``1h``, ``1d`` -> timedelta."""
    match = _INTERVAL.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not an interval like 30s, 15m, 1h or 1d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicySection(_Section):
    file: str = ""  # empty: the built-in default policy


class StateSection(_Section):
    url: str = "sqlite:///crmtier.db"  # or postgresql+psycopg://..., or an env:/file: ref
    #: encrypts the customer-data columns (docs/targets.md S4); absent: stored as they are
    encryption_key: SecretRef | None = None
    #: the previous key while changing keys: the next open re-encrypts under the new one
    old_encryption_key: SecretRef | None = None
    #: signs the audit chain (HMAC-SHA256); absent: a key the store generates and keeps
    audit_key: SecretRef | None = None
    #: earlier audit keys, so rows they signed stay verifiable after a rotation
    old_audit_keys: tuple[SecretRef, ...] = ()


class SyncSection(_Section):
    every: str = "15m"
    overlap_seconds: float = Field(default=5.0, ge=0, le=3600)
    tie_set_max: int = Field(default=1000, ge=0, le=1_000_000)
    record_retry_attempts: int = Field(default=5, ge=1, le=20)
    record_retry_base_seconds: float = Field(default=0.5, ge=0, le=60)
    write_concurrency: int = Field(default=4, ge=1, le=MAX_CONCURRENT_APPLIES)
    lock_ttl_seconds: float = Field(default=60, ge=10)

    def interval(self) -> timedelta:
        return parse_interval(self.every)


class CoverageSection(_Section):
    """Advisor coverage (docs/policy.md): where the RM roster comes from, and how
    ``crmtier coverage --write`` carries out proposals: ``task`` (default) a task to the
    managers' queue naming the RM; ``owner`` (the bank opts in) the proposed RM made the
    customer's owner in the CRM."""

    assign: Literal["task", "owner"] = "task"
    #: the CRM user field holding each RM's capacity (Salesforce ``RM_Capacity__c``, Zoho
    #: ``RM_Capacity``); users with a value there are the roster. Empty: roster file only.
    capacity_field: str = ""


class WorkersSection(_Section):
    """Who processes webhook work (docs/operations.md): ``inline``, the worker thread of
    ``crmtier serve`` (the embedded default); or ``procrastinate``, jobs in the
    PostgreSQL state store taken by any number of ``crmtier worker`` processes."""

    engine: Literal["inline", "procrastinate"] = "inline"
    concurrency: int = Field(default=1, ge=1, le=32)
    #: the visibility timeout: a job whose worker is silent this long runs elsewhere
    stalled_after_seconds: int = Field(default=30, ge=3, le=3600)
    #: a failed job's n-th retry waits retry_base_seconds ** n seconds
    retry_base_seconds: int = Field(default=2, ge=2, le=60)
    sweep_every_seconds: int = Field(default=30, ge=1, le=3600)
    #: ``crmtier sync --full`` spread over the workers a page a job (``sync.retier``), which
    #: ends exactly where one process does (docs/operations.md, "A full re-tier spread over
    #: workers"). Unset: on with ``procrastinate`` (the workers are there to take the
    #: pages), off with ``inline``; ``false`` keeps full syncs in one process.
    spread_full_sync: bool = False

    @model_validator(mode="before")
    @classmethod
    def _spread_by_default_with_workers(cls, data: Any) -> Any:
        if isinstance(data, dict) and "spread_full_sync" not in data:
            data = {**data, "spread_full_sync": data.get("engine") == "procrastinate"}
        return data

    @model_validator(mode="after")
    def _spread_needs_workers(self) -> WorkersSection:
        if self.spread_full_sync and self.engine != "procrastinate":
            raise ValueError('spread_full_sync = true needs engine = "procrastinate"')
        return self


class PrivacySection(_Section):
    pseudonym_key: SecretRef | None = None  # absent: the state store generates and keeps one
