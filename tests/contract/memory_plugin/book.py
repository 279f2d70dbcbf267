"""The in-memory CRM itself: one "book" of customer records, tasks and campaign members.

A sandbox opens a book under a name; a connector built from ``[crm] book = NAME`` finds it
in ``BOOKS``, so the two meet through the same ``crmtier.toml`` a real CRM's sandbox
writes. Values are kept as written (this CRM has no wire format); modification stamps have
whole-second resolution, so ties at a page boundary happen as they do on real CRMs.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

OBJECT = "Customer"
OWNER = "Owner"
ONE_SECOND = timedelta(seconds=1)

BOOKS: dict[str, Book] = {}


@dataclass
class Task:
    customer_id: str
    subject: str
    due: str | None
    owner: str | None
    open: bool = True


@dataclass
class Book:
    name: str
    token: str = field(repr=False)  # the CRM's credential: never shown
    #: the CRM fields a record may hold (its schema), set by the sandbox from its mapping
    fields: frozenset[str] = frozenset()
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    stamps: dict[str, datetime] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)  # by external id
    members: set[tuple[str, str]] = field(default_factory=set)  # (customer, campaign id)
    calls: Counter[str] = field(default_factory=Counter)
    lock: threading.RLock = field(default_factory=threading.RLock)
    last: datetime = datetime(2026, 1, 1, tzinfo=UTC)

    def stamp(self) -> datetime:
        """Now, in whole seconds, never before a stamp already handed out."""
        now = datetime.now(UTC).replace(microsecond=0)
        self.last = max(now, self.last)
        return self.last

    def put(self, customer_id: str, values: dict[str, Any], modstamp: datetime | None) -> None:
        unknown = set(values) - self.fields - {OWNER}
        if unknown:
            raise KeyError(f"no such field: {', '.join(sorted(unknown))}")
        with self.lock:
            self.rows.setdefault(customer_id, {}).update(values)
            self.stamps[customer_id] = modstamp or self.stamp()
            self.last = max(self.last, self.stamps[customer_id])

    def ordered(self) -> list[str]:
        with self.lock:
            return sorted(self.rows, key=lambda cid: (self.stamps[cid], cid))
