"""One page through a run: take it in, claim, assess and plan (``plan``), then admit its
tasks and commit its decisions, outbox items, state and bookmark in one transaction
(``commit``). The one-process run (``sync.run.Run``) runs every page through it; a page
unit of a re-tier spread over workers (``sync.retier``) runs its one page through it,
waiting for its turn between the two halves."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import partial

import sqlalchemy as sa

from connectors.contract import CrmRecord
from connectors.errors import RateLimitedError
from sync import household_store, households, runs, taskbudget
from sync.dispatch import items_of
from sync.households import HouseholdGroup
from sync.killpoints import kill_point
from sync.planning import LinksFor
from sync.reader import input_hash
from sync.records import Advance, Outcome, Planned, Skip
from sync.run_parts import RunParts
from sync.run_report import PlannedWrite
from sync.state import CustomerState, load_states

#: what a page's transaction records of the run besides the page (``PageStep.commit``)
Checkpoint = Callable[[sa.Connection], None]


@dataclass(frozen=True)
class PagePlans:
    """A page assessed and planned, not yet committed."""

    plans: list[Planned]
    hashes: dict[str, str]  # input hash per customer
    states: dict[str, CustomerState]
    group: HouseholdGroup | None = None  # the households read with the page, to record
    #: the customers whose records the page admitted (its own and its households'): the
    #: commit marks those versions decided from (``sync.claims.Admission.repeated``)
    admitted: tuple[str, ...] = ()


class PageStep:
    """The page path of the run ``parts`` serve. ``checkpoint`` runs last in each page's
    transaction: by default it stores the run record's counts so far; a re-tier's page unit
    marks itself committed instead. ``opening``, if given, runs first in it (a page unit
    locks its run's row there, before any row of the page, ``sync.retier``)."""

    def __init__(
        self,
        parts: RunParts,
        checkpoint: Checkpoint | None = None,
        opening: Checkpoint | None = None,
    ) -> None:
        self.p = parts
        self.checkpoint = checkpoint or self._counts_so_far
        self.opening = opening
        self.preview: list[PlannedWrite] = []  # a dry run's

    def process(self, records: list[CrmRecord], mark: Advance | None) -> None:
        """Plan and commit one page (``mark``: where the stream's bookmark moves past it;
        None for customers fetched by id)."""
        page = self.plan(records, from_stream=mark is not None)
        if page is not None:
            self.commit(page, mark)

    def refetch(self, ids: list[str]) -> set[str]:
        """Fetch and process these customers again (those the CRM still returns)."""
        found: set[str] = set()
        for records in self.p.reader.fetch(ids):
            found.update(r.profile.id for r in records)
            self.process(records, None)
        return found

    def plan(self, records: list[CrmRecord], *, from_stream: bool) -> PagePlans | None:
        """Take a page in, claim its customers, assess it and plan its writes: the part of
        a page that reads only the state of its own customers (a re-tier's workers do it
        side by side). None for a dry run (previewed here)."""
        p = self.p
        intake = p.reader.intake(records, from_stream=from_stream, full=p.options.full)
        # claimed before the state is loaded, so no one else changes it while it is used
        taken = p.claims.take({cid: r.modstamp for cid, r in intake.fresh.items()})
        self._supersede(taken.superseded)
        for cid in taken.superseded:
            del intake.fresh[cid]
        p.pool.send_ready()
        with p.e.store.begin() as conn:
            states = load_states(conn, p.e.stream, intake.fresh)
        hashes, planner, fresh = intake.hashes, p.planner, intake.fresh
        changed = {
            cid: r
            for cid, r in fresh.items()
            if not planner.settled(r, states.get(cid), hashes[cid], cid in taken.repeated)
        }
        try:
            extra, links_for, group = self._households(fresh, changed, states, hashes)
        except RateLimitedError:  # the page is not committed: the next run reads it again
            p.counts.skipped[Skip.DEFERRED] += len(fresh)
            for cid in fresh:
                p.recorder.outcome(cid, Outcome.DEFERRED)
            raise
        for cid in fresh:
            if cid not in changed:
                planner.count_settled(cid, states.get(cid))
        if from_stream:
            planner.passed(intake.last)
        todo = [r for cid, r in fresh.items() if cid in changed] + extra
        assessed = planner.assess(todo, states, links_for)
        kill_point("after_tier")
        p.pool.send_ready()  # not later: planning reads the queue, and must see it settled
        plans = planner.plan(assessed, states, p.dispatcher.in_doubt)
        if p.options.dry_run:
            # kept only for those the stream may still read: the rest would never leave
            fetched = extra if from_stream else [*fresh.values(), *extra]
            full = p.options.full
            ahead = {r.profile.id for r in fetched if p.reader.unread(r, full=full)}
            planner.previewed_as(plans, hashes, ahead)
            self._preview(planner.bounded(plans)[0])
            p.progress()
            return None
        admitted = (*fresh, *(r.profile.id for r in extra))
        return PagePlans(plans, hashes, states, group, admitted)

    def commit(self, page: PagePlans, mark: Advance | None) -> None:
        """In one transaction, admit the page's tasks within the run's budgets (the owners'
        open tasks counted there), put its writes in the outbox, record its unchanged
        customers and move the bookmark past it; then send what is ready. Pages are
        committed in the order they were read."""
        p = self.p
        planner, hashes, states = p.planner, page.hashes, page.states
        day = p.options.day()
        kill_point("before_commit")
        tasks = [task for planned in page.plans for task in planned.plan.tasks]
        with (
            p.recorder.page() as rows,
            taskbudget.kept(planner.budget, tasks),
            p.e.store.begin() as conn,
        ):
            if self.opening is not None:
                self.opening(conn)
            if planner.budget is not None:  # decided where it is recorded (sync.taskbudget)
                planner.budget.recount(conn, p.e.stream, day, tasks)
            plans, page_tasks = planner.bounded(page.plans)
            planner.count_planned(plans)
            to_write = []
            for plan in plans:
                digest = hashes[plan.customer_id]
                if plan.plan:
                    to_write.append((plan, planner.decide(plan, digest)))
                else:
                    decide = partial(planner.decide, plan, digest)
                    state = states.get(plan.customer_id)
                    if plan.customer_id in p.recorder.decisions:  # read before in this run
                        p.dispatcher.withdraw(conn, plan.customer_id)
                    p.recorder.unchanged(plan, state, digest, day, decide, rows)
            p.dispatcher.enqueue(conn, to_write, states, rows)
            p.recorder.commit_page(conn, rows, plans, page_tasks, day)
            if page.group is not None:
                household_store.save_links(conn, p.e.stream, page.group, p.run_id)
            p.claims.decided(conn, page.admitted)
            kill_point("in_commit")
            if mark is not None:
                p.reader.advance(conn, mark)
            self.checkpoint(conn)
        kill_point("after_commit")
        p.progress()
        p.pool.drain(final=False)
        p.claims.settle(p.recorder.decisions)

    def _counts_so_far(self, conn: sa.Connection) -> None:
        """The run record's counts so far, in the page's transaction."""
        runs.checkpoint(conn, self.p.run_id, self.p.counts, {})

    def _supersede(self, ids: Collection[str]) -> None:
        """Customers whose record is older than a view someone already processed: counted
        skipped as superseded, never written."""
        for cid in ids:
            self.p.counts.skipped[Skip.SUPERSEDED] += 1
            self.p.recorder.outcome(cid, Outcome.SUPERSEDED)

    def _households(
        self,
        fresh: dict[str, CrmRecord],
        changed: dict[str, CrmRecord],
        states: dict[str, CustomerState],
        hashes: dict[str, str],
    ) -> tuple[list[CrmRecord], LinksFor | None, HouseholdGroup | None]:
        """The members of the changed customers' households outside the page, the household
        links to decide the page with, and what to record of them (none, and no API call,
        when the policy turns households off). A member on the page that came back only
        because of our own write is decided again (``changed`` gains it); one outside it is
        fetched, counted read, decided and written like any other, but never moves the
        bookmark (only the page's records do); when a later page of the run reads it again
        on the same inputs, it is counted read again (``read`` counts the records read) and
        settled by that decision (``PagePlanner.settled``), not decided again.

        The households the store recorded at the last sync widen the read
        (``sync.household_store.StoredLinks``): a member that left a household re-tiers
        the household it left in the same run, and so does a split."""
        e = self.p.e
        policy = e.policy
        if policy is None or not changed:
            return [], None, None
        known = household_store.StoredLinks(e.store, e.stream)
        hh = households.load(
            e.connector, list(changed.values()), known, policy, at_hand=fresh.keys()
        )
        if hh is None:
            return [], None, None
        for link in hh.group.links:
            if link.customer_id in fresh:
                changed.setdefault(link.customer_id, fresh[link.customer_id])
        for cid in hh.group.extra_ids & fresh.keys():  # left a household, on the page
            changed.setdefault(cid, fresh[cid])
        extra = list({r.profile.id: r for r in hh.extra}.values())
        self.p.counts.read += len(extra)
        gone = self.p.claims.take({r.profile.id: r.modstamp for r in extra}).superseded
        self._supersede(gone)
        extra = [r for r in extra if r.profile.id not in gone]
        for r in extra:
            hashes[r.profile.id] = input_hash(r.profile, e.policy_version)
        if extra:
            with e.store.begin() as conn:
                states.update(load_states(conn, e.stream, [r.profile.id for r in extra]))
        return extra, partial(hh.links_for, policy=policy), hh.group

    def _preview(self, plans: list[Planned]) -> None:
        for cid, kind, detail in self.p.planner.preview(plans):
            self.preview.append(PlannedWrite(cid, kind, detail))
        for plan in plans:
            for item in items_of(plan.plan):
                self.p.pool.tally.add(item)
