"""One batch of the CRM's answers as the recorder records it (``Recorder.record_results``).

The calls that landed together are recorded in one transaction, and their rows are those of
recording each call alone, in turn: a decision its answers complete is promoted with it, the
audit rows keep that order, and a call's resolved dead letters are closed before a later
call can open new ones. Only the statements are grouped (items done, side effects, states
and audit rows once, at the end: ``AnswerBatch`` gathers them).

What the batch changes in memory (counts, outcomes, the open decisions, customers with
letters) it keeps aside, for the recorder to apply once the transaction has committed: a
commit that fails leaves the run as it was. It never changes a run's decision: it works on
its own copy of what answers change of one (``BatchDecision``), made when the decision is
first answered in the batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import sqlalchemy as sa

from connectors.contract import WriteResult
from connectors.errors import UNANSWERED
from sync import outbox
from sync.audit import AuditEntry
from sync.days import day_text
from sync.effect_rows import effect_label, effect_row, stays_in_doubt
from sync.outbox import OutboxItem
from sync.overrides import is_new
from sync.records import STOPPED, Decision, Json, Outcome
from sync.runs import RunCounts
from sync.state import doubtable

if TYPE_CHECKING:
    from sync.recorder import Recorder


@dataclass(slots=True)
class BatchDecision:
    """An open decision as a batch has it: the run's (``shared``, left as it is until the
    batch has committed) and the batch's copy of what answers change of it."""

    shared: Decision
    outstanding: set[int]
    dead: bool
    field_dead: bool


