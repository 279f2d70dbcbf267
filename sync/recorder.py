"""The sync run's recorder: customer state, answered writes, audit rows, dead letters.

Everything a run keeps goes through here, in the transaction the run opens for it:

- a page's commit: unchanged customers' state (hysteresis needs a decision that moved
  even when nothing is written), pending decisions, task budgets, stored inputs, audit;
- the answered write calls that landed together: items done, tasks and memberships made,
  tasks closed (off their owners' caps), retries scheduled or dead-lettered, and each
  decision whose writes are all answered promoted to the customer's committed state with
  its ``tier_change`` audit row (and its ``override`` row when the override's outcome is
  new for the customer).

It also keeps the run's outcome per customer and the counts the run record reconciles.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass, field, fields
from datetime import date

import sqlalchemy as sa

from connectors.contract import WriteResult
from sync import outbox, taskbudget
from sync.answer_batch import AnswerBatch, count_change
from sync.audit import AuditEntry, AuditKeys, Trigger, append
from sync.audit_rows import AuditRows
from sync.days import day_text
from sync.inputs import save_inputs
from sync.killpoints import kill_point
from sync.maybe_made import MaybeMade
from sync.outbox import OutboxItem
from sync.overrides import is_new, override_trail
from sync.planner import tiers_of
from sync.records import (
    Decision,
    Json,
    Outcome,
    PageTasks,
    PendingDecision,
    Planned,
    Skip,
)
from sync.runs import RunCounts
from sync.state import CustomerState, mark_in_doubt, save_side_effects, save_states
from sync.store import StateStore
from tiering_core.privacy import pseudonym

log = logging.getLogger(__name__)

#: pseudonyms the recorder keeps at most: a customer's are asked a few times between its
#: page and its answered writes, and a run of a million customers must not keep them all
_REF_CACHE = 50_000

#: a ``customers`` row to upsert (``sync.state.save_states``): column -> stored value
StateRow = dict[str, Json]
#: one write call's items and its answers, one per item
Answered = tuple[list[OutboxItem], list[WriteResult]]
#: every count a run keeps (``Recorder.page`` puts them all back when a page's commit fails;
#: ``Recorder._apply`` adds a committed batch's to them)
_COUNT_FIELDS = tuple(f.name for f in fields(RunCounts))

#: ``Recorder.on_record``: the recording's connection, what it adds to the counts, and the
#: outcomes it gives (customer, outcome)
RecordHook = Callable[[sa.Connection, RunCounts, list[tuple[str, Outcome]]], None]


@dataclass
class PageRows:
    """What one page's commit writes besides the outbox; and the outcomes its unchanged
    customers had before it, given back should its transaction fail (``Recorder.page``)."""

    states: list[StateRow] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    outcomes_before: dict[str, Outcome | None] = field(default_factory=dict)
    # unchanged customers with open letters: their newer decision writes nothing
    superseded_letters: list[str] = field(default_factory=list)


class Recorder:
    """Keeps one run's results; the decisions it promotes are shared with the planner."""

    def __init__(
        self,
        store: StateStore,
        stream: str,
        run_id: str,
        *,
        key: bytes,
        audit_keys: AuditKeys,
        trigger: Trigger,
        actor: str,
        retry_attempts: int,
        decisions: dict[str, Decision],
        maybe_made: MaybeMade,
        keep_outcomes: bool = True,
    ) -> None:
        self.store = store
        self.stream = stream
        self.run_id = run_id
        self.key = key
        self.audit_keys = audit_keys
        self.retry_attempts = retry_attempts
        self.decisions = decisions
        self.counts = RunCounts()
        # customer id -> outcome, for callers that ask per customer (the webhook worker);
        # a scheduled run's counts say the same without a million entries (``outcome``)
        self.keep_outcomes = keep_outcomes
        self.outcomes: dict[str, Outcome] = {}
        self.dead_letter_customers: set[str] = set()  # with open letters: resolve on success
        #: whether the CRM may hold an item's task already (the run's one rule, shared with
        #: its pool and dispatcher: ``sync.maybe_made``): a refusal of such a task's write
        #: does not free its place on its owner's cap (``AnswerBatch``)
        self.maybe_made = maybe_made
        #: ids of writes sent (in flight, or answered and not yet recorded) that a newer
        #: plan of their customer no longer wants (``Dispatcher.enqueue``): that plan has
        #: said what it wants of them, so a failure of one is superseded, never sent again
        #: (``AnswerBatch``): a retry queued behind the newer plan's withdrawal would undo it
        self.withdrawn: set[int] = set()
        self._refs: dict[str, str] = {}  # pseudonym cache, bounded (``_REF_CACHE``)
        #: runs in each recording's transaction with what it adds to the counts and
        #: outcomes: a re-tier's page unit keeps its result there (``sync.retier``), so
        #: what it recorded counts even when its worker dies before it is done
        self.on_record: RecordHook | None = None
        self.audit_rows = AuditRows(stream, run_id, trigger, actor, self.ref)

    def ref(self, customer_id: str) -> str:
        ref = self._refs.get(customer_id)
        if ref is None:
            if len(self._refs) >= _REF_CACHE:
                self._refs.clear()  # the customers in hand are asked again within a page
            ref = self._refs[customer_id] = pseudonym(customer_id, self.key)
        return ref

    def outcome(self, customer_id: str, outcome: Outcome) -> None:
        """Note what the run did with a customer (kept only when the run keeps outcomes)."""
        if self.keep_outcomes:
            self.outcomes[customer_id] = outcome

    # --- a page's commit ----------------------------------------------------------------

    @contextmanager
    def page(self) -> Iterator[PageRows]:
        """The rows of one page's commit, entered around the page's transaction. What the
        commit step counts (its unchanged customers, ``unchanged``; its planned tasks and
        memberships, ``PagePlanner.count_planned``; a customer's superseded decision,
        ``Dispatcher.enqueue``) counts at once, so that the checkpoint committed with the
        page holds it; should the transaction fail, every count goes back to what it was
        when the transaction began, and the unchanged customers' outcomes too, so that the
        run's counts say what the database holds (as those of ``record_results``); the
        task budget's admissions and deferrals go back likewise (``taskbudget.kept``), and
        so do the writes in flight its plans withdrew (``withdrawn``).
        Counts made while the page was read and planned, before this (``read``, ``tiered``,
        a settled customer's ``PagePlanner.count_settled``, superseded and assess errors),
        stay: they say what the run did with what it read, which a failed commit does not
        undo (a settled customer's state already holds its decision, a superseded one's
        claim was refused in a transaction of its own), and the run, which stops there,
        is recorded ``failed`` with the commit's error, its counts not reconciled."""
        counts = self.counts
        before = deepcopy(counts)
        withdrawn = set(self.withdrawn)
        rows = PageRows()
        try:
            yield rows
            self.dead_letter_customers.difference_update(rows.superseded_letters)
        except BaseException:
            self.withdrawn.clear()  # as it was: the page's newer plans are not queued
            self.withdrawn.update(withdrawn)
            for name in _COUNT_FIELDS:
                setattr(counts, name, getattr(before, name))
            for cid, before_outcome in rows.outcomes_before.items():
                if before_outcome is None:
                    self.outcomes.pop(cid, None)
                else:
                    self.outcomes[cid] = before_outcome
            raise

    def unchanged(
        self,
        planned: Planned,
        state: CustomerState | None,
        digest: str,
        day: date,
        decide: Callable[[], PendingDecision],
        rows: PageRows,
    ) -> None:
        """Nothing to write; still keep the decision (hysteresis needs it) if it moved.
        ``decide`` builds the full decision, wanted only for an audit row: a tier change's,
        or an override's whose outcome is new for the customer. The customer's open dead
        letters are superseded (``commit_page``): no write this decision wants is left to
        retry, and re-fetching it every run would change nothing.
        Counted at once, taken back if the page's transaction fails (``page``)."""
        cid = planned.customer_id
        self.counts.unchanged += 1
        if self.keep_outcomes:
            rows.outcomes_before.setdefault(cid, self.outcomes.get(cid))
            self.outcomes[cid] = Outcome.UNCHANGED
        if cid in self.decisions:
            return  # an earlier read of this run queued writes; that decision stands
        if cid in self.dead_letter_customers:  # no write it wants is left to retry
            rows.superseded_letters.append(cid)
        tiers = tiers_of(planned.summary)  # the summary has all but the actions
        below = planned.summary["below_floor_since"]
        parked = state is not None and state.pending is not None  # a withdrawn decision's
        # what the decision makes of a tier override, against the customer's last override
        # row: a refusal, or an applied override that leaves the tiers as they were, is a
        # decision with no tier change, and still gets its row once (docs/overrides.md)
        trail = override_trail(planned.record.profile, planned.summary)
        recorded = state.override if state is not None else None
        new_override = is_new(recorded, trail)
        if (
            state is not None
            and (state.tiers, state.below_floor_since, state.input_hash) == (tiers, below, digest)
            and state.assessed_at == day
            and not parked
            and not new_override
        ):
            return
        row: StateRow = {
            "customer_id": cid,
            "pseudonym": self.ref(cid),
            "tiers": tiers,
            "assessed_at": day.isoformat(),
            "below_floor_since": day_text(below),
            "input_hash": digest,
            "run_id": self.run_id,
        }
        if parked:
            row["pending"] = None
        old = state.tiers if state else None
        if old != tiers or new_override:
            decision = decide()
            if old != tiers:
                count_change(self.counts, old, tiers)
                rows.audit.append(self.audit_rows.tier_change(cid, old, tiers, decision))
            if new_override:
                row["override"] = trail
                rows.audit.append(self.audit_rows.override(cid, recorded, decision))
        rows.states.append(row)

    def pending_row(self, cid: str, pending: PendingDecision) -> StateRow:
        """The state row that parks a decision while its writes are outstanding."""
        return {
            "customer_id": cid,
            "pseudonym": self.ref(cid),
            "pending": pending.to_json(),
            "run_id": self.run_id,
        }

    def commit_page(
        self,
        conn: sa.Connection,
        rows: PageRows,
        plans: list[Planned],
        page_tasks: PageTasks | None,
        day: date,
    ) -> None:
        if page_tasks is not None:
            taskbudget.record(
                conn,
                self.stream,
                self.run_id,
                page_tasks.planned,
                page_tasks.admitted,
                page_tasks.waiting,
            )
        save_states(conn, self.stream, rows.states)
        save_inputs(conn, self.stream, [p.record for p in plans], day.isoformat())
        append(conn, rows.audit, self.audit_keys)
        outbox.resolve_dead_letters(conn, self.stream, rows.superseded_letters, "superseded")

    # --- answered writes ----------------------------------------------------------------

    def record_results(self, calls: list[Answered]) -> list[OutboxItem]:
        """Record the answers of the calls that landed together (one transaction, so one
        commit where each call had its own: a full first sync's calls land a dozen at a
        time between pages); the items to send again later.

        The rows are those of recording each call alone, in turn (``sync.answer_batch``);
        only the statements are grouped. Memory (counts, outcomes, the open decisions,
        customers with letters) changes only once the transaction has committed: a commit
        that fails leaves both as they were, so the run's counts say what the database
        holds."""
        batch = AnswerBatch(self)
        with self.store.begin() as conn:
            for items, results in calls:
                batch.call(conn, items, results)
            outbox.set_status(conn, batch.done, "done")
            # before the rows of tasks made or closed: a write of it answered since wins
            mark_in_doubt(conn, self.stream, batch.doubted, self.run_id)
            save_side_effects(conn, self.stream, batch.effects)
            # a task the CRM confirmed closed, or refused to make, is not open: it stops
            # counting against its owner's cap now, not at its due date (``sync.taskbudget``)
            taskbudget.unmake(conn, self.stream, batch.not_open)
            kill_point("in_record")
            save_states(conn, self.stream, batch.states)
            append(conn, batch.audit, self.audit_keys)
            if self.on_record is not None:
                self.on_record(conn, batch.counts, batch.outcomes)
        self._apply(batch)
        return batch.retries

    def _apply(self, batch: AnswerBatch) -> None:
        """The committed batch's changes to memory (``record_results``)."""
        # every count added, not a list of those a batch makes today: a count a batch
        # comes to make can never be dropped here (the others are zero, adding nothing)
        for name in _COUNT_FIELDS:
            mine, theirs = getattr(self.counts, name), getattr(batch.counts, name)
            if isinstance(mine, Counter):
                mine.update(theirs)
            else:
                setattr(self.counts, name, mine + theirs)
        if self.keep_outcomes:
            self.outcomes.update(batch.outcomes)
        for cid, copy in batch.decisions.items():
            if cid in batch.finished:
                self.decisions.pop(cid, None)
                continue
            shared = copy.shared  # the planner's object: changed in place
            shared.outstanding, shared.dead = copy.outstanding, copy.dead
            shared.field_dead = copy.field_dead
        self.withdrawn.difference_update(batch.answered)
        self.dead_letter_customers.difference_update(batch.resolved)
        self.dead_letter_customers.update(batch.lettered)
        for ref, kind, code in batch.letters:
            log.warning("write dead-lettered", extra={"customer": ref, "kind": kind, "code": code})

    def defer_open_decisions(self) -> None:
        """A paused run leaves this run's open decisions to the next: count them skipped."""
        for decision in self.decisions.values():
            if decision.this_run:
                self.counts.skipped[Skip.DEFERRED] += 1
                self.outcome(decision.customer_id, Outcome.DEFERRED)
