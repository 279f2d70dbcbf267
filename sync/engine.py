"""The sync engine: read changed customers, assess, plan, write back, record; crash-safe.

One page at a time:

1. read a page from the connector (inclusive cursor, see ``sync.bookmarks``; the next page
   is fetched meanwhile, see ``sync.readahead``);
2. assess it (``previous`` filled from the state store, for hysteresis);
3. plan the minimal writes (``sync.planner``) and, in **one transaction**, put them in the
   outbox, record unchanged customers' state and move the bookmark past the page;
4. drain the outbox in full batches (≤ ``max_write_batch`` items per call, up to
   ``write_concurrency`` calls at once, one more queued behind each; freed slots are also
   refilled inside the next page) and, in one transaction per answered call, mark items
   done, record tasks and memberships made, promote the customer's decision to its
   committed state and append the audit rows. Answers are recorded only between pages.

A SIGKILL anywhere leaves either the page uncommitted (re-read next time: at most one page)
or its writes in the outbox (re-sent next time: idempotent). Per-item failures are retried
with backoff, then dead-lettered; every later run retries dead-lettered customers. A quota
stop checkpoints and ends the run ``paused_quota``. The run record's counts must reconcile.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, cast

import sqlalchemy as sa

from connectors.contract import Connector, CrmRecord, Cursor, Page, WritePlan, WriteResult
from connectors.errors import (
    AuthExpiredError,
    ConfigError,
    ConnectorError,
    RateLimitedError,
    TransientError,
)
from connectors.mapping import WritebackConfig
from sync import bookmarks, outbox, runs, taskbudget
from sync.audit import AuditEntry, AuditEvent, Trigger, append
from sync.bookmarks import Bookmark
from sync.errortext import error_text
from sync.inputs import ensure_table, save_inputs
from sync.killpoints import kill_point
from sync.outbox import NewItem, OutboxItem
from sync.planner import (
    CustomerPlan,
    Known,
    desired_fields,
    plan_customer,
    same_value,
    tiers_of,
)
from sync.preview import PlanTotals
from sync.readahead import read_ahead
from sync.runs import RunCounts, RunStatus, side_effect_label
from sync.state import CustomerState, load_states, save_side_effects, save_states
from sync.store import StateStore
from sync.taskbudget import Budget, TaskLimit
from tiering_core.models import AssessmentData, CustomerProfile, TaskAction
from tiering_core.privacy import pseudonym

log = logging.getLogger(__name__)

#: assesses a batch of profiles (policy and as-of date bound by the caller)
AssessFn = Callable[[Sequence[CustomerProfile]], list[AssessmentData]]


class AlreadyRunningError(RuntimeError):
    """Another live process is syncing this stream."""


class _Unsent(Exception):
    """Internal: a queued write call the run withdrew before it went out."""


class _Stop(Exception):
    """Internal: the run must stop (quota, fatal connector error); carries the status."""

    def __init__(self, status: RunStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SyncSettings:
    overlap: timedelta = timedelta(seconds=5)
    tie_max: int = 1000
    record_retry_attempts: int = 5
    record_retry_base: float = 0.5
    record_retry_cap: float = 30.0
    write_concurrency: int = 4
    lock_ttl: timedelta = timedelta(minutes=1)  # renewed every third (sync.leases)


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


@dataclass(frozen=True)
class PlannedWrite:
    """One line of a dry-run preview: what would be written to whom."""

    customer_id: str
    kind: str
    detail: dict[str, Any]


@dataclass
class RunReport:
    run_id: str
    stream: str
    status: RunStatus
    counts: RunCounts
    api_calls: dict[str, int]
    min_calls: dict[str, int]
    error: str | None = None
    preview: list[PlannedWrite] = field(default_factory=list)
    totals: PlanTotals = field(default_factory=PlanTotals)  # a dry run's, per field/rule/campaign
    dead_letters_open: int = 0
    outcomes: dict[str, str] = field(default_factory=dict)  # customer id -> outcome
    #: the run failed because the configuration or the CRM's set-up is wrong (a
    #: ``ConfigError``): a human must fix it, and ``crmtier sync`` exits 2, not 1
    config_error: bool = False

    @property
    def api_total(self) -> int:
        return sum(self.api_calls.values())


@dataclass
class _Decision:
    """A customer's new decision waiting for its writes; promoted when none is outstanding."""

    customer_id: str
    pending: dict[str, Any]
    outstanding: set[int]
    this_run: bool
    # The committed state the decision builds on (None: the customer has none yet). It
    # cannot go stale while the decision is open: a run holds its stream's lease, and in
    # the run only promoting this decision writes the customer's committed state.
    base: CustomerState | None
    dead: bool = False
    field_dead: bool = False


class SyncEngine:
    """Syncs one stream (``<crm>:<object>``) of one connector into one state store."""

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
    ) -> None:
        self.store = store
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
        ensure_table(store)

    @property
    def lock_name(self) -> str:
        return f"sync:{self.stream}"

    @property
    def staged_key(self) -> str:
        """Meta key set by a fields-only run: the next run makes tasks and memberships."""
        return f"staged_fields:{self.stream}"

    def run(self, options: RunOptions | None = None) -> RunReport:
        """One scheduled (or manual, or backfill) run over the change stream."""
        options = options or RunOptions()
        if not options.dry_run and not self.store.acquire_lock(
            self.lock_name, ttl=self.settings.lock_ttl
        ):
            raise AlreadyRunningError(f"another process is already syncing {self.stream}")
        try:
            return _Run(self, options).execute(read_stream=True, records=())
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
    ) -> RunReport:
        """Assess, plan, write and record these customers (fetched by the caller), without
        touching the bookmark: the webhook worker's path through the same machinery.
        ``source_event_ids`` maps a customer id to the event that named it (audit);
        ``source_event_id`` names one event for all of them. Pass many records at once:
        their writes share batches, so N customers cost ~N/200 write calls, not N."""
        events = dict(source_event_ids or {})
        if source_event_id is not None:
            events.update({r.profile.id: source_event_id for r in records})
        options = RunOptions(trigger=trigger, actor=actor)
        run = _Run(self, options, events)
        return run.execute(read_stream=False, records=records)

    def process_changes(
        self, records: Sequence[CrmRecord], source_event_ids: Mapping[str, str]
    ) -> Mapping[str, str]:
        """``sync.worker.ChangeProcessor``: an outcome per customer id (``written``,
        ``unchanged``, ``dead_lettered``, ``skipped:<reason>``, ``deferred``); raises a
        ``ConnectorError`` when the CRM call itself failed so the worker retries later."""
        report = self.process_records(records, source_event_ids=source_event_ids)
        if report.status == "paused_quota":
            raise RateLimitedError(report.error or "CRM quota or rate limit")
        if report.status == "failed":
            raise ConnectorError(report.error or "write-back failed")
        return report.outcomes


