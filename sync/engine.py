"""The sync engine: read changed customers, assess, plan, write back, record; crash-safe.

One page at a time:

1. read a page from the connector (inclusive cursor, see ``sync.bookmarks``; the next page
   is fetched meanwhile, see ``sync.readahead``) — ``sync.reader``;
2. assess it (``previous`` filled from the state store, for hysteresis; with households
   on, beside the other members of its changed customers' households, ``sync.households``)
   and plan the minimal writes — ``sync.planning``;
3. in **one transaction**, put the writes in the outbox (``sync.dispatch``), record
   unchanged customers' state (``sync.recorder``) and move the bookmark past the page;
4. drain the outbox in full batches (``sync.writepool``: ≤ ``max_write_batch`` items per
   call, up to ``write_concurrency`` calls at once, one more queued behind each; freed
   slots are also refilled inside the next page) and, in one transaction per answered
   call, mark items done, record tasks and memberships made, promote the customer's
   decision to its committed state and append the audit rows. Answers are recorded only
   between pages.

A SIGKILL anywhere leaves either the page uncommitted (re-read next time: at most one page)
or its writes in the outbox (re-sent next time: idempotent). Per-item failures are retried
with backoff, then dead-lettered; every later run retries dead-lettered customers. A quota
stop checkpoints and ends the run ``paused_quota``. The run record's counts must reconcile.

``sync.run.Run`` only coordinates these parts (built in ``sync.run_parts``); the records
they hand each other are in ``sync.records``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

from connectors.contract import Connector, CrmRecord
from connectors.errors import ConnectorError, RateLimitedError, ReadOnlyError
from connectors.mapping import WritebackConfig
from sync.audit import Trigger
from sync.claims import CustomerClaims
from sync.inputs import ensure_table
from sync.planning import Adjustment, AssessFn
from sync.run import Run
from sync.run_parts import RunParts
from sync.run_report import PlannedWrite, RunReport
from sync.runs import RunCounts
from sync.settings import RunOptions, SyncSettings
from sync.store import StateStore
from sync.taskbudget import TaskLimit
from tiering_core.policy import Policy

__all__ = [
    "AlreadyRunningError",
    "AssessFn",
    "PlannedWrite",
    "RunOptions",
    "RunReport",
    "SyncEngine",
    "SyncSettings",
]


class AlreadyRunningError(RuntimeError):
    """Another live process is syncing this stream."""


class SyncEngine:
    """Syncs one stream (``<crm>:<object>``) of one connector into one state store.

    ``adjustments`` change each page's assessments before anything is planned from them
    (``sync.planning.Adjustment``), in order. ``policy``, when given, is the policy
    ``assess`` applies: with households on, each page's changed customers are decided
    beside every member of their households (``sync.households``), and ``assess`` is
    passed the household links."""

    def __init__(
        self,
        store: StateStore,
        connector: Connector,
        writeback: WritebackConfig,
        assess: AssessFn,
        *,
        stream: str,
        pseudonym_key: bytes,
        settings: SyncSettings | None = None,
        on_progress: Callable[[RunCounts, int], None] | None = None,
        policy_version: str | None = None,
        task_limits: Mapping[str, TaskLimit] | None = None,
        adjustments: Sequence[Adjustment] = (),
        policy: Policy | None = None,
        start_calls: Mapping[str, int] | None = None,
    ) -> None:
        self.store = store
        #: the calls the start checks made before this engine existed (``crmtier sync``'s
        #: ``make_engine``): reported with its first run, which could not start without them
        self._start_calls = dict(start_calls or {})
        self._start_lock = threading.Lock()
        self.policy = policy
        self.task_limits = dict(task_limits or {})  # by task rule; none: unbounded
        self.audit_keys = store.audit_keys  # loaded now: never inside a run's transaction
        self.policy_version = policy_version
        self.connector = connector
        self.writeback = writeback
        self.assess = assess
        self.stream = stream
        self.key = pseudonym_key
        self.settings = settings or SyncSettings()
        self.on_progress = on_progress
        self.adjustments = tuple(adjustments)
        ensure_table(store)
        #: per-customer claims and the version guard, shared with the webhook worker
        self.claims = CustomerClaims(store, ttl=self.settings.lock_ttl)

    def take_start_calls(self) -> dict[str, int]:
        """The start checks' calls, once: to the first run that reports (then nothing)."""
        with self._start_lock:
            calls, self._start_calls = self._start_calls, {}
        return calls

    @property
    def lock_name(self) -> str:
        return f"sync:{self.stream}"

    @property
    def staged_key(self) -> str:
        """Meta key set by a fields-only run: the next run makes tasks and memberships."""
        return f"staged_fields:{self.stream}"

    def run(self, options: RunOptions | None = None) -> RunReport:
        """One scheduled (or manual, or backfill) run over the change stream. The stream's
        lease makes it the stream's one reader (its cursor is one); the customers it
        processes are claimed one page at a time (``sync.run_claims``)."""
        options = options or RunOptions()
        if not options.dry_run and not self.store.acquire_lock(
            self.lock_name, ttl=self.settings.lock_ttl
        ):
            raise AlreadyRunningError(f"another process is already syncing {self.stream}")
        try:
            return Run(RunParts(self, options)).execute(read_stream=True, records=())
        finally:
            if not options.dry_run:
                self.store.release_lock(self.lock_name)

    def process_records(
        self,
        records: Sequence[CrmRecord],
        *,
        trigger: Trigger = "webhook",
        source_event_ids: Mapping[str, str] | None = None,
        source_event_id: str | None = None,
        actor: str = "crmtier-webhook",
        claimed: bool = False,
    ) -> RunReport:
        """Assess, plan, write and record these customers (fetched by the caller), without
        touching the bookmark: the webhook worker's path through the same machinery.
        ``source_event_ids`` maps a customer id to the event that named it (audit);
        ``source_event_id`` names one event for all of them. Pass many records at once:
        their writes share batches, so N customers cost ~N/200 write calls, not N.
        ``claimed``: the calling thread holds these customers' claims and admitted the
        records (the webhook worker); otherwise the run claims and admits them itself."""
        events = dict(source_event_ids or {})
        if source_event_id is not None:
            events.update({r.profile.id: source_event_id for r in records})
        options = RunOptions(trigger=trigger, actor=actor)
        held = [r.profile.id for r in records] if claimed else None
        run = Run(RunParts(self, options, events, caller_holds=held))
        return run.execute(read_stream=False, records=records)

    def process_changes(
        self, records: Sequence[CrmRecord], source_event_ids: Mapping[str, str]
    ) -> Mapping[str, str]:
        """``sync.worker.ChangeProcessor``: an outcome per customer id (``written``,
        ``unchanged``, ``dead_lettered``, ``skipped:<reason>``, ``deferred``); raises a
        ``ConnectorError`` when the CRM call itself failed so the worker retries later."""
        report = self.process_records(records, source_event_ids=source_event_ids, claimed=True)
        if report.status == "paused_quota" and report.read_only:
            raise ReadOnlyError(report.error or "CRM is read-only")
        if report.status == "paused_quota":
            raise RateLimitedError(report.error or "CRM quota or rate limit")
        if report.status == "failed":
            raise ConnectorError(report.error or "write-back failed")
        return report.outcomes
