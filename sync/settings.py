"""How a sync engine is tuned (``SyncSettings``) and what one run is asked to do
(``RunOptions``); importable from ``sync.engine`` as well, where callers look for them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sync.audit import Trigger


@dataclass(frozen=True)
class SyncSettings:
    overlap: timedelta = timedelta(seconds=5)
    tie_max: int = 1000
    record_retry_attempts: int = 5
    record_retry_base: float = 0.5
    record_retry_cap: float = 30.0
    write_concurrency: int = 4
    lock_ttl: timedelta = timedelta(minutes=1)  # renewed every third (sync.leases)
    #: how long a run waits for a customer a webhook worker holds (sync.run_claims); longer
    #: than ``lock_ttl``, the claims' time to live, so a dead worker's claims run out
    claim_wait: timedelta = timedelta(minutes=2)


@dataclass(frozen=True)
class RunOptions:
    trigger: Trigger = "sync"
    dry_run: bool = False
    full: bool = False
    limit: int | None = None
    actor: str = "crmtier-sync"
    as_of: date | None = None  # the assessment date (default: today, UTC)
    # Stage a first sync: write tier fields only; the stream's next run re-reads every
    # customer (as --full) and makes the tasks and memberships.
    only_fields: bool = False
    # Keep each customer's outcome for the report (``RunReport.outcomes``). A scheduled
    # run's report shows counts only; without outcomes its memory stays flat in customers.
    keep_outcomes: bool = True

    def day(self) -> date:
        """The day this run assesses as of: ``as_of``, else today (UTC) when asked, so a
        long-lived process past midnight assesses as of the new day."""
        return self.as_of or datetime.now(UTC).date()
