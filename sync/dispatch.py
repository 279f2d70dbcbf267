"""The sync run's dispatcher: decisions become outbox items in the write pool's queue.

A page's plans are put in the outbox in the page's transaction. A customer read twice in a
run keeps only its newest decision: queued items the new plan no longer wants are
superseded, identical ones are reused, and a write identical to one in flight is not sent
twice. Writes that may already have reached the CRM (in flight, a call of them
unanswered, queued by a run that died: ``outbox.may_have_landed``) cannot be undone by
superseding them; ``in_doubt`` tells the planner which memberships and tasks those are, so
the new plan says what it wants of them (a restricted customer's sales tasks among them are
closed, ``planner.closures_of``). Tasks whose call went unanswered before stay in doubt on
record (``sync.state.mark_in_doubt``), in the customer's state the planner reads. A write in
flight the new plan no longer wants is withdrawn (``Recorder.withdrawn``): should its call
fail, it is superseded, not retried behind the new plan's closure or removal.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import sqlalchemy as sa

from sync import outbox, taskbudget
from sync.maybe_made import MaybeMade
from sync.outbox import NewItem, OutboxItem
from sync.planner import CustomerPlan, Doubt
from sync.recorder import PageRows, Recorder
from sync.records import Decision, Json, PendingDecision, Planned, Skip
from sync.state import CustomerState
from sync.taskbudget import Budget
from sync.writepool import WritePool
from sync.written_values import jsonable
from tiering_core.models import TaskAction


class Dispatcher:
    """Moves one run's decisions into the outbox and the write pool."""

    def __init__(
        self,
        pool: WritePool,
        recorder: Recorder,
        stream: str,
        run_id: str,
        trigger: str,
        source_events: dict[str, str],
        budget: Budget | None = None,
    ) -> None:
        self.pool = pool
        self.recorder = recorder
        self.decisions = recorder.decisions
        self.stream = stream
        self.run_id = run_id
        self.trigger = trigger
        self.source_events = source_events
        self.budget = budget  # the planner's: a task superseded unsent gives its share back
        # the run's one rule of what the CRM may hold, which its pool and recorder were
        # built with (``sync.run_parts``): the dispatcher adds what it learns to it
        self.maybe_made: MaybeMade = pool.maybe_made

    def in_doubt(self, cid: str) -> Doubt | None:
        """This customer's outstanding membership and task writes that may already have
        reached the CRM: in flight, or queued after a call of them went unanswered, or
        adopted from a run that died (``outbox.may_have_landed``). Superseding such a write
        cannot undo it, so the new plan must say what it wants of those campaigns and
        tasks, and of the fields a field write of them sets. None when there are none
        (most customers: one dictionary look-up). A task dead-lettered unanswered is in
        doubt on record instead (``CustomerState``)."""
        decision = self.decisions.get(cid)
        if decision is None:
            return None
        campaigns: dict[str, str] = {}
        tasks: dict[str, str] = {}
        fields: dict[str, object] = {}
        for item_id in sorted(decision.outstanding):  # oldest first: the newest value wins
            if self._unsent(item_id):
                continue  # superseding it is exact
            item = self.pool.queue.get(item_id) or self.pool.sent_item(item_id)  # or in flight
            if item is None:
                continue
            if item.kind == "membership":
                campaigns[str(item.payload["campaign"])] = item.key
            elif item.kind == "task":  # its payload is the task (``items_of``)
                tasks[item.key] = str(item.payload["rule"])
            elif item.kind == "field_update":  # the newer plan counters its values
                fields.update(item.payload)  # (``planner.countered``)
        return Doubt(campaigns, tasks, fields) if campaigns or tasks or fields else None

    def enqueue(
        self,
        conn: sa.Connection,
        planned: list[tuple[Planned, PendingDecision]],
        states: dict[str, CustomerState],
        rows: PageRows,
    ) -> None:
        """Queue a page's planned writes. Items identical to ones already queued or in
        flight for the customer are reused; queued items the new plan no longer wants are
        superseded (a customer read twice in a run keeps only its newest decision)."""
        queue, pool, decisions = self.pool.queue, self.pool, self.decisions
        new: list[NewItem] = []
        stale: list[int] = []
        in_flight: dict[str, list[OutboxItem]] | None = None  # made when first needed
        event_of, sending = self.source_events.get, pool.inflight_by_customer
        park, pending_row = rows.states.append, self.recorder.pending_row
        for p, pending in planned:
            cid = p.plan.customer_id
            if p.plan.tasks:  # before its outstanding writes are merged with the new plan's
                doubt = self.in_doubt(cid)
                state = states.get(cid)
                doubted = {
                    *(doubt.tasks if doubt is not None else ()),
                    *(state.tasks_in_doubt if state is not None else ()),  # on record
                }
                if doubted:
                    self.maybe_made.planned_in_doubt.update(
                        t.dedupe_key for t in p.plan.tasks if t.dedupe_key in doubted
                    )
            previous = decisions.get(cid)
            items = items_of(p.plan, event_of(cid), pending.fields)
            keep = set(sending[cid]) if cid in sending else set()
            if previous is None and not keep:  # the usual customer: nothing of it outstanding
                new += items
            else:
                if in_flight is None:  # a whole run's calls in flight: gathered once a page
                    in_flight = {}
                    for unrecorded in pool.unrecorded():
                        for item in unrecorded:
                            in_flight.setdefault(item.customer_id, []).append(item)
                stale += self._merge(previous, items, keep, in_flight.get(cid, ()), new)
                if previous is not None and previous.this_run:
                    self.recorder.counts.skipped[Skip.SUPERSEDED] += 1
            decisions[cid] = Decision(cid, pending, keep, this_run=True, base=states.get(cid))
            park(pending_row(cid, pending))
        if stale:  # a task the new plan makes again (same key) keeps its admission
            self.supersede(conn, stale, {item.key for item in new if item.kind == "task"})
        for added in outbox.enqueue(conn, self.stream, self.run_id, new, trigger=self.trigger):
            queue[added.id] = added
            decisions[added.customer_id].outstanding.add(added.id)

    def _merge(
        self,
        previous: Decision | None,
        items: list[NewItem],
        keep: set[int],
        sent_items: Sequence[OutboxItem],
        new: list[NewItem],
    ) -> list[int]:
        """Set a customer's new items against what it has outstanding: one identical to a
        queued item keeps that item (``keep``), one identical to an item in flight is not
        sent twice, the rest are ``new``; returns the queued items no longer wanted. The
        items in flight no longer wanted are withdrawn (``Recorder.withdrawn``), and one
        wanted again is not: an earlier read's withdrawal of it no longer stands."""
        queue = self.pool.queue
        queued = [queue[i] for i in (previous.outstanding if previous else ()) if i in queue]
        by_identity = {item.identity(): item for item in queued}
        sent = {item.identity(): item.id for item in sent_items}
        withdrawn = self.recorder.withdrawn
        for item in items:
            identity = item.identity()
            existing = by_identity.pop(identity, None)
            if existing is not None:
                keep.add(existing.id)
            elif identity in sent:  # the same write in flight is recorded once, and
                withdrawn.discard(sent.pop(identity))  # retried should it fail
            else:
                new.append(item)
        withdrawn.update(sent.values())  # sent, no longer wanted: never sent again
        return [item.id for item in by_identity.values()]

    def withdraw(self, conn: sa.Connection, cid: str) -> bool:
        """A customer this run decided before, read again, whose newest plan writes nothing
        (the CRM already shows it, and the task the earlier read planned is no longer
        wanted): it keeps only its newest decision, so the earlier one's queued writes are
        superseded and the decision dropped (True; the caller records the customer as
        unchanged), its tasks the CRM cannot hold off their owners' caps and their share
        of the run's budget given back (``supersede``): a later read that wants one again
        meets the caps.
        Not when one of its writes may have reached the CRM (not ``_unsent``: in flight,
        or to be retried): its answer promotes the earlier decision (False)."""
        decision = self.decisions.get(cid)
        if decision is None or not decision.this_run:
            return False
        unsent = self._unsent
        if cid in self.pool.inflight_by_customer or not all(map(unsent, decision.outstanding)):
            return False
        self.supersede(conn, sorted(decision.outstanding))
        del self.decisions[cid]
        self.recorder.counts.skipped[Skip.SUPERSEDED] += 1
        return True

    def supersede(self, conn: sa.Connection, ids: list[int], planned: Collection[str] = ()) -> None:
        """Queued items that will never be sent (again): marked so; and their tasks the
        CRM cannot hold (not ``maybe_made``) no longer count as made against their owners'
        caps (``sync.taskbudget``), and give their share of the run's budget back
        (``Budget.release``), but for those the new plan makes again (``planned``: their
        keys), admitted already. One the CRM may hold stays counted, open there until a
        closure finds and closes it (or its due date passes): a call of the item
        itself may have landed (a retry after a timeout, a dead run's), or it was planned
        while its task was in doubt (an earlier write of it unanswered, on record or in
        this run): that this item never went out says nothing of the earlier call."""
        queue, maybe_made = self.pool.queue, self.maybe_made
        tasks = [queue[i] for i in ids if queue[i].kind == "task" and not maybe_made(queue[i])]
        outbox.set_status(conn, ids, "superseded")
        for item_id in ids:
            queue.pop(item_id, None)
        if tasks:
            taskbudget.unmake(conn, self.stream, [item.key for item in tasks])
            budget = self.budget
            if budget is not None:  # an item adopted from the store is parsed only if admitted
                for item in tasks:
                    if item.key in budget.admitted and item.key not in planned:
                        budget.release(item.action or TaskAction.model_validate(item.payload))

    def _unsent(self, item_id: int) -> bool:
        """Queued, and the CRM cannot have it (``outbox.may_have_landed``: never sent, or
        each call of it refused); anything else may have reached it: in flight, a retry
        after a timeout, the write of a run that died."""
        item = self.pool.queue.get(item_id)
        return item is not None and not self.maybe_made.landed(item)

    def recover(
        self, items: list[OutboxItem], states: dict[str, CustomerState], died: Collection[str]
    ) -> None:
        """Queue the writes left pending under the decisions stored with them: an earlier
        run's, or this run's own when its page units left them (``sync.retier``: a unit
        sends full batches only), which then count as this run's. ``died``: the runs among
        theirs that may have died with some in flight (``sync.runs.died``). A task among
        them in doubt on record (an earlier write of it went unanswered: the run that
        planned this one knew, and it is lost with that run's memory) goes out as one the
        CRM may hold (``maybe_made``), as it would have from that run."""
        self.maybe_made.died.update(died)
        for item in items:
            self.pool.queue[item.id] = item
            state = states.get(item.customer_id)
            if item.kind == "task" and state is not None and item.key in state.tasks_in_doubt:
                self.maybe_made.planned_in_doubt.add(item.key)
            decision = self.decisions.get(item.customer_id)
            if decision is None:
                pending = PendingDecision.from_json(state.pending if state else None)
                ours = pending is not None and pending.run_id == self.run_id
                decision = Decision(item.customer_id, pending, set(), this_run=ours, base=state)
                self.decisions[item.customer_id] = decision
            decision.outstanding.add(item.id)


