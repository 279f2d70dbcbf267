"""One sync run: wires the reader, planner, dispatcher, write pool and recorder, and runs
the pages through them (``sync.engine`` describes the run; ``SyncEngine`` starts one)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from connectors.calltally import CallTally, counting
from connectors.contract import CrmRecord
from connectors.errors import ConfigError, RateLimitedError
from sync import household_store, households, outbox, runs, taskbudget
from sync.claims import owner_id
from sync.dispatch import Dispatcher, items_of
from sync.errortext import error_text
from sync.households import HouseholdGroup
from sync.killpoints import kill_point
from sync.planning import LinksFor, PagePlanner
from sync.preview import PlanTotals
from sync.reader import Reader, input_hash
from sync.recorder import PageRows, Recorder
from sync.records import Advance, Outcome, Planned, Skip, Stop
from sync.run_claims import RunClaims
from sync.runs import RunCounts, RunStatus
from sync.settings import RunOptions
from sync.state import CustomerState, load_states
from sync.writepool import WritePool

if TYPE_CHECKING:
    from sync.engine import SyncEngine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedWrite:
    """One line of a dry-run preview: what would be written to whom."""

    customer_id: str
    kind: str
    detail: dict[str, Any]  # field values as the CRM holds them: raw CRM JSON


@dataclass(frozen=True)
class PagePlans:
    """A page assessed and planned, not yet committed."""

    plans: list[Planned]
    hashes: dict[str, str]  # input hash per customer
    states: dict[str, CustomerState]
    group: HouseholdGroup | None = None  # the households read with the page, to record


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
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # customer id -> outcome
    #: the run failed because the configuration or the CRM's set-up is wrong (a
    #: ``ConfigError``): a human must fix it, and ``crmtier sync`` exits 2, not 1
    config_error: bool = False

    @property
    def api_total(self) -> int:
        return sum(self.api_calls.values())


class Run:
    """One run: wires the reader, planner, dispatcher and recorder, and runs the pages
    through them; lives only as long as ``SyncEngine.run``."""

    def __init__(
        self,
        engine: SyncEngine,
        options: RunOptions,
        source_events: dict[str, str] | None = None,
        *,
        caller_holds: Collection[str] | None = None,
        run_id: str | None = None,
    ) -> None:
        self.e = engine
        self.options = options
        # a run's own id; a page unit of a re-tier spread over workers (``sync.retier``)
        # passes its coordinator's, which its state rows, outbox items and audit rows cite
        self.run_id = run_id or runs.new_run_id()
        self.preview: list[PlannedWrite] = []
        self.follows_staged = False  # this run makes what a fields-only run left out
        self.from_start = False  # no bookmark when the run started: it reads every customer
        self.beside: dict[str, str] = {}  # household members decided beside a page: input hash
        # the CRM calls made for this run alone: the connector may serve others at once
        self.calls = CallTally()
        events = source_events or {}
        self.recorder = Recorder(
            engine.store,
            engine.stream,
            self.run_id,
            key=engine.key,
            audit_keys=engine.audit_keys,
            trigger=options.trigger,
            actor=options.actor,
            retry_attempts=engine.settings.record_retry_attempts,
            decisions={},
            keep_outcomes=options.keep_outcomes,
        )
        self.counts = self.recorder.counts
        # a dry run writes nothing, so it claims nothing; the webhook worker's records come
        # claimed, and a worker never waits for a claim (a run may be waiting for its own)
        self.claims = RunClaims(
            None if options.dry_run else engine.claims,
            owner_id(),
            engine.settings.claim_wait if caller_holds is None else timedelta(0),
            ref=self.recorder.ref,
            caller_holds=caller_holds or (),
        )
        self.reader = Reader(
            engine.connector, engine.stream, engine.settings, self.counts, engine.policy_version
        )
        self.planner = PagePlanner(
            engine.assess,
            engine.writeback,
            self.recorder,
            options,
            policy_version=engine.policy_version,
            task_limits=engine.task_limits,
            adjustments=engine.adjustments,
            source_events=events,
        )
        self.pool = WritePool(
            engine.connector,
            engine.settings,
            holding=self.reader.holding_writes,
            record=self.recorder.record_results,
            after_record=self._progress,
        )
        self.dispatcher = Dispatcher(
            self.pool, self.recorder, engine.stream, self.run_id, options.trigger, events
        )

    def execute(self, *, read_stream: bool, records: Sequence[CrmRecord]) -> RunReport:
        """Run it, its record kept alive by a heartbeat until it is finished."""
        stream, dry, ttl = self.e.stream, self.options.dry_run, self.e.settings.lock_ttl
        interrupted = runs.Interrupted()
        with self.e.store.begin() as conn:
            if not dry:
                interrupted = runs.mark_interrupted(conn, stream, self.run_id, reader=read_stream)
            runs.start(
                conn,
                self.run_id,
                stream,
                trigger=self.options.trigger,
                dry_run=dry,
                owner=self.claims.owner,
                ttl=ttl,
            )
        heartbeat = runs.keep_alive(self.e.store, self.run_id, self.claims.owner, ttl)
        try:
            with counting(self.calls):
                return self._execute(read_stream, records, interrupted.readers)
        finally:
            heartbeat.stop()

    def _execute(
        self, read_stream: bool, records: Sequence[CrmRecord], interrupted: int
    ) -> RunReport:
        stream, dry = self.e.stream, self.options.dry_run
        with self.e.store.begin() as conn:
            self.reader.load(conn)
            self.from_start = self.reader.bookmark is None  # a first run reads everyone
            self.recorder.dead_letter_customers = set(
                outbox.open_dead_letter_customers(conn, stream)
            )
            waiting = self._load_task_budget(conn, read_stream)
        log.info(
            "run started",
            extra={"run_id": self.run_id, "stream": stream, "trigger": self.options.trigger},
        )
        status: RunStatus = "succeeded"
        error: str | None = None
        config_error = False
        try:
            if not dry:
                self._recover_outbox(None if read_stream else {r.profile.id for r in records})
            if read_stream:
                if not dry:
                    self._refetch(sorted(self.recorder.dead_letter_customers))
                self._revisit_waiting(waiting)
                with closing(self.reader.pages(self.options)) as pages:
                    for page, mark in pages:
                        self._process(page, mark)
                self._after_read()
            else:
                self._process(list(records), None)
            self.pool.drain(final=True)
        except Stop as stop:
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
            self.pool.shutdown()
            self.claims.release_all()
        status, error = self._verdict(
            status, error, read_stream=read_stream, interrupted=interrupted
        )
        self._settle_task_budget(status)
        if self.e.policy is not None and not self.options.dry_run:
            household_store.settle(
                self.e.store,
                self.e.stream,
                self.e.policy,
                read_all=read_stream
                and (self.options.full or self.from_start)
                and self.options.limit is None,
                succeeded=status in ("succeeded", "completed_with_errors"),
            )
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
            report.dead_letters_open = len(outbox.open_dead_letter_customers(conn, stream))
        log.info(
            "run finished",
            extra={"run_id": self.run_id, "status": status, "counts": self.counts.as_json()},
        )
        return report

    def _verdict(
        self, status: RunStatus, error: str | None, *, read_stream: bool, interrupted: int
    ) -> tuple[RunStatus, str | None]:
        """The run's final status from how it ended and whether its counts add up."""
        if status == "paused_quota":
            self.recorder.defer_open_decisions()
        if status == "succeeded" and self.counts.dead_lettered:
            status = "completed_with_errors"
        if status != "failed" and not self.counts.reconciles():
            status, error = "failed", f"counts do not reconcile: {self.counts.as_json()}"
        if (
            status != "failed"
            and read_stream
            and interrupted
            and self.reader.bookmark is not None
            and not self.options.full
            and self.counts.read == 0
        ):
            status = "failed"
            error = "read 0 records after an interrupted run; the bookmark record must be re-read"
        return status, error

    def _report(self, status: RunStatus, error: str | None) -> RunReport:
        used = self.calls.counts()
        tally = self.pool.tally
        groups = {kind: len(keys) for kind, keys in tally.groups.items()}
        caps = self.e.connector.capabilities
        min_calls = caps.minimum_calls(self.counts.read, tally.items, groups)
        return RunReport(
            self.run_id,
            self.e.stream,
            status,
            self.counts,
            used,
            min_calls,
            error,
            self.preview,
            self.planner.totals,
            outcomes=self.recorder.outcomes,
        )

    def _progress(self) -> None:
        if self.e.on_progress is not None:
            self.e.on_progress(self.counts, self.calls.total())

    # --- before the stream: the outbox, dead letters, waiting tasks -----------------------

    def _recover_outbox(self, only: set[str] | None) -> None:
        """Writes an earlier run recorded but did not see answered: send them again, and
        record their answers before anything is read. A record read while they were still
        going out would show the CRM as it was before them; its customer, already settled
        by them, would then be assessed again against its own new decision (an "upgraded
        from" reason lost) and planned a second copy of their tasks and memberships.

        Only the customers this run holds (``only``: the webhook path's, else all it can
        claim): a pending write of a customer someone else holds is theirs, in flight.
        Those it had to wait for are looked up again once claimed: their holder may have
        finished them meanwhile."""
        with self.e.store.begin() as conn:
            items = outbox.pending(conn, self.e.stream)
        customers = {i.customer_id for i in items if only is None or i.customer_id in only}
        if customers - self.claims.caller_holds - self.claims.held:
            self.claims.hold(customers)
            with self.e.store.begin() as conn:
                items = outbox.pending(conn, self.e.stream)
        items = [i for i in items if i.customer_id in customers]
        with self.e.store.begin() as conn:
            states = load_states(conn, self.e.stream, customers)
        self.dispatcher.recover(items, states)
        if items:
            log.info("re-sending writes of an interrupted run", extra={"items": len(items)})
            self.pool.drain(final=True)

    def _refetch(self, ids: list[str]) -> set[str]:
        """Fetch and process these customers again (those the CRM still returns)."""
        found: set[str] = set()
        for records in self.reader.fetch(ids):
            found.update(r.profile.id for r in records)
            self._process(records, None)
        return found

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
            self.options = self.planner.options = replace(self.options, full=True)
        budget = self.planner.budget
        if budget is None:
            return []
        budget.open = taskbudget.load_open(
            conn, self.e.stream, self.options.day(), prune=not self.options.dry_run
        )
        if not read_stream or not self.planner.writeback.tasks:
            return []
        return taskbudget.to_revisit(conn, self.e.stream, self.e.task_limits)

    def _revisit_waiting(self, ids: list[str]) -> None:
        """Re-assess the customers whose tasks wait, most urgent first, before the stream:
        waiting tasks come before new ones of the same rule. A customer the CRM no longer
        returns stops waiting."""
        ids = [cid for cid in ids if cid not in self.recorder.dead_letter_customers]
        self.planner.revisit.update(ids)
        found = self._refetch(ids)
        gone = [cid for cid in ids if cid not in found]
        if gone and not self.options.dry_run:
            with self.e.store.begin() as conn:
                taskbudget.record(conn, self.e.stream, self.run_id, gone, {}, {})

    def _settle_task_budget(self, status: RunStatus) -> None:
        """At the end of a run: what waits now (the run record says so), and the staging
        mark (set by a fields-only run, cleared by the run that follows it)."""
        budget = self.planner.budget
        if budget is not None:
            self.counts.tasks_deferred.update(budget.deferred)
        if self.options.dry_run:
            return
        with self.e.store.begin() as conn:
            if budget is not None:
                self.counts.tasks_waiting = Counter(taskbudget.waiting_by_rule(conn, self.e.stream))
            if status in ("succeeded", "completed_with_errors"):
                if self.options.only_fields:
                    self.e.store.meta_put(conn, self.e.staged_key, "fields")
                elif self.follows_staged:
                    self.e.store.meta_put(conn, self.e.staged_key, "")

    # --- one page: assess, plan, record, enqueue ------------------------------------------

    def _process(self, records: list[CrmRecord], mark: Advance | None) -> None:
        page = self._plan_page(records, from_stream=mark is not None)
        if page is not None:
            self._commit_page(page, mark)

    def _after_read(self) -> None:
        """After the stream's last page, before the run's last writes: nothing here (a
        re-tier spread over workers waits for its page units, ``sync.retier``)."""

    def _plan_page(self, records: list[CrmRecord], *, from_stream: bool) -> PagePlans | None:
        """Take a page in, claim its customers, assess it and plan its writes: the part of
        a page that reads only the state of its own customers (a re-tier's workers do it
        side by side). None for a dry run (previewed here)."""
        intake = self.reader.intake(records, from_stream=from_stream, full=self.options.full)
        # claimed before the state is loaded, so no one else changes it while it is used
        taken = self.claims.take({cid: r.modstamp for cid, r in intake.fresh.items()})
        self._supersede(taken.superseded)
        for cid in taken.superseded:
            del intake.fresh[cid]
        self.pool.send_ready()
        with self.e.store.begin() as conn:
            states = load_states(conn, self.e.stream, intake.fresh)
        hashes, planner, fresh = intake.hashes, self.planner, intake.fresh
        for cid in [cid for cid in fresh if self.beside.get(cid) == hashes[cid]]:
            del fresh[cid]  # decided beside an earlier page, as it reads now: read once
            self.counts.read -= 1
        changed = {
            cid: r
            for cid, r in fresh.items()
            if not planner.settled(r, states.get(cid), hashes[cid], cid in taken.repeated)
        }
        try:
            extra, links_for, group = self._households(fresh, changed, states, hashes)
        except RateLimitedError:  # the page is not committed: the next run reads it again
            self.counts.skipped[Skip.DEFERRED] += len(fresh)
            for cid in fresh:
                self.recorder.outcome(cid, Outcome.DEFERRED)
            raise
        for cid, settled in states.items():
            if cid in fresh and cid not in changed:
                planner.count_settled(settled)
        todo = [r for cid, r in fresh.items() if cid in changed] + extra
        assessed = planner.assess(todo, states, links_for)
        kill_point("after_tier")
        self.pool.send_ready()  # not later: planning reads the queue, and must see it settled
        plans = planner.plan(assessed, states, self.dispatcher.in_doubt)
        if self.options.dry_run:
            self._preview(planner.bounded(plans)[0])
            self._progress()
            return None
        return PagePlans(plans, hashes, states, group)

    def _commit_page(self, page: PagePlans, mark: Advance | None) -> None:
        """In one transaction, admit the page's tasks within the run's budgets (the owners'
        open tasks counted there), put its writes in the outbox, record its unchanged
        customers and move the bookmark past it; then send what is ready. Pages are
        committed in the order they were read."""
        planner, hashes, states = self.planner, page.hashes, page.states
        day = self.options.day()
        kill_point("before_commit")
        with self.e.store.begin() as conn:
            if planner.budget is not None:  # decided where it is recorded (sync.taskbudget)
                tasks = (task for p in page.plans for task in p.plan.tasks)
                planner.budget.recount(conn, self.e.stream, day, tasks)
            plans, page_tasks = planner.bounded(page.plans)
            planner.count_planned(plans)
            rows = PageRows()
            to_write = []
            for p in plans:
                digest = hashes[p.customer_id]
                if p.plan:
                    to_write.append((p, planner.decide(p, digest)))
                else:
                    decide = partial(planner.decide, p, digest)
                    state = states.get(p.customer_id)
                    self.recorder.unchanged(p, state, digest, day, decide, rows)
            self.dispatcher.enqueue(conn, to_write, states, rows)
            self.recorder.commit_page(conn, rows, plans, page_tasks, day)
            if page.group is not None:
                household_store.save_links(conn, self.e.stream, page.group, self.run_id)
            kill_point("in_commit")
            if mark is not None:
                self.reader.advance(conn, mark)
            self._checkpoint(conn)
        kill_point("after_commit")
        self._progress()
        self.pool.drain(final=False)
        self.claims.settle(self.recorder.decisions)

    def _checkpoint(self, conn: sa.Connection) -> None:
        """The run record's counts so far, in the page's transaction."""
        runs.checkpoint(conn, self.run_id, self.counts, {})

    def _supersede(self, ids: Collection[str]) -> None:
        """Customers whose record is older than a view someone already processed: counted
        skipped as superseded, never written."""
        for cid in ids:
            self.counts.skipped[Skip.SUPERSEDED] += 1
            self.recorder.outcome(cid, Outcome.SUPERSEDED)

    def _households(
        self,
        fresh: dict[str, CrmRecord],
        changed: dict[str, CrmRecord],
        states: dict[str, CustomerState],
        hashes: dict[str, str],
    ) -> tuple[list[CrmRecord], LinksFor | None, HouseholdGroup | None]:
        """The members of the changed customers' households outside the page, the
        household links to decide the page with, and what to record of them (none, and no
        API call, when the policy turns households off or the connector reads no
        relationships). A member on the page that came back only because of our own write
        is decided again (``changed`` gains it); one outside it is fetched, counted read,
        decided and written like any other, but never moves the bookmark (only the page's
        records do); when a later page of the run reads it unchanged, it is not read or
        decided again.

        The households the store recorded at the last sync widen the read
        (``sync.household_store.StoredLinks``): a member that left a household re-tiers
        the household it left in the same run, and so does a split."""
        policy = self.e.policy
        if policy is None or not changed:
            return [], None, None
        known = household_store.StoredLinks(self.e.store, self.e.stream)
        hh = households.load(
            self.e.connector, list(changed.values()), known, policy, at_hand=fresh.keys()
        )
        if hh is None:
            return [], None, None
        for link in hh.group.links:
            if link.customer_id in fresh:
                changed.setdefault(link.customer_id, fresh[link.customer_id])
        for cid in hh.group.extra_ids & fresh.keys():  # left a household, on the page
            changed.setdefault(cid, fresh[cid])
        extra = list({r.profile.id: r for r in hh.extra}.values())
        self.counts.read += len(extra)
        gone = self.claims.take({r.profile.id: r.modstamp for r in extra}).superseded
        self._supersede(gone)
        extra = [r for r in extra if r.profile.id not in gone]
        for r in extra:
            hashes[r.profile.id] = self.beside[r.profile.id] = input_hash(
                r.profile, self.e.policy_version
            )
        if extra:
            with self.e.store.begin() as conn:
                states.update(load_states(conn, self.e.stream, [r.profile.id for r in extra]))
        return extra, partial(hh.links_for, policy=policy), hh.group

    def _preview(self, plans: list[Planned]) -> None:
        for cid, kind, detail in self.planner.preview(plans):
            self.preview.append(PlannedWrite(cid, kind, detail))
        for p in plans:
            for item in items_of(p.plan):
                self.pool.tally.add(item)
