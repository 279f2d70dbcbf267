"""Writes a run finds in the outbox that it did not queue itself: an earlier run's, never
seen answered (``recover``); in a page unit of a re-tier spread over workers, the ones
its coordinator queued for the page's customers (``take_over``); and the dead letters
left open by earlier runs (``load_dead_letters``)."""

from __future__ import annotations

import logging
from collections.abc import Collection

import sqlalchemy as sa

from sync import outbox
from sync.outbox import OutboxItem
from sync.run_parts import RunParts
from sync.state import load_states

log = logging.getLogger(__name__)


def recover(parts: RunParts, only: set[str] | None) -> None:
    """Writes an earlier run recorded but did not see answered: send them again, and
    record their answers before anything is read. A record read while they were still
    going out would show the CRM as it was before them; its customer, already settled
    by them, would then be assessed again against its own new decision (an "upgraded
    from" reason lost) and planned a second copy of their tasks and memberships.

    Only the customers this run holds (``only``: the webhook path's, else all it can
    claim): a pending write of a customer someone else holds is theirs, in flight."""
    items = _adopt(parts, only)
    if items:
        log.info("re-sending writes of an interrupted run", extra={"items": len(items)})
        parts.pool.drain(final=True)


def take_over(parts: RunParts, ids: Collection[str]) -> None:
    """The writes this run queued for these customers and has not sent (a re-tier
    coordinator's, before the stream): their decisions become the page unit's, to be
    superseded or kept by the page's, as in one process. The unit holds all of its page's
    customers first (it processes them next), so it reads their writes once."""
    parts.claims.hold(ids)
    _adopt(parts, ids)


def _adopt(parts: RunParts, ids: Collection[str] | None) -> list[OutboxItem]:
    """Give the dispatcher the pending writes of these customers (None: of all), with
    their committed states, once this run holds them. Those it had to wait for are read
    again once claimed: their holder may have finished them meanwhile."""
    store, stream, claims = parts.e.store, parts.e.stream, parts.claims
    with store.begin() as conn:
        items = outbox.pending(conn, stream, ids)
    customers = {i.customer_id for i in items}
    if customers - claims.caller_holds - claims.held:
        claims.hold(customers)
        with store.begin() as conn:
            items = outbox.pending(conn, stream, ids)
        items = [i for i in items if i.customer_id in customers]
    with store.begin() as conn:
        states = load_states(conn, stream, customers)
    parts.dispatcher.recover(items, states)
    return items


def load_dead_letters(parts: RunParts, conn: sa.Connection) -> None:
    """The customers whose dead letters are open, for the run's recorder: a decision of
    theirs this run writes resolves them. The one-process run and each page unit of a
    spread re-tier load them alike, since each records its own page's decisions."""
    open_letters = outbox.open_dead_letter_customers(conn, parts.e.stream)
    parts.recorder.dead_letter_customers = set(open_letters)