class _Run:
    """The mutable state of one run; lives only as long as ``SyncEngine.run``."""

    def __init__(
        self,
        engine: SyncEngine,
        options: RunOptions,
        source_events: Mapping[str, str] | None = None,
    ) -> None:
        self.e = engine
        self.options = options
        self.source_events = source_events or {}
        self.outcomes: dict[str, str] = {}
        self.settings = engine.settings
        self.run_id = runs.new_run_id()
        self.counts = RunCounts()
        self.preview: list[PlannedWrite] = []
        self.totals = PlanTotals()
        self.caps = engine.connector.capabilities
        # Items per apply(): a write batch, or for one-record-per-call CRMs the plan size
        # over which the connector shares its dedupe-key look-ups.
        self.batch = max(1, self.caps.plan_batch or self.caps.max_write_batch)
        self.queue: dict[int, OutboxItem] = {}
        self.due: dict[int, float] = {}
        self.inflight: dict[Future[list[WriteResult]], list[OutboxItem]] = {}
        # answered, not yet recorded (see _harvest)
        self.landed: list[tuple[list[OutboxItem], Future[list[WriteResult]]]] = []
        self.inflight_by_customer: dict[str, set[int]] = {}
        self.dead_letter_customers: set[str] = set()  # with open letters: resolve on success
        self.refs: dict[str, str] = {}  # pseudonym cache
        self.hashes: dict[str, str] = {}  # input hash per customer of the current page
        self.page: dict[str, CrmRecord] = {}  # the current page by id (the last duplicate)
        self.decisions: dict[str, _Decision] = {}
        self.submitted: Counter[str] = Counter()  # items first sent, by kind
        self.submitted_groups: dict[str, set[tuple[str, bool]]] = {}  # per-customer kinds
        self.stop: _Stop | None = None
        # tasks beyond budgets wait (sync.taskbudget); customers revisited for them
        self.budget = Budget(engine.task_limits) if engine.task_limits else None
        self.revisit: set[str] = set()
        self.follows_staged = False  # this run makes what a fields-only run left out
        self.writeback = engine.writeback
        if options.only_fields:
            self.writeback = engine.writeback.model_copy(
                update={"tasks": False, "campaign_memberships": False}
            )
        self.bookmark: Bookmark | None = None
        self.writes_from: datetime | None = None  # see _holding_writes
        self.usage_start = dict(engine.connector.api_usage().calls)
        self.halted = threading.Event()  # set: queued write calls are not to go out
        self.pool = ThreadPoolExecutor(
            max_workers=max(1, self.settings.write_concurrency), thread_name_prefix="crm-write"
        )

    # --- the run ------------------------------------------------------------------------

    def execute(self, *, read_stream: bool, records: Sequence[CrmRecord]) -> RunReport:
        interrupted = 0
        with self.e.store.begin() as conn:
            if not self.options.dry_run and read_stream:
                interrupted = runs.mark_interrupted(conn, self.e.stream, self.run_id)
            runs.start(
                conn,
                self.run_id,
                self.e.stream,
                trigger=self.options.trigger,
                dry_run=self.options.dry_run,
            )
            self.bookmark = bookmarks.load(conn, self.e.stream)
            self.dead_letter_customers = set(outbox.open_dead_letter_customers(conn, self.e.stream))
            waiting = self._load_task_budget(conn, read_stream)
        log.info(
            "run started",
            extra={"run_id": self.run_id, "stream": self.e.stream, "trigger": self.options.trigger},
        )
        status: RunStatus = "succeeded"
        error: str | None = None
        config_error = False
        try:
            if not self.options.dry_run:
                self._recover_outbox()
            if read_stream:
                if not self.options.dry_run:
                    self._retry_dead_letters()
                self._revisit_waiting(waiting)
                self._read_stream()
            else:
                self._process(list(records), advance=None)
            self._drain(final=True)
        except _Stop as stop:
            status, error = stop.status, str(stop)
        except RateLimitedError as exc:  # while reading: checkpointed up to the last page
            status, error = "paused_quota", f"CRM quota or rate limit: {exc}"
        except ConfigError as exc:  # for the admin, not a bug: one line, no traceback
            status, error, config_error = "failed", error_text(exc), True
            log.error("run failed: %s", error, extra={"run_id": self.run_id})
        except Exception as exc:  # the run record must say what happened, whatever it was
            status, error = "failed", error_text(exc)
            log.exception("run failed", extra={"run_id": self.run_id})
        finally:
            self._abandon_inflight()
            self.pool.shutdown(wait=True)
        if status == "paused_quota":
            self._defer_open_decisions()
        if status == "succeeded" and self.counts.dead_lettered:
            status = "completed_with_errors"
        if status != "failed" and not self.counts.reconciles():
            status, error = "failed", f"counts do not reconcile: {self.counts.as_json()}"
        if (
            status != "failed"
            and read_stream
            and interrupted
            and self.bookmark is not None
            and not self.options.full
            and self.counts.read == 0
        ):
            status = "failed"
            error = "read 0 records after an interrupted run; the bookmark record must be re-read"
        self._settle_task_budget(status)
        report = self._report(status, error)
        report.config_error = config_error and status == "failed"
        with self.e.store.begin() as conn:
            runs.finish(
                conn,
                self.run_id,
                status,
                self.counts,
                report.api_calls,
                error,
                min_calls=report.min_calls,
            )
            report.dead_letters_open = len(outbox.open_dead_letter_customers(conn, self.e.stream))
        log.info(
            "run finished",
            extra={"run_id": self.run_id, "status": status, "counts": self.counts.as_json()},
        )
        return report

    def _report(self, status: RunStatus, error: str | None) -> RunReport:
        now = self.e.connector.api_usage().calls
        used = {k: v - self.usage_start.get(k, 0) for k, v in now.items()}
        used = {k: v for k, v in used.items() if v}
        groups = {kind: len(keys) for kind, keys in self.submitted_groups.items()}
        min_calls = self.caps.minimum_calls(self.counts.read, self.submitted, groups)
        return RunReport(
            self.run_id,
            self.e.stream,
            status,
            self.counts,
            used,
            min_calls,
            error,
            self.preview,
            self.totals,
            outcomes=self.outcomes,
        )

    def _progress(self) -> None:
        if self.e.on_progress is not None:
            usage = self.e.connector.api_usage().calls
            total = sum(v - self.usage_start.get(k, 0) for k, v in usage.items())
            self.e.on_progress(self.counts, total)

    # --- reading ------------------------------------------------------------------------

    def _read_stream(self) -> None:
        start = None
        if self.bookmark is not None and not self.options.full:
            start = self.bookmark.start(self.settings.overlap)
        signpost = datetime.now(UTC)
        self.writes_from = _next_tick(signpost, self.caps.modstamp_resolution)
        try:
            self._read_pages(start, signpost)
        finally:
            self.writes_from = None  # the read is over: no write can come back into it

    def _read_pages(self, start: Cursor | None, signpost: datetime) -> None:
        remaining = self.options.limit
        for page in read_ahead(self.e.connector.read_changed(start)):
            read_at = datetime.now(UTC)
            kill_point("after_fetch")
            records = list(page.records)
            # Records stamped after the run began are the next run's work (Singer signposts):
            # this keeps our own writes (all stamped after it, see _holding_writes) from
            # chasing the read, and misses nothing.
            beyond = [r for r in records if r.modstamp > signpost]
            records = [r for r in records if r.modstamp <= signpost]
            if remaining is not None:
                records = records[:remaining]
                remaining -= len(records)
            if records:
                self._process(records, advance=(Page(tuple(records)), read_at))
            if beyond or (remaining is not None and remaining <= 0):
                break

    # --- task volume: budgets, caps, waiting tasks (sync.taskbudget) ---------------------

    def _load_task_budget(self, conn: sa.Connection, read_stream: bool) -> list[str]:
        """At the start of a run: whether it follows a fields-only run (then it re-reads
        every customer, to make the tasks and memberships that run left out), the owners'
        open tasks, and the customers whose waiting tasks this run should revisit."""
        if (
            read_stream
            and not self.options.only_fields
            and self.e.store.meta_get(conn, self.e.staged_key) == "fields"
        ):
            self.follows_staged = True
            self.options = replace(self.options, full=True)
        if self.budget is None:
            return []
        as_of = date.fromisoformat(self._as_of())
        self.budget.open = taskbudget.load_open(
            conn, self.e.stream, as_of, prune=not self.options.dry_run
        )
        if not read_stream or not self.writeback.tasks:
            return []
        return taskbudget.to_revisit(conn, self.e.stream, self.e.task_limits)

    def _revisit_waiting(self, ids: list[str]) -> None:
        """Re-assess the customers whose tasks wait, most urgent first, before the stream:
        waiting tasks come before new ones of the same rule. A customer the CRM no longer
        returns stops waiting."""
        ids = [cid for cid in ids if cid not in self.dead_letter_customers]
        self.revisit.update(ids)
        found: set[str] = set()
        for start in range(0, len(ids), max(1, self.caps.page_size)):
            records = self.e.connector.fetch(ids[start : start + self.caps.page_size])
            found.update(r.profile.id for r in records)
            if records:
                self._process(records, advance=None)
        gone = [cid for cid in ids if cid not in found]
        if gone and not self.options.dry_run:
            with self.e.store.begin() as conn:
                taskbudget.record(conn, self.e.stream, self.run_id, gone, {}, {})

    def _bounded(
        self, plans: list[tuple[CrmRecord, AssessmentData, CustomerPlan]]
    ) -> tuple[
        list[tuple[CrmRecord, AssessmentData, CustomerPlan]],
        tuple[list[str], dict[str, list[TaskAction]], dict[str, list[TaskAction]]] | None,
    ]:
        """The page's plans with only the tasks the budgets admit, and what the commit
        records: (customers planned, bounded tasks admitted, tasks that wait)."""
        if self.budget is None or not self.writeback.tasks:
            return plans, None
        admitted, waiting = taskbudget.split(
            self.budget, [(r.profile.id, p.tasks) for r, _, p in plans if p.tasks]
        )
        out = [
            (r, a, replace(p, tasks=tuple(admitted.get(r.profile.id, ()))) if p.tasks else p)
            for r, a, p in plans
        ]
        limits = self.e.task_limits
        bounded = {cid: [t for t in tasks if t.rule in limits] for cid, tasks in admitted.items()}
        return out, ([r.profile.id for r, _, _ in plans], bounded, waiting)

    def _settle_task_budget(self, status: RunStatus) -> None:
        """At the end of a run: what waits now (the run record says so), and the staging
        mark (set by a fields-only run, cleared by the run that follows it)."""
        if self.budget is not None:
            self.counts.tasks_deferred.update(self.budget.deferred)
        if self.options.dry_run:
            return
        with self.e.store.begin() as conn:
            if self.budget is not None:
                self.counts.tasks_waiting = Counter(taskbudget.waiting_by_rule(conn, self.e.stream))
            if status in ("succeeded", "completed_with_errors"):
                if self.options.only_fields:
                    self.e.store.meta_put(conn, self.e.staged_key, "fields")
                elif self.follows_staged:
                    self.e.store.meta_put(conn, self.e.staged_key, "")

    def _retry_dead_letters(self) -> None:
        ids = sorted(self.dead_letter_customers)
        for start in range(0, len(ids), max(1, self.caps.page_size)):
            records = self.e.connector.fetch(ids[start : start + self.caps.page_size])
            if records:
                self._process(records, advance=None)

    # --- one page: assess, plan, record, enqueue ------------------------------------------

    def _process(self, records: list[CrmRecord], *, advance: tuple[Page, datetime] | None) -> None:
        self.counts.read += len(records)
        self.counts.pages += 1
        # a page's own: a run must not grow with them
        self.hashes, self.page = {}, {}
        fresh: dict[str, CrmRecord] = {}
        skip_ties = advance is not None and not self.options.full and self.bookmark is not None
        for record in records:
            cid = record.profile.id
            self.page[cid] = record
            inputs = self.hashes[cid] = _input_hash(record.profile, self.e.policy_version)
            if skip_ties and self.bookmark.already_synced(  # type: ignore[union-attr]
                cid,
                record.modstamp,
                partial(_tie_digest, record, inputs),
            ):
                self.counts.skipped["already_synced"] += 1
            elif cid in fresh:
                self.counts.skipped["duplicate_in_page"] += 1
                fresh[cid] = record
            else:
                fresh[cid] = record
        self._send_ready()
        with self.e.store.begin() as conn:
            states = load_states(conn, self.e.stream, fresh)
        todo = [r for r in fresh.values() if not self._settled(r, states.get(r.profile.id))]
        assessed = self._assess(todo, states)
        kill_point("after_tier")
        self._send_ready()  # not later: planning reads the queue, and must see it settled
        plans = [
            (record, assessment, self._plan(record, assessment, states.get(record.profile.id)))
            for record, assessment in assessed
        ]
        plans, page_tasks = self._bounded(plans)
        if self.options.dry_run:
            self._preview(plans, states)
            self._progress()
            return
        self._count_planned(plans)
        kill_point("before_commit")
        with self.e.store.begin() as conn:
            audit_rows: list[AuditEntry] = []
            state_rows: list[dict[str, Any]] = []
            to_write = []
            for record, assessment, plan in plans:
                if plan:
                    to_write.append((record, assessment, plan))
                    continue
                self.counts.unchanged += 1
                self.outcomes[record.profile.id] = "unchanged"
                state = states.get(record.profile.id)
                self._record_unchanged(record, assessment, state, state_rows, audit_rows)
            self._enqueue(conn, to_write, states, state_rows)
            if page_tasks is not None:
                taskbudget.record(conn, self.e.stream, self.run_id, *page_tasks)
            save_states(conn, self.e.stream, state_rows)
            save_inputs(conn, self.e.stream, [record for record, _, _ in plans], self._as_of())
            append(conn, audit_rows, self.e.audit_keys)
            kill_point("in_commit")
            if advance is not None:
                self._advance(conn, *advance)
            runs.checkpoint(conn, self.run_id, self.counts, {})
        kill_point("after_commit")
        self._progress()
        self._drain(final=False)

    def _count_planned(self, plans: list[tuple[CrmRecord, AssessmentData, CustomerPlan]]) -> None:
        planned = self.counts.planned
        for _, _, plan in plans:
            for task in plan.tasks:
                planned[side_effect_label("task", task.rule)] += 1
            for closure in plan.closures:
                planned[side_effect_label("task_close", closure.rule)] += 1
            for change in plan.memberships:
                planned[side_effect_label("membership", change.campaign, change.member)] += 1

    def _settled(self, record: CrmRecord, state: CustomerState | None) -> bool:
        """True when the record came back only because of our own write: same inputs and
        policy as last assessed, same day, and the CRM shows what we last wrote. Such a
        record is unchanged without assessing it again (an assessment may depend on
        ``previous``, e.g. an "upgraded from" reason, and must not rewrite itself)."""
        cid = record.profile.id
        digest = self.hashes[cid]
        if (
            self.options.full
            or self.e.policy_version is None
            or state is None
            or state.pending is not None
            or cid in self.decisions
            or cid in self.revisit
            or state.input_hash != digest
            or state.assessed_at != self._as_of()
            or not all(
                same_value(value, record.current.get(name))
                for name, value in (state.fields or {}).items()
            )
        ):
            return False
        self.counts.unchanged += 1
        self.counts.tiers[(state.tiers or {}).get("value_tier", "unrated")] += 1
        self.outcomes[cid] = "unchanged"
        return True

    def _assess(
        self, records: list[CrmRecord], states: dict[str, CustomerState]
    ) -> list[tuple[CrmRecord, AssessmentData]]:
        profiles = []
        for record in records:
            state = states.get(record.profile.id)
            previous = state.previous() if state else None
            profiles.append(record.profile.model_copy(update={"previous": previous}))
        try:
            results = self.e.assess(profiles)
            pairs = list(zip(records, results, strict=True))
        except Exception:
            pairs = []
            for record, profile in zip(records, profiles, strict=True):
                try:
                    pairs.append((record, self.e.assess([profile])[0]))
                except Exception as exc:
                    self.counts.skipped["assess_error"] += 1
                    self.outcomes[record.profile.id] = "skipped:assess_error"
                    log.warning(
                        "could not assess customer",
                        extra={
                            "customer": self._ref(record.profile.id),
                            "error": type(exc).__name__,
                        },
                    )
        self.counts.tiered += len(pairs)
        for record, assessment in pairs:
            self.counts.tiers[assessment["value_tier"]] += 1
            for issue in assessment["dq_issues"]:
                self.counts.dq_issues[issue["code"]] += 1
            for dq in record.dq_issues:
                self.counts.dq_issues[dq.code] += 1
        return pairs

    def _plan(
        self, record: CrmRecord, assessment: AssessmentData, state: CustomerState | None
    ) -> CustomerPlan:
        known = state.known() if state else Known()
        in_doubt = self._memberships_in_doubt(record.profile.id)
        if in_doubt:
            known = replace(known, in_doubt=in_doubt)
        return plan_customer(assessment, record.current, known, self.writeback)

    def _memberships_in_doubt(self, cid: str) -> dict[str, str]:
        """Campaign -> key of this customer's outstanding membership writes that may
        already have reached the CRM: in flight, sent and failed retryably, or queued by an
        interrupted run (which may have sent them before it died). Superseding such a write
        cannot undo it, so the new plan must say what it wants of those campaigns."""
        decision = self.decisions.get(cid)
        if decision is None:
            return {}
        out: dict[str, str] = {}
        for item_id in decision.outstanding:
            item = self.queue.get(item_id)
            if item is None:  # in flight
                item = next(
                    (i for items in self._unrecorded() for i in items if i.id == item_id),
                    None,
                )
            elif item.attempts == 0 and item.run_id == self.run_id:
                continue  # queued by this run and never sent: superseding it is exact
            if item is not None and item.kind == "membership":
                out[str(item.payload["campaign"])] = item.key
        return out

    def _decision_json(self, record: CrmRecord, assessment: AssessmentData) -> dict[str, Any]:
        return {
            "tiers": tiers_of(assessment),
            # every field the decision means the CRM to show, not only those the plan sends:
            # once its writes are done, the CRM shows exactly these (the plan was diffed
            # against the CRM as read under the stream's lease), and the next read of the
            # customer is its own echo only if it still does (see _settled)
            "fields": _jsonable(desired_fields(assessment, self.e.writeback)),
            "assessed_at": self._as_of(),
            "below_floor_since": _iso(assessment["below_floor_since"]),
            "reason_codes": [r["code"] for r in assessment["reasons"]],
            "policy_version": assessment["policy_version"],
            "input_hash": self.hashes[record.profile.id],
            "run_id": self.run_id,
            "trigger": self.options.trigger,
            "source_event_id": self.source_events.get(record.profile.id),
        }

    def _as_of(self) -> str:
        return (self.options.as_of or datetime.now(UTC).date()).isoformat()

    def _enqueue(
        self,
        conn: sa.Connection,
        planned: list[tuple[CrmRecord, AssessmentData, CustomerPlan]],
        states: dict[str, CustomerState],
        state_rows: list[dict[str, Any]],
    ) -> None:
        """Queue a page's planned writes. Items identical to ones already queued or in
        flight for the customer are reused; queued items the new plan no longer wants are
        superseded (a customer read twice in a run keeps only its newest decision)."""
        new: list[NewItem] = []
        stale: list[int] = []
        in_flight: dict[str, list[OutboxItem]] = {}
        for items in self._unrecorded() if self.inflight_by_customer else ():
            for unrecorded in items:
                in_flight.setdefault(unrecorded.customer_id, []).append(unrecorded)
        for record, assessment, plan in planned:
            cid = record.profile.id
            previous = self.decisions.get(cid)
            queued = [
                self.queue[i] for i in (previous.outstanding if previous else ()) if i in self.queue
            ]
            keep = set(self.inflight_by_customer.get(cid, ()))
            by_identity = {item.identity(): item for item in queued}
            sent = {item.identity() for item in in_flight.get(cid, ())}
            for item in _items_of(plan, self.source_events.get(cid)):
                # identity() is a repr: not worth it for the usual customer with none queued
                if not (by_identity or sent):
                    new.append(item)
                    continue
                identity = item.identity()
                existing = by_identity.pop(identity, None)
                if existing is not None:
                    keep.add(existing.id)
                elif identity not in sent:  # the same write in flight is recorded once
                    new.append(item)
            stale += [item.id for item in by_identity.values()]
            if previous is not None and previous.this_run:
                self.counts.skipped["superseded"] += 1
            pending = self._decision_json(record, assessment)
            self.decisions[cid] = _Decision(cid, pending, keep, this_run=True, base=states.get(cid))
            state_rows.append(
                {
                    "customer_id": cid,
                    "pseudonym": self._ref(cid),
                    "pending": pending,
                    "run_id": self.run_id,
                }
            )
        if stale:
            outbox.set_status(conn, stale, "superseded")
            for item_id in stale:
                self.queue.pop(item_id, None)
        for added in outbox.enqueue(
            conn, self.e.stream, self.run_id, new, trigger=self.options.trigger
        ):
            self.queue[added.id] = added
            self.decisions[added.customer_id].outstanding.add(added.id)

    def _record_unchanged(
        self,
        record: CrmRecord,
        assessment: AssessmentData,
        state: CustomerState | None,
        state_rows: list[dict[str, Any]],
        audit_rows: list[AuditEntry],
    ) -> None:
        """Nothing to write; still keep the decision (hysteresis needs it) if it moved."""
        cid = record.profile.id
        if cid in self.decisions:
            return  # an earlier read of this run queued writes; that decision stands
        tiers = tiers_of(assessment)
        below = _iso(assessment["below_floor_since"])
        digest = self.hashes[cid]
        if (
            state is not None
            and (state.tiers, state.below_floor_since, state.input_hash) == (tiers, below, digest)
            and state.assessed_at == self._as_of()
        ):
            return
        state_rows.append(
            {
                "customer_id": cid,
                "pseudonym": self._ref(cid),
                "tiers": tiers,
                "assessed_at": self._as_of(),
                "below_floor_since": below,
                "input_hash": digest,
                "run_id": self.run_id,
            }
        )
        old = state.tiers if state else None
        if old != tiers:
            self._count_change(old, tiers)
            decision = self._decision_json(record, assessment)
            audit_rows.append(self._audit(cid, "tier_change", old, tiers, decision))

    def _advance(self, conn: sa.Connection, page: Page, read_at: datetime) -> None:
        cursor = page.cursor
        if cursor is None:
            return
        current = self.bookmark or Bookmark.initial(self.e.stream)
        moved = current.advance(
            cursor,
            ((r.profile.id, r.modstamp) for r in page.records),
            self._digest,
            read_at=read_at,
            overlap=self.settings.overlap,
            tie_max=self.settings.tie_max,
        )
        self.bookmark = bookmarks.save(conn, moved)

    def _digest(self, cid: str) -> str:
        """The tie-set digest of the current page's record ``cid`` (its last read); the
        bookmark asks it once per record it keeps."""
        return _tie_digest(self.page[cid], self.hashes[cid])

    def _preview(
        self,
        plans: list[tuple[CrmRecord, AssessmentData, CustomerPlan]],
        states: dict[str, CustomerState],
    ) -> None:
        for record, assessment, plan in plans:
            cid = record.profile.id
            self.totals.add(assessment, plan, self.e.writeback)
            if not plan:
                self.counts.unchanged += 1
                self.outcomes[cid] = "unchanged"
                continue
            self.counts.written += 1
            self.outcomes[cid] = "would_write"
            for name, value in plan.fields.items():
                self.preview.append(
                    PlannedWrite(
                        cid,
                        "field_update",
                        {"field": name, "old": record.current.get(name), "new": value},
                    )
                )
            for task in plan.tasks:
                self.preview.append(
                    PlannedWrite(cid, "task", {"rule": task.rule, "due": task.due.isoformat()})
                )
            for change in plan.memberships:
                self.preview.append(
                    PlannedWrite(
                        cid, "membership", {"campaign": change.campaign, "member": change.member}
                    )
                )
            for closure in plan.closures:
                self.preview.append(PlannedWrite(cid, "task_close", {"rule": closure.rule}))
            for item in _items_of(plan):
                self._count_submitted(item)

    # --- recovery -----------------------------------------------------------------------

    def _recover_outbox(self) -> None:
        """Writes an earlier run recorded but did not see answered: send them again, and
        record their answers before anything is read. A record read while they were still
        going out would show the CRM as it was before them; its customer, already settled
        by them, would then be assessed again against its own new decision (an "upgraded
        from" reason lost) and planned a second copy of their tasks and memberships."""
        with self.e.store.begin() as conn:
            items = outbox.pending(conn, self.e.stream)
            states = load_states(conn, self.e.stream, {i.customer_id for i in items})
        for item in items:
            self.queue[item.id] = item
            decision = self.decisions.get(item.customer_id)
            if decision is None:
                state = states.get(item.customer_id)
                pending = dict(state.pending) if state and state.pending else {}
                decision = _Decision(item.customer_id, pending, set(), this_run=False, base=state)
                self.decisions[item.customer_id] = decision
            decision.outstanding.add(item.id)
        if items:
            log.info("re-sending writes of an interrupted run", extra={"items": len(items)})
            self._drain(final=True)

    # --- writing ------------------------------------------------------------------------

    def _ready_batches(self, final: bool) -> list[list[OutboxItem]]:
        """Full batches of each kind; at the end also the partial rest of a kind, but only
        once none of its items waits for a customer's in-flight call (else the rest would
        go out in two calls instead of one)."""
        now = time.monotonic()
        by_kind: dict[str, list[OutboxItem]] = {}
        held: set[str] = set()
        for item in self.queue.values():
            if self.due.get(item.id, 0.0) > now:
                continue
            if item.customer_id in self.inflight_by_customer:
                held.add(item.kind)
                continue
            by_kind.setdefault(item.kind, []).append(item)
        batches = []
        for kind, items in by_kind.items():
            size, rest = self._batching(kind, len(items), final and kind not in held)
            for start in range(0, len(items), size):
                chunk = items[start : start + size]
                if len(chunk) < size and not rest:
                    break
                batches.append(chunk)
        return batches

    def _batching(self, kind: str, ready: int, last: bool) -> tuple[int, bool]:
        """(items per apply(), whether a partial last batch may go) for ``ready`` items of
        ``kind``; ``last``: nothing more of the kind will come. A CRM with a bulk path
        (``bulk_threshold``) decides by the run's field updates, not a page's: they are
        collected across pages and go in ``bulk_batch`` chunks, the rest at the end in one
        apply() when above the threshold (the connector makes it a bulk job), else in
        ordinary batches. Collected items are durable in the outbox like any queued one."""
        threshold = self.caps.bulk_threshold
        if kind != "field_update" or threshold is None:
            return self.batch, last
        bulk = self.caps.bulk_job
        if ready >= bulk or not last:
            return bulk, False
        return (ready, True) if ready > threshold else (self.batch, True)

    def _collecting(self) -> int:
        """Queued items held for a bulk call (see ``_batching``): they are no reason to
        slow the read down."""
        if self.caps.bulk_threshold is None:
            return 0
        return sum(1 for item in self.queue.values() if item.kind == "field_update")

    def _drain(self, *, final: bool) -> None:
        while True:
            self._collect(block=False)
            if self.stop is not None:
                self.halted.set()  # a stopping run sends nothing new
                self._collect(block=True, until_empty=True)
                raise self.stop
            submitted = self._start_ready(final)
            if not final:
                # Back-pressure: do not read further ahead than a few full batches.
                waiting = len(self.queue) - self._collecting()
                ahead = waiting > self.batch * self.settings.write_concurrency * 4
                if ahead and self.inflight:
                    self._collect(block=True)
                    continue
                return
            if submitted:
                continue
            if self.inflight:
                self._collect(block=True)
                continue
            if not self.queue:
                return
            wake = min(self.due.get(i, 0.0) for i in self.queue)
            time.sleep(max(0.0, min(wake - time.monotonic(), self.settings.record_retry_cap)))

    def _send_ready(self) -> None:
        """Start the full batches that are ready in the slots of calls that have answered,
        without recording the answers: callable while a page is being processed, where
        recording would change customer states the page has already loaded. A page takes
        a few hundred milliseconds and a call about a tenth of that; were calls started only
        between pages, the write slots would stand idle most of each page (measured: the
        read then waited a fifth of the run on back-pressure, P4)."""
        self._harvest()
        if self.stop is None:
            self._start_ready(final=False)

    def _start_ready(self, final: bool) -> int:
        """Submit ready batches into the free slots; how many went out. The pool makes at
        most ``write_concurrency`` calls at once; each of its threads also has one call
        queued behind the one it is making, so it starts the next the moment one answers
        instead of idling until the read loop comes round (measured: P4's wall time fell
        by a tenth). Queued calls count as in flight, their outcome in doubt."""
        capacity = 2 * self.settings.write_concurrency - len(self.inflight)
        ready = capacity > 0 and not self.halted.is_set() and not self._holding_writes()
        batches = self._ready_batches(final) if ready else []
        busy: set[str] = set()
        submitted = 0
        for chunk in batches:
            if submitted >= capacity:
                break
            if any(i.customer_id in busy for i in chunk):
                continue
            self._submit(chunk)
            busy.update(i.customer_id for i in chunk)
            submitted += 1
        return submitted

    def _count_submitted(self, item: OutboxItem | NewItem) -> None:
        """What the run sends, for its minimum-calls figure (docs/targets.md P1)."""
        self.submitted[item.kind] += 1
        if item.kind in self.caps.per_customer_kinds:
            group = (item.customer_id, bool(item.payload.get("member", True)))
            self.submitted_groups.setdefault(item.kind, set()).add(group)

    def _submit(self, items: list[OutboxItem]) -> None:
        items = outbox.plan_order(items)
        for item in items:
            self.queue.pop(item.id, None)
            self.inflight_by_customer.setdefault(item.customer_id, set()).add(item.id)
        plan = outbox.to_write_plan(items)
        kill_point("before_write")
        future = self.pool.submit(self._send, plan)
        self.inflight[future] = items

    def _holding_writes(self) -> bool:
        """True while the read is under way and the CRM's clock still stamps the signpost's
        tick. A CRM with whole-second stamps (Zoho, Salesforce) stamps a write made in the
        signpost's second with a time <= the signpost, and the read would take our own
        write back as a change of this run. Held writes wait in the queue while the read
        goes on (at most one tick); once the read is over nothing is held."""
        if self.writes_from is not None and datetime.now(UTC) >= self.writes_from:
            self.writes_from = None
        return self.writes_from is not None

    def _collect(self, *, block: bool, until_empty: bool = False) -> None:
        """Record the answered calls; with ``block``, first wait for one to answer if none
        has; with ``until_empty``, go on until no call is in flight."""
        while True:
            if block and self.inflight and not self.landed:
                wait(list(self.inflight), return_when=FIRST_COMPLETED)
            self._harvest()
            landed, self.landed = self.landed, []
            for items, future in landed:
                for item in items:
                    ids = self.inflight_by_customer.get(item.customer_id)
                    if ids is not None:
                        ids.discard(item.id)
                        if not ids:
                            del self.inflight_by_customer[item.customer_id]
                self._record(items, future)
            if not (until_empty and self.inflight):
                return

    def _harvest(self) -> None:
        """Move the calls that have answered out of flight, freeing their slots. Their
        items stay the customers' in-flight items until the answers are recorded: no
        newer write for those customers may overtake them."""
        for future in [f for f in self.inflight if f.done()]:
            self.landed.append((self.inflight.pop(future), future))

    def _unrecorded(self) -> Iterator[list[OutboxItem]]:
        """The item lists of the calls sent whose answers are not recorded yet."""
        yield from self.inflight.values()
        for items, _ in self.landed:
            yield items

    def _send(self, plan: WritePlan) -> list[WriteResult]:
        """One write call, on a pool thread, unless the run has withdrawn its queued calls.
        A call refused outright (quota, login, configuration) withdraws them at once, on
        this thread: the calls queued behind it would be refused alike, and the read loop
        may not look at the answers for a while."""
        if self.halted.is_set():
            raise _Unsent
        try:
            return self.e.connector.apply(plan)
        except (RateLimitedError, AuthExpiredError, ConfigError):
            self.halted.set()
            raise

    def _abandon_inflight(self) -> None:
        """When the run ends, however it ends: withdraw the calls not yet sent, wait for
        those sent, record what they did."""
        self.halted.set()
        try:
            self._collect(block=True, until_empty=True)
        except Exception:  # already failing; the outbox keeps the items for the next run
            log.warning("could not record in-flight writes", extra={"run_id": self.run_id})

    def _record(self, items: list[OutboxItem], future: Future[list[WriteResult]]) -> None:
        kill_point("after_write")
        if isinstance(future.exception(), _Unsent):  # the outbox keeps them for later
            self._requeue(items)
            return
        for item in items:
            if item.attempts == 0:
                self._count_submitted(item)
        try:
            results = future.result()
        except RateLimitedError as exc:
            self._requeue(items)
            self.stop = self.stop or _Stop("paused_quota", f"CRM quota or rate limit: {exc}")
            return
        except TransientError as exc:
            results = [
                WriteResult(i.kind, i.key, False, "TRANSIENT", str(exc), retryable=True)
                for i in items
            ]
        except (AuthExpiredError, ConfigError) as exc:
            self._requeue(items)
            self.stop = self.stop or _Stop("failed", error_text(exc))
            return
        except Exception as exc:
            self._requeue(items)
            self.stop = self.stop or _Stop("failed", f"write call failed: {error_text(exc)}")
            return
        if len(results) != len(items):
            self._requeue(items)
            self.stop = _Stop(
                "failed", f"connector answered {len(results)} results for {len(items)} writes"
            )
            return
        kill_point("before_record")
        with self.e.store.begin() as conn:
            audit_rows: list[AuditEntry] = []
            effects: list[dict[str, Any]] = []
            done: list[int] = []
            for item, result in zip(items, results, strict=True):
                decision = self.decisions.get(item.customer_id)
                if result.ok:
                    done.append(item.id)
                    self.counts.writes[item.kind] += 1
                    if item.kind != "field_update":
                        self.counts.effects[_effect_label(item)] += 1
                    self._record_side_effect(item, decision, effects, audit_rows)
                    if decision:
                        decision.outstanding.discard(item.id)
                elif result.retryable and item.attempts + 1 < self.settings.record_retry_attempts:
                    self._retry_later(conn, item, result)
                else:
                    self._dead_letter(conn, item, result, decision)
            outbox.set_status(conn, done, "done")
            save_side_effects(conn, self.e.stream, effects)
            kill_point("in_record")
            finished = {
                d.customer_id: d
                for d in (self.decisions.get(item.customer_id) for item in items)
                if d is not None and not d.outstanding
            }
            self._finalize(conn, list(finished.values()), audit_rows)
            append(conn, audit_rows, self.e.audit_keys)
        kill_point("after_record")
        self._progress()

    def _requeue(self, items: list[OutboxItem]) -> None:
        for item in items:
            self.queue[item.id] = item

    def _retry_later(self, conn: sa.Connection, item: OutboxItem, result: WriteResult) -> None:
        attempts = item.attempts + 1
        outbox.set_status(conn, [item.id], "pending", attempts=attempts, error=result.error_code)
        self.queue[item.id] = replace(item, attempts=attempts)
        base = self.settings.record_retry_base * 2 ** (attempts - 1)
        self.due[item.id] = time.monotonic() + min(base, self.settings.record_retry_cap)

    def _dead_letter(
        self,
        conn: sa.Connection,
        item: OutboxItem,
        result: WriteResult,
        decision: _Decision | None,
    ) -> None:
        code = result.error_code or "UNKNOWN"
        outbox.set_status(conn, [item.id], "dead", attempts=item.attempts + 1, error=code)
        dead = replace(item, attempts=item.attempts + 1)
        self.dead_letter_customers.add(item.customer_id)
        outbox.dead_letter(
            conn,
            self.e.stream,
            dead,
            pseudonym=self._ref(item.customer_id),
            error_code=code,
            reason=_one_line(result.message or code),
            run_id=self.run_id,
        )
        self.counts.write_failures[item.kind] += 1
        log.warning(
            "write dead-lettered",
            extra={"customer": self._ref(item.customer_id), "kind": item.kind, "code": code},
        )
        if decision is not None:
            decision.outstanding.discard(item.id)
            decision.dead = True
            decision.field_dead = decision.field_dead or item.kind == "field_update"

    def _record_side_effect(
        self,
        item: OutboxItem,
        decision: _Decision | None,
        effects: list[dict[str, Any]],
        audit_rows: list[AuditEntry],
    ) -> None:
        if item.kind == "field_update":
            return
        pending = decision.pending if decision else {}
        rule = item.payload.get("rule") if item.kind in ("task", "task_close") else None
        event: AuditEvent
        if item.kind == "task":
            campaign, active, event = None, True, "task"
            new: dict[str, Any] = {
                "rule": rule,
                "priority": item.payload.get("priority"),
                "due": item.payload.get("due"),
                "queue": item.payload.get("queue"),
                "key": item.key,
            }
        elif item.kind == "task_close":  # the task stays on record, closed: active false
            campaign, active, event = None, False, "task_closed"
            new = {"rule": rule, "key": item.key, "closed": True}
        else:
            campaign, active, event = (
                item.payload["campaign"],
                bool(item.payload["member"]),
                "campaign",
            )
            new = {"campaign": campaign, "member": active, "key": item.key}
        effects.append(
            {
                "kind": "membership" if item.kind == "membership" else "task",
                "key": item.key,
                "customer_id": item.customer_id,
                "campaign": campaign,
                "rule": rule,
                "active": active,
                "run_id": self.run_id,
            }
        )
        audit_rows.append(self._audit(item.customer_id, event, None, new, pending, item=item))

    def _finalize(
        self, conn: sa.Connection, decisions: list[_Decision], audit_rows: list[AuditEntry]
    ) -> None:
        """These decisions' writes are all answered: they become the committed state."""
        if not decisions:
            return
        rows: list[dict[str, Any]] = []
        resolved: list[str] = []
        for decision in decisions:
            cid = decision.customer_id
            self.decisions.pop(cid, None)
            pending, state = decision.pending, decision.base
            row: dict[str, Any] = {"customer_id": cid, "pseudonym": self._ref(cid), "pending": None}
            if pending and not decision.field_dead:
                row.update(
                    tiers=pending.get("tiers"),
                    fields=pending.get("fields") or {},
                    assessed_at=pending.get("assessed_at"),
                    below_floor_since=pending.get("below_floor_since"),
                    input_hash=pending.get("input_hash"),
                )
                old = state.tiers if state else None
                if old != pending.get("tiers"):
                    self._count_change(old, pending.get("tiers"))
                    audit_rows.append(
                        self._audit(cid, "tier_change", old, pending.get("tiers"), pending)
                    )
            if decision.dead:
                # Part of this decision never reached the CRM while the rest may have (a
                # dead field write beside campaign moves that landed): the committed state
                # no longer says what the CRM holds, so the customer's next read must plan
                # again, not pass as settled on unchanged inputs (see _settled).
                row["input_hash"] = None
            rows.append(row)
            if not decision.dead and cid in self.dead_letter_customers:
                resolved.append(cid)
                self.dead_letter_customers.discard(cid)
            if decision.this_run:
                if decision.dead:
                    self.counts.dead_lettered += 1
                else:
                    self.counts.written += 1
                self.outcomes[cid] = "dead_lettered" if decision.dead else "written"
            else:
                self.counts.recovered += 1
        save_states(conn, self.e.stream, rows)
        outbox.resolve_dead_letters(conn, self.e.stream, resolved)

    def _defer_open_decisions(self) -> None:
        """A paused run leaves this run's open decisions to the next: count them skipped."""
        for decision in self.decisions.values():
            if decision.this_run:
                self.counts.skipped["deferred_to_next_run"] += 1
                self.outcomes[decision.customer_id] = "deferred"

    # --- naming and audit ---------------------------------------------------------------

    def _ref(self, customer_id: str) -> str:
        ref = self.refs.get(customer_id)
        if ref is None:
            ref = self.refs[customer_id] = pseudonym(customer_id, self.e.key)
        return ref

    def _count_change(self, old: Any, new: Any) -> None:
        before = (old or {}).get("value_tier", "none")
        after = (new or {}).get("value_tier", "none")
        if before != after:
            self.counts.changes[f"{before} -> {after}"] += 1

    def _audit(
        self,
        customer_id: str,
        event: Any,
        old: Any,
        new: Any,
        decision: dict[str, Any],
        *,
        item: OutboxItem | None = None,
    ) -> AuditEntry:
        trigger = (
            (item.trigger if item else None) or decision.get("trigger") or self.options.trigger
        )
        return AuditEntry(
            stream=self.e.stream,
            customer_ref=self._ref(customer_id),
            event=event,
            old=old,
            new=new,
            reason_codes=list(decision.get("reason_codes") or []),
            policy_version=str(decision.get("policy_version") or "unknown"),
            input_hash=str(decision.get("input_hash") or ""),
            trigger=cast(Trigger, trigger),
            actor=self.options.actor,
            run_id=self.run_id,
            source_event_id=(item.source_event_id if item else None)
            or decision.get("source_event_id"),
        )