class AnswerBatch:
    """The rows one batch of answered calls writes and what it changes in memory."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        # rows, written once at the end of the transaction
        self.done: list[int] = []  # outbox items answered ok
        self.effects: list[dict[str, Json]] = []  # ``side_effects`` rows
        self.states: list[dict[str, Json]] = []  # promoted decisions' ``customers`` rows
        self.audit: list[AuditEntry] = []
        self.retries: list[OutboxItem] = []  # to send again later, their attempts counted
        # keys of tasks no longer open in the CRM, off their owners' caps: closed there, or
        # refused outright at the first attempt (a clean refusal: the CRM holds no such
        # task; one that failed retryably before may hold it, and keeps counting, as does
        # one the CRM may hold from another write of it: ``Recorder.maybe_made``); not one
        # in doubt whose closure found nothing (``stays_in_doubt``: it may land yet)
        self.not_open: list[str] = []
        # tasks and membership adds whose call went unanswered: in doubt until a write of
        # them is answered (``sync.state.mark_in_doubt``), whatever becomes of the item
        self.doubted: list[OutboxItem] = []
        # writes a newer plan of their customer withdrew while they were sent
        # (``Recorder.withdrawn``), answered here: the recorder forgets them once committed
        self.answered: list[int] = []
        # memory, applied once committed (``Recorder.record_results``)
        self.counts = RunCounts()  # added to the run's
        self.outcomes: list[tuple[str, Outcome]] = []
        self.decisions: dict[str, BatchDecision] = {}
        self.finished: set[str] = set()  # customers whose decision it promoted
        self.lettered: set[str] = set()  # customers it left with open letters
        self.resolved: set[str] = set()  # customers whose letters it closed
        self.letters: list[tuple[str, str, str]] = []  # ref, kind, code

    def call(
        self, conn: sa.Connection, items: list[OutboxItem], results: list[WriteResult]
    ) -> None:
        """One call's answers, item by item; then the decisions they completed promoted,
        and the dead letters that closes."""
        touched: dict[str, BatchDecision | None] = {}  # in the order the call first names them
        writes, retry_attempts = self.counts.writes, self.recorder.retry_attempts
        withdrawn = self.recorder.withdrawn
        for item, result in zip(items, results, strict=True):
            cid = item.customer_id
            superseded = item.id in withdrawn  # rarely: a customer read again meanwhile
            if superseded:
                self.answered.append(item.id)
            if cid in touched:
                decision = touched[cid]
            else:
                decision = touched[cid] = self._open(cid)
            if result.ok:
                self.done.append(item.id)
                writes[item.kind] += 1
                if item.kind != "field_update":
                    self.counts.effects[effect_label(item)] += 1
                    self._side_effect(item, decision, result.absent)
                    if item.kind == "task_close" and not stays_in_doubt(item, result.absent):
                        self.not_open.append(item.key)
                if decision is not None:
                    decision.outstanding.discard(item.id)
                continue
            stopped = result.error_code == STOPPED  # unanswered, no attempt counted
            if stopped:
                result = replace(result, error_code=UNANSWERED)
            unanswered = result.error_code == UNANSWERED
            if unanswered and doubtable(item):
                self.doubted.append(item)
            first = not item.attempts and not self.recorder.maybe_made(item)
            if superseded:
                self._superseded(conn, item, result, decision, first)
            elif result.retryable and (stopped or item.attempts + 1 < retry_attempts):
                attempts = item.attempts + (not stopped)
                outbox.set_status(
                    conn, [item.id], "pending", attempts=attempts, error=result.error_code
                )
                unanswered = unanswered or item.unanswered
                self.retries.append(replace(item, attempts=attempts, unanswered=unanswered))
            else:
                if item.kind == "task" and not result.retryable and first:
                    self.not_open.append(item.key)
                self._dead_letter(conn, item, result, decision)
        finished = [d for d in touched.values() if d is not None and not d.outstanding]
        resolved = self._promote(finished)
        if resolved:
            outbox.resolve_dead_letters(conn, self.recorder.stream, resolved)

    def _open(self, cid: str) -> BatchDecision | None:
        """The customer's open decision as this batch has it; None once it promoted it."""
        if cid in self.finished:
            return None
        decision = self.decisions.get(cid)
        if decision is None:
            shared = self.recorder.decisions.get(cid)
            if shared is None:
                return None
            decision = self.decisions[cid] = BatchDecision(
                shared, set(shared.outstanding), shared.dead, shared.field_dead
            )
        return decision

    def _superseded(
        self,
        conn: sa.Connection,
        item: OutboxItem,
        result: WriteResult,
        decision: BatchDecision | None,
        first: bool,
    ) -> None:
        """A failed write its customer's newer plan no longer wants (``Recorder.withdrawn``):
        neither sent again nor dead-lettered, but superseded, as a queued one would have
        been (``Dispatcher.supersede``). The newer plan, made while it was sent, already
        says what it wants of it (a sanctioned customer's task closed, its membership
        removed, as in doubt: ``Dispatcher.in_doubt``); a retry queued behind that would
        make them again. Unanswered, it stays in doubt on record (``doubted``), for a later
        plan to withdraw should the lost call have landed. A task the CRM answered with a
        refusal at its first attempt (not ``maybe_made``) never existed: it leaves its
        owner's cap; any other keeps its place until a closure finds it or it falls due."""
        code = result.error_code or "UNKNOWN"
        attempts = item.attempts + 1
        outbox.set_status(conn, [item.id], "superseded", attempts=attempts, error=code)
        if item.kind == "task" and first and code != UNANSWERED:
            self.not_open.append(item.key)
        if decision is not None:
            decision.outstanding.discard(item.id)

    def _dead_letter(
        self,
        conn: sa.Connection,
        item: OutboxItem,
        result: WriteResult,
        decision: BatchDecision | None,
    ) -> None:
        r = self.recorder
        ref = r.ref(item.customer_id)
        code = result.error_code or "UNKNOWN"
        outbox.set_status(conn, [item.id], "dead", attempts=item.attempts + 1, error=code)
        dead = replace(item, attempts=item.attempts + 1)
        self.lettered.add(item.customer_id)
        outbox.dead_letter(
            conn,
            r.stream,
            dead,
            pseudonym=ref,
            error_code=code,
            reason=_one_line(result.message or code),
            run_id=r.run_id,
        )
        self.counts.write_failures[item.kind] += 1
        self.letters.append((ref, item.kind, code))
        if decision is not None:
            decision.outstanding.discard(item.id)
            decision.dead = True
            decision.field_dead = decision.field_dead or item.kind == "field_update"

    def _side_effect(self, item: OutboxItem, decision: BatchDecision | None, absent: bool) -> None:
        """A task made or closed (``absent``: not held by the CRM), or a membership
        changed: on record, and audited."""
        row, event, new = effect_row(item, self.recorder.run_id, absent)
        self.effects.append(row)
        pending = decision.shared.pending if decision else None
        self.audit.append(
            self.recorder.audit_rows.entry(item.customer_id, event, None, new, pending, item=item)
        )

    def _promote(self, decisions: list[BatchDecision]) -> list[str]:
        """These decisions' writes are all answered: they become the committed state (their
        ``customers`` rows, their audit rows: ``tier_change`` when the tiers moved,
        ``override`` when the override's outcome is new for the customer); the customers
        whose open dead letters they resolve."""
        r, counts = self.recorder, self.counts
        tier_change, ref = r.audit_rows.tier_change, r.ref
        resolved: list[str] = []
        for decision in decisions:
            shared, dead = decision.shared, decision.dead
            cid, pending = shared.customer_id, shared.pending
            self.finished.add(cid)
            # Part of a dead decision never reached the CRM while the rest may have (a dead
            # field write beside campaign moves that landed): the committed state no longer
            # says what the CRM holds, so the customer's next read must plan again (no
            # input hash), not pass as settled on unchanged inputs.
            row: dict[str, Json]
            if pending is not None and not decision.field_dead:
                row = {
                    "customer_id": cid,
                    "pseudonym": ref(cid),
                    "pending": None,
                    "tiers": pending.tiers,
                    "fields": pending.fields,
                    "assessed_at": day_text(pending.assessed_at),
                    "below_floor_since": day_text(pending.below_floor_since),
                    "input_hash": None if dead else pending.input_hash,
                }
                base = shared.base
                old = base.tiers if base else None
                if old != pending.tiers:
                    count_change(counts, old, pending.tiers)
                    self.audit.append(tier_change(cid, old, pending.tiers, pending))
                recorded = base.override if base else None
                if is_new(recorded, pending.override):
                    row["override"] = pending.override
                    self.audit.append(r.audit_rows.override(cid, recorded, pending))
            else:
                row = {"customer_id": cid, "pseudonym": ref(cid), "pending": None}
                if dead:
                    row["input_hash"] = None
            self.states.append(row)
            # Letters open before this batch only: one the batch opened marked the
            # customer's decision dead, or the customer had none left open to promote.
            if not dead and cid in r.dead_letter_customers:
                resolved.append(cid)
                self.resolved.add(cid)
            if shared.this_run:
                if dead:
                    counts.dead_lettered += 1
                    self.outcomes.append((cid, Outcome.DEAD_LETTERED))
                else:
                    counts.written += 1
                    self.outcomes.append((cid, Outcome.WRITTEN))
            else:
                counts.recovered += 1
        return resolved


def count_change(counts: RunCounts, old: Mapping[str, str] | None, new: Mapping[str, str]) -> None:
    """A decision moved the customer's value tier (``RunCounts.changes``)."""
    before = (old or {}).get("value_tier", "none")
    after = new.get("value_tier", "none")
    if before != after:
        counts.changes[f"{before} -> {after}"] += 1


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
