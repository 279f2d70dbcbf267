"""A sync run's customer claims: what it holds, what it waits for, when it lets go.

A run (scheduled sync, or the webhook worker's pass through the same machinery) tiers,
plans, writes and records a customer only while it holds the customer's claim
(``sync.claims``), from before its state is loaded until its decision is promoted (its
writes all answered) or the run ends. Within those bounds the customer's committed state
cannot change under the run: no one else processes it.

Before a page is planned its customers are claimed, waiting (with backoff, up to
``SyncSettings.claim_wait``) for those a webhook worker holds right now, and then
admitted by modstamp: a record older than the newest view anyone admitted for its
customer is *superseded*, counted so (``skipped.superseded``) and never written. A record
of the very version a committed page decided from before (the page's commit marks its
admitted versions so, ``decided``) was *taken up* already: if the customer's committed
state was decided on the same inputs today, it is settled, even though the record, read
before that decision's writes, does not show them (``PagePlanner.settled``). A
customer still held by someone else after the wait stops the run before the page is
committed, so the page, bookmark included, is read again by the next run: nothing is
skipped silently.

The webhook path's records come claimed and admitted by the worker (``caller_holds``);
only the household members fetched beside them are claimed here, without waiting: a
worker that waited for a sync run while holding its batch's claims could wait on a run
that waits on it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from sync.claims import CustomerClaims
from sync.records import Stop


@dataclass(frozen=True)
class Taken:
    """What admitting a run's records found (see ``sync.claims.Admission``)."""

    superseded: frozenset[str] = frozenset()
    repeated: frozenset[str] = frozenset()


class RunClaims:
    """The claims one run holds (``owner``: the run's thread); inert for a dry run."""

    def __init__(
        self,
        claims: CustomerClaims | None,
        owner: str,
        within: timedelta,
        *,
        ref: Callable[[str], str],
        caller_holds: Collection[str] = (),
    ) -> None:
        self.claims = claims
        self.owner = owner
        self.within = within
        self.ref = ref
        self.caller_holds = frozenset(caller_holds)
        self.held: set[str] = set()

    def take(self, versions: Mapping[str, datetime]) -> Taken:
        """Claim these customers (waiting up to ``within``) and admit their records by
        modstamp. Raises ``Stop`` when some stay held by someone else."""
        wanted = {c: v for c, v in versions.items() if c not in self.caller_holds}
        if self.claims is None or not wanted:
            return Taken()
        superseded: set[str] = set()
        repeated: set[str] = set()
        for _ in range(2):  # a claim lost between claiming and admitting: once more
            self.hold(wanted)
            admission = self.claims.admit(wanted, self.owner)
            superseded |= admission.superseded
            repeated |= admission.repeated
            if not admission.lost:
                return Taken(frozenset(superseded), frozenset(repeated))
            self.held -= admission.lost
            wanted = {c: wanted[c] for c in admission.lost}
        raise self._stop(set(wanted))

    def hold(self, ids: Collection[str]) -> None:
        """Claim these customers (no record to admit: the outbox's), or raise ``Stop``."""
        wanted = set(ids) - self.caller_holds - self.held
        if self.claims is None or not wanted:
            return
        got = self.claims.claim_waiting(wanted, self.owner, self.within)
        self.held |= got
        if got != wanted:
            raise self._stop(wanted - got)

    def decided(self, conn: sa.Connection, ids: Collection[str]) -> None:
        """In a page's commit: its customers' admitted versions are decided from (those
        the caller admitted too, under the same owner)."""
        if self.claims is not None and ids:
            self.claims.mark_decided(conn, ids, self.owner)

    def settle(self, still_open: Collection[str]) -> None:
        """Let go of every customer held but those whose decisions are still open."""
        done = self.held - set(still_open)
        if self.claims is not None and done:
            self.claims.release(done, self.owner)
            self.held -= done

    def release_all(self) -> None:
        if self.claims is not None and self.held:
            self.claims.release(self.held, self.owner)
            self.held = set()

    def _stop(self, busy: set[str]) -> Stop:
        example = self.ref(min(busy))
        return Stop(
            "failed",
            f"{len(busy)} customer(s) (e.g. {example}) stayed claimed by another worker "
            f"for {self.within.total_seconds():.0f} s; stopped before processing them "
            "(the next run reads them again)",
        )