def _items_of(plan: CustomerPlan, source_event_id: str | None = None) -> list[NewItem]:
    cid = plan.customer_id
    items = []
    if plan.fields:
        payload = _jsonable(dict(plan.fields))
        items.append(NewItem(cid, "field_update", cid, payload, source_event_id))
    for task in plan.tasks:
        payload = task.model_dump(mode="json")
        items.append(NewItem(cid, "task", task.dedupe_key, payload, source_event_id, task))
    for change in plan.memberships:
        payload = {"campaign": change.campaign, "member": change.member}
        items.append(NewItem(cid, "membership", change.dedupe_key, payload, source_event_id))
    for closure in plan.closures:
        payload = {"rule": closure.rule}
        items.append(NewItem(cid, "task_close", closure.dedupe_key, payload, source_event_id))
    return items


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _next_tick(moment: datetime, resolution: timedelta) -> datetime:
    """The first instant a CRM stamping at ``resolution`` stamps later than ``moment``."""
    return _EPOCH + ((moment - _EPOCH) // resolution + 1) * resolution


def _input_hash(profile: CustomerProfile, policy_version: str | None) -> str:
    """What an assessment depends on besides ``previous`` and the date: the customer's
    inputs (not its modstamp) and the policy."""
    inputs = profile.model_dump_json(exclude={"previous", "modified_at"})
    return hashlib.sha256(f"{policy_version}\n{inputs}".encode()).hexdigest()


def _effect_label(item: OutboxItem) -> str:
    """The ``side_effect_label`` of a written task, closure or membership item."""
    if item.kind == "membership":
        return side_effect_label("membership", item.payload["campaign"], item.payload["member"])
    return side_effect_label(item.kind, str(item.payload.get("rule") or "unknown"))


def _tie_digest(record: CrmRecord, input_hash: str) -> str:
    """Content of a record as read (inputs and the CRM's write-back values), short."""
    current = repr(sorted((k, repr(v)) for k, v in record.current.items()))
    return hashlib.sha256(f"{input_hash}\n{current}".encode()).hexdigest()[:16]


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
