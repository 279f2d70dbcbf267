"""CRM limits shared by every worker: one limiter per CRM limit, not one per process.

A CRM's limits belong to the org, not to a process. With the embedded SQLite store there is
one process, and each client keeps its limiters in memory as it always did (FXiaoke's
``SlidingWindowLimiter``, Zoho's ``CreditBudget``). With a PostgreSQL store any number of
``sync``/``serve`` processes on any number of hosts call the same org, so a per-process
limiter multiplies the limit by the number of workers. Then the command that opens the
store installs a ``SharedLimits`` backed by it (``sync/shared_limits.py``), and each client
built afterwards takes its slots and credits there. This module is the seam: the protocol,
and the process-wide installation the clients read when they are built. It imports no
database code, so a connector needs nothing but this to share its limits.

Two shapes cover the three CRMs' limits:

* ``slots(name, limit, window)``: at most ``limit`` calls of ``name`` in any ``window``
  seconds, a call's slot counting from when the call *ends* (so in-flight calls are never
  evicted and network delay cannot bunch calls at the server). ``window=0`` is a plain
  concurrency limit: at most ``limit`` calls in flight. FXiaoke: 100 calls per 20 s per
  interface (FXiaoke Open API v2 guide, "接口调用频率限制",
  https://developer.fxiaoke.com/openapi_v2/start/guide/rate.html); Salesforce: 25
  concurrent long-running requests per production org, 5 per Developer Edition org
  ("API Request Limits and Allocations", https://developer.salesforce.com/docs/platform/
  salesforce-app-limits-cheatsheet/guide/salesforce-app-limits-platform-api.html).
* ``quota(name, limit, period)``: at most ``limit`` units per ``period`` seconds, spent
  before the call is sent. Zoho: API credits per 24-hour window ("API Limits",
  https://www.zoho.com/crm/developer/docs/api/v2/api-limits.html).
"""

from __future__ import annotations

import hashlib
import threading
from contextlib import AbstractContextManager
from typing import Protocol


class Slots(Protocol):
    """A pool of call slots (``slot(key)`` holds one for the duration of a call)."""

    def slot(self, key: str) -> AbstractContextManager[None]: ...


class Quota(Protocol):
    """Units of a budget per period: ``take`` spends ``cost`` or answers False, spending
    nothing, when that would go past the limit."""

    def take(self, cost: int) -> bool: ...


class SharedLimits(Protocol):
    """Limits every worker on the store shares (``sync/shared_limits.py``)."""

    def slots(self, name: str, limit: int, window: float) -> Slots: ...

    def quota(self, name: str, limit: int, period: float) -> Quota: ...


_installed: SharedLimits | None = None
_lock = threading.Lock()


def install(limits: SharedLimits | None) -> None:
    """Make ``limits`` the process's shared limits (``None``: back to in-process ones).
    Clients read it when they are built, so install before building the connector."""
    global _installed
    with _lock:
        _installed = limits


def installed() -> SharedLimits | None:
    """The shared limits of this process, or ``None`` (embedded store: in-process ones)."""
    with _lock:
        return _installed


def limit_name(kind: str, what: str, *org: str) -> str:
    """The store's name of one limit of one org: ``<kind>:<what>:<digest>``. The org is
    named by a digest of what identifies it (its URL, app id), so the store holds no
    client id or host in clear."""
    digest = hashlib.sha256("\x1f".join(org).encode("utf-8")).hexdigest()[:20]
    return f"{kind}:{what}:{digest}"


def shared_slots(name: str, limit: int, window: float) -> Slots | None:
    """The installed limits' slots for ``name``, or ``None`` without shared limits."""
    limits = installed()
    return limits.slots(name, limit, window) if limits is not None else None


def shared_quota(name: str, limit: int, period: float) -> Quota | None:
    """The installed limits' quota for ``name``, or ``None`` without shared limits."""
    limits = installed()
    return limits.quota(name, limit, period) if limits is not None else None


__all__ = [
    "Quota",
    "SharedLimits",
    "Slots",
    "install",
    "installed",
    "limit_name",
    "shared_quota",
    "shared_slots",
]