def items_of(
    plan: CustomerPlan,
    source_event_id: str | None = None,
    decided: Mapping[str, Json] | None = None,
) -> list[NewItem]:
    """A customer's plan as outbox items: its fields in one item, one per task, membership
    change and closure. ``decided``: the decision's fields, already as stored and sent
    (``PendingDecision.fields``), which hold every field the plan writes."""
    cid = plan.customer_id
    items = []
    if plan.fields:
        if decided is None:
            payload = jsonable(plan.fields)
        elif len(decided) == len(plan.fields):  # every field written (a first sync's)
            payload = dict(decided)  # the same keys, in the same order (``decided`` made)
        else:
            payload = {name: decided[name] for name in plan.fields}
        items.append(NewItem(cid, "field_update", cid, payload, source_event_id))
    for task in plan.tasks:
        payload = task.model_dump(mode="json")
        items.append(NewItem(cid, "task", task.dedupe_key, payload, source_event_id, task))
    for change in plan.memberships:
        payload = {"campaign": change.campaign, "member": change.member}
        items.append(NewItem(cid, "membership", change.dedupe_key, payload, source_event_id))
    for closure in plan.closures:
        payload = (
            {"rule": closure.rule, "in_doubt": True} if closure.in_doubt else {"rule": closure.rule}
        )
        items.append(NewItem(cid, "task_close", closure.dedupe_key, payload, source_event_id))
    return items
