"""The sync run's recorder: customer state, answered writes, audit rows, dead letters.

Everything a run keeps goes through here, in the transaction the run opens for it:

- a page's commit: unchanged customers' state (hysteresis needs a decision that moved
  even when nothing is written), pending decisions, task budgets, stored inputs, audit;
- the answered write calls that landed together: items done, tasks and memberships made,
  retries scheduled or dead-lettered, and each decision whose writes are all answered
  promoted to the customer's committed state with its ``tier_change`` audit row.

It also keeps the run's outcome per customer and the counts the run record reconciles.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date

import sqlalchemy as sa

from connectors.contract import WriteResult
from sync import outbox, taskbudget
from sync.audit import AuditEntry, AuditKeys, Trigger, append
from sync.audit_rows import AuditRows
from sync.days import day_text
from sync.effect_rows import effect_label, effect_row
from sync.inputs import save_inputs
from sync.killpoints import kill_point
from sync.outbox import OutboxItem
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
from sync.state import CustomerState, save_side_effects, save_states
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


@dataclass
class PageRows:
    """What one page's commit writes besides the outbox; and the outcomes its unchanged
    customers had before it, given back should its transaction fail (``Recorder.page``)."""

    states: list[StateRow] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    outcomes_before: dict[str, Outcome | None] = field(default_factory=dict)


@dataclass
class _Batch:
    """What recording a batch of answered calls changes in memory, kept aside until its
    transaction has committed (``Recorder.record_results``)."""

    counts: RunCounts = field(default_factory=RunCounts)  # added to the run's
    outcomes: list[tuple[str, Outcome]] = field(default_factory=list)
    decisions: dict[str, Decision] = field(default_factory=dict)  # working copies
    finished: set[str] = field(default_factory=set)  # customers whose decision it promoted
    lettered: set[str] = field(default_factory=set)  # customers it left with open letters
    resolved: set[str] = field(default_factory=set)  # customers whose letters it closed
    letters: list[tuple[str, str, str]] = field(default_factory=list)  # ref, kind, code


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
        self._refs: dict[str, str] = {}  # pseudonym cache, bounded (``_REF_CACHE``)
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
        """The rows of one page's commit, entered around the page's transaction. Its
        unchanged customers (``unchanged``) count at once, so that the checkpoint committed
        with the page holds them; should the transaction fail, their counts and outcomes
        are taken back, so that the run's counts say what the database holds (as those of
        ``record_results``). Only ``unchanged`` changes these counts inside the page's
        transaction: what they were when it began is what they go back to."""
        counts = self.counts
        unchanged, changes = counts.unchanged, counts.changes.copy()
        rows = PageRows()
        try:
            yield rows
        except BaseException:
            counts.unchanged = unchanged
            counts.changes.clear()
            counts.changes.update(changes)
            for cid, before in rows.outcomes_before.items():
                if before is None:
                    self.outcomes.pop(cid, None)
                else:
                    self.outcomes[cid] = before
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
        ``decide`` builds the full decision, wanted only for a tier change's audit row.
        Counted at once, taken back if the page's transaction fails (``page``)."""
        cid = planned.customer_id
        self.counts.unchanged += 1
        if self.keep_outcomes:
            rows.outcomes_before.setdefault(cid, self.outcomes.get(cid))
            self.outcomes[cid] = Outcome.UNCHANGED
        if cid in self.decisions:
            return  # an earlier read of this run queued writes; that decision stands
        tiers = tiers_of(planned.summary)  # the summary has all but the actions
        below = planned.summary["below_floor_since"]
        if (
            state is not None
            and (state.tiers, state.below_floor_since, state.input_hash) == (tiers, below, digest)
            and state.assessed_at == day
        ):
            return
        rows.states.append(
            {
                "customer_id": cid,
                "pseudonym": self.ref(cid),
                "tiers": tiers,
                "assessed_at": day.isoformat(),
                "below_floor_since": day_text(below),
                "input_hash": digest,
                "run_id": self.run_id,
            }
        )
        old = state.tiers if state else None
        if old != tiers:
            _count_change(self.counts, old, tiers)
            rows.audit.extend(self.audit_rows.tier_change(cid, old, tiers, decide()))

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

    # --- answered writes ----------------------------------------------------------------

    def record_results(self, calls: list[Answered]) -> list[OutboxItem]:
        """Record the answers of the calls that landed together (one transaction, so one
        commit where each call had its own: a full first sync's calls land a dozen at a
        time between pages); the items to send again later.

        The rows are those of recording each call alone, in turn: a decision its answers
        complete is promoted with it, the audit rows keep that order, and a call's resolved
        dead letters are closed before a later call can open new ones. Only the statements
        are grouped (items done, side effects, states and audit rows once, at the end).
        Memory (counts, outcomes, the open decisions, customers with letters) changes only
        once the transaction has committed: a commit that fails leaves both as they were,
        so the run's counts say what the database holds."""
        batch = _Batch()
        retries: list[OutboxItem] = []
        audit_rows: list[AuditEntry] = []
        effects: list[dict[str, Json]] = []
        done: list[int] = []
        promoted: list[StateRow] = []
        with self.store.begin() as conn:
            for items, results in calls:
                for item, result in zip(items, results, strict=True):
                    decision = self._open(batch, item.customer_id)
                    if result.ok:
                        done.append(item.id)
                        batch.counts.writes[item.kind] += 1
                        if item.kind != "field_update":
                            batch.counts.effects[effect_label(item)] += 1
                            self._side_effect(item, decision, effects, audit_rows)
                        if decision:
                            decision.outstanding.discard(item.id)
                    elif result.retryable and item.attempts + 1 < self.retry_attempts:
                        attempts = item.attempts + 1
                        outbox.set_status(
                            conn, [item.id], "pending", attempts=attempts, error=result.error_code
                        )
                        retries.append(replace(item, attempts=attempts))
                    else:
                        self._dead_letter(conn, batch, item, result, decision)
                finished = {
                    d.customer_id: d
                    for d in (self._open(batch, item.customer_id) for item in items)
                    if d is not None and not d.outstanding
                }
                resolved = self.finalize(batch, list(finished.values()), promoted, audit_rows)
                if resolved:
                    outbox.resolve_dead_letters(conn, self.stream, resolved)
            outbox.set_status(conn, done, "done")
            save_side_effects(conn, self.stream, effects)
            kill_point("in_record")
            save_states(conn, self.stream, promoted)
            append(conn, audit_rows, self.audit_keys)
        self._apply(batch)
        return retries

    def _open(self, batch: _Batch, cid: str) -> Decision | None:
        """The customer's open decision as this batch has it: a copy, so that a commit
        that fails leaves the run's decision as it was; None once the batch promoted it."""
        if cid in batch.finished:
            return None
        decision = batch.decisions.get(cid)
        if decision is None:
            shared = self.decisions.get(cid)
            if shared is None:
                return None
            decision = batch.decisions[cid] = replace(shared, outstanding=set(shared.outstanding))
        return decision

    def _apply(self, batch: _Batch) -> None:
        """The committed batch's changes to memory (``record_results``)."""
        self.counts.writes.update(batch.counts.writes)
        self.counts.effects.update(batch.counts.effects)
        self.counts.write_failures.update(batch.counts.write_failures)
        self.counts.changes.update(batch.counts.changes)
        self.counts.written += batch.counts.written
        self.counts.dead_lettered += batch.counts.dead_lettered
        self.counts.recovered += batch.counts.recovered
        for cid, outcome in batch.outcomes:
            self.outcome(cid, outcome)
        for cid, copy in batch.decisions.items():
            if cid in batch.finished:
                self.decisions.pop(cid, None)
                continue
            shared = self.decisions[cid]  # the planner's object: changed in place
            shared.outstanding, shared.dead = copy.outstanding, copy.dead
            shared.field_dead = copy.field_dead
        self.dead_letter_customers.difference_update(batch.resolved)
        self.dead_letter_customers.update(batch.lettered)
        for ref, kind, code in batch.letters:
            log.warning("write dead-lettered", extra={"customer": ref, "kind": kind, "code": code})

    def _dead_letter(
        self,
        conn: sa.Connection,
        batch: _Batch,
        item: OutboxItem,
        result: WriteResult,
        decision: Decision | None,
    ) -> None:
        code = result.error_code or "UNKNOWN"
        outbox.set_status(conn, [item.id], "dead", attempts=item.attempts + 1, error=code)
        dead = replace(item, attempts=item.attempts + 1)
        batch.lettered.add(item.customer_id)
        outbox.dead_letter(
            conn,
            self.stream,
            dead,
            pseudonym=self.ref(item.customer_id),
            error_code=code,
            reason=_one_line(result.message or code),
            run_id=self.run_id,
        )
        batch.counts.write_failures[item.kind] += 1
        batch.letters.append((self.ref(item.customer_id), item.kind, code))
        if decision is not None:
            decision.outstanding.discard(item.id)
            decision.dead = True
            decision.field_dead = decision.field_dead or item.kind == "field_update"

    def _side_effect(
        self,
        item: OutboxItem,
        decision: Decision | None,
        effects: list[dict[str, Json]],
        audit_rows: list[AuditEntry],
    ) -> None:
        """A task made or closed, or a membership changed: on record, and audited."""
        row, event, new = effect_row(item, self.run_id)
        effects.append(row)
        pending = decision.pending if decision else None
        audit_rows.append(
            self.audit_rows.entry(item.customer_id, event, None, new, pending, item=item)
        )

    def finalize(
        self,
        batch: _Batch,
        decisions: list[Decision],
        rows: list[StateRow],
        audit_rows: list[AuditEntry],
    ) -> list[str]:
        """These decisions' writes are all answered: they become the committed state (their
        ``rows``, their audit rows); the customers whose open dead letters they resolve."""
        resolved: list[str] = []
        for decision in decisions:
            cid = decision.customer_id
            batch.finished.add(cid)
            pending, state = decision.pending, decision.base
            row: StateRow = {"customer_id": cid, "pseudonym": self.ref(cid), "pending": None}
            if pending is not None and not decision.field_dead:
                row.update(
                    tiers=pending.tiers,
                    fields=pending.fields,
                    assessed_at=day_text(pending.assessed_at),
                    below_floor_since=day_text(pending.below_floor_since),
                    input_hash=pending.input_hash,
                )
                old = state.tiers if state else None
                if old != pending.tiers:
                    _count_change(batch.counts, old, pending.tiers)
                    audit_rows.extend(self.audit_rows.tier_change(cid, old, pending.tiers, pending))
            if decision.dead:
                # Part of this decision never reached the CRM while the rest may have (a
                # dead field write beside campaign moves that landed): the committed state
                # no longer says what the CRM holds, so the customer's next read must plan
                # again, not pass as settled on unchanged inputs.
                row["input_hash"] = None
            rows.append(row)
            if not decision.dead and (cid in self.dead_letter_customers or cid in batch.lettered):
                resolved.append(cid)
                batch.resolved.add(cid)
                batch.lettered.discard(cid)
            if decision.this_run:
                if decision.dead:
                    batch.counts.dead_lettered += 1
                else:
                    batch.counts.written += 1
                outcome = Outcome.DEAD_LETTERED if decision.dead else Outcome.WRITTEN
                batch.outcomes.append((cid, outcome))
            else:
                batch.counts.recovered += 1
        return resolved

    def defer_open_decisions(self) -> None:
        """A paused run leaves this run's open decisions to the next: count them skipped."""
        for decision in self.decisions.values():
            if decision.this_run:
                self.counts.skipped[Skip.DEFERRED] += 1
                self.outcome(decision.customer_id, Outcome.DEFERRED)


def _count_change(counts: RunCounts, old: Mapping[str, str] | None, new: Mapping[str, str]) -> None:
    before = (old or {}).get("value_tier", "none")
    after = new.get("value_tier", "none")
    if before != after:
        counts.changes[f"{before} -> {after}"] += 1


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
