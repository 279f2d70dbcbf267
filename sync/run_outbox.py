"""Writes a run finds in the outbox that it did not queue itself: an earlier run's, never
seen answered (``recover``); in a page unit of a re-tier spread over workers, the ones
its coordinator queued for the page's customers (``take_over``); and the dead letters
left open by earlier runs (``load_dead_letters``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

import sqlalchemy as sa

from sync import outbox, runs
from sync.outbox import OutboxItem
from sync.planner import SALES_TASK_RULES
from sync.run_parts import RunParts
from sync.state import doubtable, load_states, mark_in_doubt
from tiering_core.privacy import pseudonym

log = logging.getLogger(__name__)

#: reads these customers again by id and plans and commits them; returns those the CRM
#: still returned (``PageStep.refetch``)
Replan = Callable[[list[str]], set[str]]


def recover(parts: RunParts, only: set[str] | None, replan: Replan | None = None) -> None:
    """Writes an earlier run recorded but did not see answered: send them again, and
    record their answers before anything is read. A record read while they were still
    going out would show the CRM as it was before them; its customer, already settled
    by them, would then be assessed again against its own new decision (an "upgraded
    from" reason lost) and planned a second copy of their tasks and memberships.

    Except a customer for whom a run that died, or a call that went unanswered, left a
    sales task (``replan``: the run's re-read of customers by id). It may or may not have
    reached the CRM, and the customer may have been sanctioned since: re-sent blindly, it
    would make a sales task for a sanctioned customer (a relationship manager told to call
    them) only for the run to close it a moment later. Such a customer is read again and
    planned first, its writes held meanwhile (``WritePool.waiting``): the new plan keeps
    the ones it still wants, and the rest are superseded, the sales task among them closed
    as in doubt (``planner.closures_of``: a close of a task the CRM never got makes
    nothing). Its record, read before its interrupted decision is promoted, is assessed
    against the same committed state that decision was, as a fault-free run's was. A
    customer the re-read does not find (deleted in the CRM meanwhile) has no plan to
    supersede its writes: they are superseded here (``_drop_gone``), never sent blindly
    (a CRM may accept a task on a deleted record).

    So is a customer whose pending writes make a task or a membership while this run's
    write-back has that kind off (``_switched_off``): ``tasks = false``,
    ``campaign_memberships = false`` or ``--only fields``, or a membership in a campaign
    switched off or given ``add = false``, since the stopped run queued them. Sent as they
    are, they would make what the admin switched off (docs/policy.md), past a start gate
    that asked nothing of those kinds. They are superseded before it is
    planned again (``_supersede_switched_off``; a task that may have landed is in doubt on
    record first: ``_adopt``), and its closures and removals stand as its new plan has
    them: a sanctions hit still withdraws.

    Only the customers this run holds (``only``: the webhook path's, else all it can
    claim): a pending write of a customer someone else holds is theirs, in flight."""
    items = _claimed(parts, only)
    died = _died(parts, items)
    doubtful = (
        _sales_tasks_in_doubt(parts, items, died) | _switched_off(parts, items)
        if replan is not None
        else set()
    )
    first = [i for i in items if i.customer_id not in doubtful]
    if first:
        _adopt(parts, first, died)
        log.info("re-sending writes of an interrupted run", extra={"items": len(first)})
        parts.pool.drain(final=True)
    if replan is not None and doubtful:
        _adopt(parts, [i for i in items if i.customer_id in doubtful], died)
        _supersede_switched_off(parts, items)
        log.info(
            "re-planning customers an interrupted run may have sent sales tasks",
            extra={"customers": len(doubtful)},
        )
        parts.pool.waiting.update(doubtful)
        try:
            found = replan(sorted(doubtful))
            _drop_gone(parts, doubtful - found)
        finally:
            parts.pool.waiting.clear()
        parts.pool.drain(final=True)


def take_over(parts: RunParts, ids: Collection[str]) -> None:
    """The writes this run queued for these customers and has not sent (a re-tier
    coordinator's, before the stream): their decisions become the page unit's, to be
    superseded or kept by the page's, as in one process. The unit holds all of its page's
    customers first (it processes them next), so it reads their writes once.

    A sales task among them that may have reached the CRM (a run or webhook pass that died
    during the re-tier left it, or a call of it went unanswered) is held (``WritePool.waiting``)
    until the unit has planned and committed the page: sent as soon as it fills a batch
    (``WritePool.send_ready`` as the page is taken in), it would reach a customer
    sanctioned since before the plan could supersede it (``recover`` holds it alike)."""
    parts.claims.hold(ids)
    items = _claimed(parts, ids)
    died = _died(parts, items)
    _adopt(parts, items, died)
    parts.pool.waiting.update(_sales_tasks_in_doubt(parts, items, died))


def _claimed(parts: RunParts, ids: Collection[str] | None) -> list[OutboxItem]:
    """The pending writes of these customers (None: of all), once this run holds them.
    Those it had to wait for are read again once claimed: their holder may have finished
    them meanwhile."""
    store, stream, claims = parts.e.store, parts.e.stream, parts.claims
    with store.begin() as conn:
        items = outbox.pending(conn, stream, ids)
    customers = {i.customer_id for i in items}
    if customers - claims.caller_holds - claims.held:
        claims.hold(customers)
        with store.begin() as conn:
            items = outbox.pending(conn, stream, ids)
        items = [i for i in items if i.customer_id in customers]
    return items


def _adopt(parts: RunParts, items: list[OutboxItem], died: set[str]) -> None:
    """Give the dispatcher these pending writes, with their customers' committed states;
    those of runs that stopped now name this run (``outbox.adopt``: should it die while
    sending them, the next run must know they may have gone out). A task or membership
    add among them that may have reached the CRM (``outbox.may_have_landed``: a run that
    died may have sent it) is in doubt on record first, as one whose call went unanswered
    is (``mark_in_doubt``): whatever the new plan makes of its write (superseded as no
    longer wanted, refused when re-sent), the CRM may hold it, and a later sanctions hit
    must close or remove it, until a write of it is answered."""
    run_id, stream = parts.run_id, parts.e.stream
    landed = [i for i in items if doubtable(i) and outbox.may_have_landed(i, run_id, died)]
    stopped = [i for i in items if i.run_id != run_id and i.run_id not in died]
    overtaken = _overtaken(items)
    with parts.e.store.begin() as conn:
        if landed:
            mark_in_doubt(conn, stream, landed, run_id)
        outbox.adopt(conn, stopped, run_id)
        if overtaken:
            outbox.set_status(conn, [i.id for i in overtaken], "superseded")
        states = load_states(conn, stream, {i.customer_id for i in items})
    gone = {i.id for i in overtaken}
    parts.dispatcher.recover([i for i in items if i.id not in gone], states, died)


def _overtaken(items: list[OutboxItem]) -> list[OutboxItem]:
    """The pending writes (oldest first) a newer pending write of the same customer, kind
    and key replaces: a write in flight that its customer's newer plan changed or undid
    (``Recorder.withdrawn``: a membership add, then its removal; a task or the fields, then
    their new values), left pending by a run that stopped or died before its answer was
    recorded. A plan never queues a second copy of a write queued or in flight, so only
    that leaves two; the newer one stands. Sent again, the older would undo the newer plan
    for a moment (a sanctioned customer added to a VIP campaign, then removed) or, in one
    call with it, ask the CRM to write one record twice. Superseded instead, with no
    change to its owner's cap: the newer write of the key keeps that place; one that may
    have landed is in doubt on record first (``_adopt``)."""
    newest: dict[tuple[str, str, str], OutboxItem] = {}
    older: list[OutboxItem] = []
    for item in items:
        slot = (item.customer_id, item.kind, item.key)
        if slot in newest:
            older.append(newest[slot])
        newest[slot] = item
    return older


def _died(parts: RunParts, items: list[OutboxItem]) -> set[str]:
    """The earlier runs among these writes' that may have died with some in flight
    (``runs.died``; one query, none when every write is this run's own)."""
    others = {i.run_id for i in items if i.run_id != parts.run_id}
    if not others:
        return set()
    with parts.e.store.begin() as conn:
        return runs.died(conn, others)


def _sales_tasks_in_doubt(parts: RunParts, items: list[OutboxItem], died: set[str]) -> set[str]:
    """The customers for whom an earlier run left a sales task that may have reached the
    CRM (``outbox.may_have_landed``, as the dispatcher's ``in_doubt`` judges it): a call
    of it went unanswered, or its run died (``died``). One whose every call the CRM
    refused (a locked record: it made nothing), or that a run which stopped never sent,
    is re-sent as it is. Not this run's own (a re-tier's, left by its page units): a
    retry of those goes out as one process's would, planned this run."""
    return {
        i.customer_id
        for i in items
        if i.kind == "task"
        and i.payload.get("rule") in SALES_TASK_RULES
        and i.run_id != parts.run_id
        and outbox.may_have_landed(i, parts.run_id, died)
    }


def _switched_off(parts: RunParts, items: list[OutboxItem]) -> set[str]:
    """The customers of these writes that make a task or add a membership while the run's
    write-back has that kind off (``_makes_off``)."""
    return {i.customer_id for i in _makes_off(parts, items)}


def _makes_off(parts: RunParts, items: list[OutboxItem]) -> list[OutboxItem]:
    """The task creates and membership adds among these writes whose kind the run's
    write-back (a fields-only run's: ``PagePlanner.writeback``) has off, and the adds to
    a campaign it adds no one to (switched off, or ``add = false``); closures and removals
    are not among them."""
    writeback = parts.planner.writeback
    return [
        i
        for i in items
        if (i.kind == "task" and not writeback.tasks)
        or (
            i.kind == "membership"
            and i.payload["member"]
            and not writeback.adds_to(str(i.payload["campaign"]))
        )
    ]


def _supersede_switched_off(parts: RunParts, items: list[OutboxItem]) -> None:
    """Supersede the adopted writes the run's write-back has off (``_makes_off``), before
    their customers are planned again: a plan that writes nothing keeps an earlier run's
    decision as it stands (``Recorder.unchanged``), and would send them. A decision left
    with no write is dropped, so that plan records the customer afresh."""
    off = _makes_off(parts, items)
    if not off:
        return
    dispatcher = parts.dispatcher
    with parts.e.store.begin() as conn:
        dispatcher.supersede(conn, [i.id for i in off])
    for item in off:
        decision = dispatcher.decisions.get(item.customer_id)
        if decision is not None:
            decision.outstanding.discard(item.id)
            if not decision.outstanding:
                del dispatcher.decisions[item.customer_id]


def _drop_gone(parts: RunParts, gone: set[str]) -> None:
    """The held writes of customers the CRM no longer returns, superseded and their
    decisions dropped: there is no record left to write them to or to plan them from. Each
    is logged by its pseudonym (never the CRM id), so an operator can tell why the writes
    of an interrupted run never went out."""
    if not gone:
        return
    dispatcher = parts.dispatcher
    with parts.e.store.begin() as conn:
        for cid in sorted(gone):
            decision = dispatcher.decisions.pop(cid, None)
            held = sorted(decision.outstanding) if decision is not None else []
            queued = [i for i in held if i in parts.pool.queue]
            if queued:
                dispatcher.supersede(conn, queued)
            log.warning(
                "held writes of a customer the CRM no longer returns superseded",
                extra={"customer": pseudonym(cid, parts.e.key), "items": len(held)},
            )


def load_dead_letters(parts: RunParts, conn: sa.Connection) -> None:
    """The customers whose dead letters are open, for the run's recorder: a decision of
    theirs this run writes resolves them. The one-process run and each page unit of a
    spread re-tier load them alike, since each records its own page's decisions. (A
    dead-lettered task the CRM may have made is in doubt on record, in its customer's
    state: ``sync.state.mark_in_doubt``.)"""
    open_letters = outbox.open_dead_letter_customers(conn, parts.e.stream)
    parts.recorder.dead_letter_customers = set(open_letters)
