"""A customer is decided once per run, in one process (issue 22: the spread's twin).

A run reads a customer twice when the customer's waiting tasks are revisited before the
stream and the stream then reads it again, at the stamp our own write gave it. Its second
read must not be assessed against the decision this very run made: an "Upgraded from"
reason depends on ``previous`` and would be erased from the CRM by the run re-reading its
own write. Whether that write has been answered before the stream comes back to the
customer is a matter of timing; here it always has (every write is a full batch, and the
stream waits until the revisit's writes landed), the case the run used to get wrong.
A customer whose inputs change in between is still decided again.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.contract import Capabilities, Cursor, WritePlan, WriteResult
from sync import run_parts, schema, taskbudget
from sync.engine import RunOptions, RunReport
from sync.planning import PagePlanner
from sync.reader import input_hash
from sync.records import Outcome
from sync.state import load_states
from sync.store import StateStore
from sync.taskbudget import task_limits
from tests.sync import test_sync_household_links as hh
from tests.sync.test_retier import AS_OF, PAGE, POLICY, STREAM, Book, BookConnector, assess
from tests.sync.test_retier import engine_on as retier_engine

N = 420
EDITED = [f"C{i:09d}" for i in range(0, N, 7)]


class RevisitFirst(BookConnector):
    """Writes go one a call (each item a full batch, sent as soon as its page commits, the
    run's back-pressure keeping the queue short), and the stream's page before the one
    that reads the revisited customers again is read only once their field writes have
    landed: the answers are recorded when that page commits, before their page is planned.
    ``between``: inputs the awaited customers take once their writes landed."""

    capabilities = Capabilities(crm="book", page_size=PAGE, max_write_batch=1)

    def __init__(self, book: Book, awaited: set[str], between: dict[str, Any]) -> None:
        super().__init__(book)
        self.awaited = set(awaited)
        self.pending = set(awaited)
        self.landed = threading.Event()
        self.between = between

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        out = super().apply(plan)
        with self.book.lock:
            self.pending -= {u.customer_id for u in plan.field_updates}
            if not self.pending:
                self.book.profiles.update(self.between)
                self.landed.set()
        return out

    def before_page(self, rows: list[Cursor], start: int) -> None:
        ahead = {c.id for c in rows[start : start + 2 * PAGE]}
        if ahead & self.awaited:
            assert self.landed.wait(60), "the revisited customers' writes never went out"


def _first_full_run(store: StateStore, book: Book) -> set[str]:
    """A full run of the book; the customers the task budgets left waiting (the next run
    revisits them before its stream)."""
    first = retier_engine(store, book).run(RunOptions(full=True, as_of=AS_OF))
    assert first.status == "succeeded", first.error
    with store.begin() as conn:
        return set(taskbudget.to_revisit(conn, STREAM, task_limits(POLICY)))


def _second_run(
    tmp_path: Path, change_inputs: bool
) -> tuple[Book, StateStore, set[str], RunReport]:
    """A first full run, edits, then a second full run in one process through
    ``RevisitFirst``; the edited customers whose tasks wait and whom the edit upgrades
    (revisited and decided, then read again)."""
    book = Book(N)
    store = StateStore.open(f"sqlite:///{tmp_path / 'one.db'}")
    waiting = _first_full_run(store, book)
    book.edit(EDITED, 2_500_000.0)
    upgraded = _upgraded(book, store, waiting & set(EDITED))
    assert upgraded, "the edit upgrades customers whose tasks wait"
    between = {}
    if change_inputs:  # their deposits change again once the revisit has decided them
        for cid in upgraded:
            profile = book.profiles[cid]
            between[cid] = {**profile, "assets": {**profile["assets"], "deposits": 0.0}}
    crm = RevisitFirst(book, upgraded, between)
    second = retier_engine(store, book, crm).run(RunOptions(full=True, as_of=AS_OF))
    assert second.status == "succeeded", second.error
    assert second.counts.read == N + len(waiting)  # the revisited customers, read twice
    return book, store, upgraded, second


def _upgraded(book: Book, store: StateStore, ids: set[str]) -> set[str]:
    """Those of ``ids`` whose present inputs upgrade them from their committed tier."""
    with store.begin() as conn:
        states = load_states(conn, STREAM, ids)
    out = set()
    for cid in ids:
        previous = states[cid].previous()
        profile = book.record(cid).profile.model_copy(update={"previous": previous})
        (assessment,) = assess([profile])
        if any(r["code"] == "VAL_UPGRADE" for r in assessment["reasons"]):
            out.add(cid)
    return out


def test_a_customer_read_again_after_its_decision_landed_keeps_its_reason(
    tmp_path: Path,
) -> None:
    book, store, twice, report = _second_run(tmp_path, change_inputs=False)
    try:
        for cid in twice:
            assert "Upgraded from" in str(book.fields[cid]["reasons"]), cid
            assert report.outcomes[cid] == Outcome.WRITTEN
        assert report.counts.tiered == N  # each customer assessed once
        assert not report.counts.skipped  # nothing superseded: one decision a customer
        with store.begin() as conn:
            changes = [
                r.customer_ref
                for r in conn.execute(
                    sa.select(schema.audit).where(
                        schema.audit.c.event == "tier_change",
                        schema.audit.c.run_id == report.run_id,
                    )
                )
            ]
        assert len(changes) == len(set(changes))  # one tier change a customer
    finally:
        store.close()


def test_a_customer_whose_inputs_change_before_it_is_read_again_is_decided_again(
    tmp_path: Path,
) -> None:
    book, store, twice, report = _second_run(tmp_path, change_inputs=True)
    try:
        assert report.counts.tiered == N + len(twice)  # those assessed again
        with store.begin() as conn:
            rows = conn.execute(
                sa.select(schema.customers.c.customer_id, schema.customers.c.input_hash).where(
                    schema.customers.c.customer_id.in_(twice)
                )
            ).all()
        for cid, stored_hash in rows:
            assert stored_hash == input_hash(book.record(cid).profile, POLICY.version)
            assert "Upgraded from" not in str(book.fields[cid]["reasons"])
    finally:
        store.close()


def test_a_dry_run_decides_a_revisited_customer_once_and_counts_as_the_run_will(
    tmp_path: Path,
) -> None:
    """A dry run records no decision; what it planned for a revisited customer settles the
    stream's second read of it (``PagePlanner.previewed``), so it previews each customer's
    writes once and counts what the run then counts."""
    book = Book(N)
    store = StateStore.open(f"sqlite:///{tmp_path / 'one.db'}")
    try:
        waiting = _first_full_run(store, book)
        assert waiting, "the policy's task budgets leave customers waiting"
        book.edit(EDITED, 2_500_000.0)
        options = RunOptions(full=True, as_of=AS_OF)
        dry = retier_engine(store, book).run(replace(options, dry_run=True))
        real = retier_engine(store, book).run(options)
        assert dry.status == real.status == "succeeded", (dry.error, real.error)
        assert dry.counts.read == real.counts.read == N + len(waiting)
        assert (dry.counts.tiered, dry.counts.unchanged) == (N, real.counts.unchanged)
        assert dry.counts.tiers == real.counts.tiers
        writes = Counter(repr((w.customer_id, w.kind, w.detail)) for w in dry.preview)
        assert set(writes.values()) == {1}, "a customer's write previewed twice"
    finally:
        store.close()


@pytest.fixture
def map_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of a dry run's ``PagePlanner.previewed`` after each page adds to it or the
    stream's read takes from it, in order."""
    sizes: list[int] = []

    class Watched(PagePlanner):
        def previewed_as(self, *args: Any) -> None:
            super().previewed_as(*args)
            sizes.append(len(self.previewed))

        def passed(self, ids: Iterable[str]) -> None:
            super().passed(ids)
            sizes.append(len(self.previewed))

    monkeypatch.setattr(run_parts, "PagePlanner", Watched)
    return sizes


def test_a_dry_run_keeps_only_the_plans_of_customers_the_stream_has_yet_to_read(
    tmp_path: Path, map_sizes: list[int]
) -> None:
    """What a dry run planned is kept only for customers decided ahead of the stream (here
    the revisited ones) and only until the stream reads them: the map never holds the whole
    run's customers, and a full run's is empty once the stream has read everyone."""
    book = Book(N)
    store = StateStore.open(f"sqlite:///{tmp_path / 'one.db'}")
    try:
        waiting = _first_full_run(store, book)
        assert 0 < len(waiting) < N // 4, "the policy's task budgets leave a few waiting"
        map_sizes.clear()  # the first run was no dry run
        dry = retier_engine(store, book).run(RunOptions(full=True, as_of=AS_OF, dry_run=True))
        assert dry.status == "succeeded", dry.error
        assert dry.counts.unchanged >= len(waiting), "the stream's reads settled by the plans"
        assert max(map_sizes) == len(waiting)
        assert map_sizes[-1] == 0, map_sizes
    finally:
        store.close()


#: 120 customers over three pages of 50, C000..C119 in stream order; household i pairs
#: C{i} with C{119-i}, so page 1's members live on pages 2 and 3
PEOPLE = {f"C{i:03d}": 1.0 for i in range(120)}
PAIRS = [hh.L(f"C{i:03d}", f"H{i}") for i in range(60)] + [
    hh.L(f"C{119 - i:03d}", f"H{i}") for i in range(60)
]


@pytest.mark.parametrize("full", [False, True])
def test_a_dry_run_keeps_no_household_member_the_stream_will_not_read(
    tmp_path: Path, map_sizes: list[int], full: bool
) -> None:
    """A dry run decides a changed customer's household members beside its page; it keeps
    what it planned for a member only while the stream may still read it
    (``Reader.unread``). Incremental: C000..C059 and C119 changed since the last sync; of
    the members fetched beside them only C119 (C000's, on the next page) is still to be
    read, and goes when it is; the rest, unchanged since the bookmark, are never kept (they
    stayed, one per household, until the run ended). Full: page 1's members (C070..C119)
    are kept until the stream reads them, and the map is empty at the end."""
    store = StateStore.open(f"sqlite:///{tmp_path / 'hh.db'}")
    try:
        crm = hh.HouseholdCrm(PEOPLE, PAIRS)
        engine = hh._engine(store, crm)
        hh._run(engine, crm, full=True, day=0)
        hh._run(engine, crm, day=0)  # our writes come back, settled
        for i in [*range(60), 119]:
            crm.set_deposits(f"C{i:03d}", 2.0)
        map_sizes.clear()
        hh.TODAY[0] = hh.AS_OF
        dry = engine.run(RunOptions(as_of=hh.AS_OF, full=full, dry_run=True))
        assert dry.status == "succeeded", dry.error
        assert dry.counts.reconciles()
        assert (max(map_sizes), map_sizes[-1]) == ((50, 0) if full else (1, 0))
    finally:
        store.close()


def test_a_dry_run_with_a_limit_keeps_no_plan_past_its_last_page(
    tmp_path: Path, map_sizes: list[int]
) -> None:
    """A dry run with ``--limit`` stops after its last page: the stream reads nothing more
    (``Reader.unread`` is False from the last page on), so it keeps no plan for a read that
    will not come. A full run limited to page 1: its members fetched beside it (C070..C119)
    are never kept (they stayed in the map to the end)."""
    store = StateStore.open(f"sqlite:///{tmp_path / 'hh.db'}")
    try:
        crm = hh.HouseholdCrm(PEOPLE, PAIRS)
        engine = hh._engine(store, crm)
        hh._run(engine, crm, full=True, day=0)
        map_sizes.clear()
        hh.TODAY[0] = hh.AS_OF
        dry = engine.run(RunOptions(as_of=hh.AS_OF, full=True, dry_run=True, limit=50))
        assert dry.status == "succeeded", dry.error
        assert map_sizes == [0, 0]  # after the stream's read of page 1, after its plans
    finally:
        store.close()
