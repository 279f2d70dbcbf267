"""A full re-tier spread over workers (``sync.retier``) against the same run in one process.

Two copies of one generated book are re-tiered with the shipped policy (its task budgets
and owner caps bind on this book): one by ``SyncEngine.run``, one by a coordinator whose
pages go to worker threads, each with its own connector and store connection as a worker
on another host has. Everything the CRM and the store end up holding must be identical:
tier fields and reason texts, tasks, closures, memberships, the customers' committed state,
the waiting tasks, and the audit rows (up to the run id they cite and the chain order),
and so must the run's counts, outcomes and API calls, call for call. A second run after
edits re-tiers customers with a ``previous``; page and batch sizes that do not divide
each other leave partial batches in most units.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.calltally import CallCounter
from connectors.contract import Capabilities, CrmRecord, Cursor, Page, WritePlan, WriteResult
from connectors.mapping import load_default_mapping
from connectors.sandbox.generator import generate
from sync import retier_units, schema
from sync.engine import RunOptions, RunReport, SyncEngine, SyncSettings
from sync.planner import action_kinds
from sync.retier import retier
from sync.retier_results import retier_unit_answers
from sync.retier_threads import InProcessUnits
from sync.retier_units import UnitRef
from sync.retier_worker import run_unit
from sync.store import StateStore
from sync.taskbudget import task_limits
from tests.sync.conftest import PG_URL, pg_schema
from tests.sync.memory_crm import InMemoryConnector
from tiering_core.engine import decide_batch
from tiering_core.models import AssessmentData, CustomerProfile
from tiering_core.policy import load_policy

AS_OF = date(2026, 5, 4)
PAGE = 37  # pages, write batches and the book's size share no divisor
BATCH = 9
WRITEBACK = load_default_mapping("salesforce").writeback
POLICY = load_policy(None)
STREAM = "book:Account"


class Book:
    """A generated book of customers in memory: what every connector over it reads and
    writes (thread-safe: the workers write at once)."""

    def __init__(self, n: int, seed: int = 11) -> None:
        base = datetime.now(UTC) - timedelta(hours=1)
        self.profiles: dict[str, dict[str, Any]] = {}
        self.stamps: dict[str, datetime] = {}
        for c in generate(n, seed, dirty_share=0.0):
            self.profiles[c.id] = c.profile
            self.stamps[c.id] = base + timedelta(milliseconds=c.index)
        self.fields: dict[str, dict[str, Any]] = {cid: {} for cid in self.profiles}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.closed: set[str] = set()
        self.members: dict[tuple[str, str], bool] = {}
        self.lock = threading.Lock()

    def record(self, cid: str) -> CrmRecord:
        profile = CustomerProfile.model_validate({**self.profiles[cid], "id": cid})
        return CrmRecord(profile, self.stamps[cid], dict(self.fields[cid]))

    def edit(self, ids: Sequence[str], deposits: float) -> None:
        for cid in ids:
            profile = self.profiles[cid]
            profile["assets"] = {**(profile.get("assets") or {}), "deposits": deposits}
            # never older than the last write's stamp: a CRM's modstamps only move on
            self.stamps[cid] = max(
                datetime.now(UTC) - timedelta(seconds=2),
                self.stamps[cid] + timedelta(milliseconds=1),
            )

    def state(self) -> tuple[Any, ...]:
        return (self.fields, self.tasks, self.closed, self.members)


class BookConnector(InMemoryConnector):
    """One process's connection to the book, counting its own calls by kind."""

    capabilities = Capabilities(crm="book", page_size=PAGE, max_write_batch=BATCH)

    def __init__(self, book: Book) -> None:
        self.book = book
        self.calls = CallCounter()

    def read_changed(self, since: Cursor | None) -> Iterator[Page]:
        """Pages of one query, in (modstamp, id) order as of the query (a query locator's
        snapshot: the run's own writes, stamped later, are not in it)."""
        with self.book.lock:
            cursors = sorted(Cursor(ms, cid) for cid, ms in self.book.stamps.items())
        rows = [c for c in cursors if since is None or c >= since]
        for start in range(0, len(rows), PAGE):
            self.before_page(rows, start)
            with self.book.lock:
                page = Page(
                    tuple(
                        replace(self.book.record(c.id), modstamp=c.modstamp)
                        for c in rows[start : start + PAGE]
                    )
                )
            self.calls.add("read")
            yield page

    def before_page(self, rows: list[Cursor], start: int) -> None:
        """Called before the page of ``rows`` from ``start`` is read (a test's hook)."""

    def fetch(self, ids: Sequence[str]) -> list[CrmRecord]:
        self.calls.add("read")
        with self.book.lock:
            return [self.book.record(c) for c in ids if c in self.book.profiles]

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        book, out = self.book, []
        kinds = {
            "field_update": plan.field_updates,
            "task": plan.tasks,
            "membership": plan.memberships,
            "task_close": plan.task_closes,
        }
        with book.lock:
            for kind, items in kinds.items():
                if items:
                    self.calls.add(kind)
            now = datetime.now(UTC)
            for update in plan.field_updates:
                book.fields[update.customer_id].update(update.fields)
                book.stamps[update.customer_id] = now
                out.append(WriteResult("field_update", update.customer_id, True))
            for upsert in plan.tasks:
                book.tasks[upsert.task.dedupe_key] = upsert.task.model_dump(mode="json")
                out.append(WriteResult("task", upsert.task.dedupe_key, True))
            for change in plan.memberships:
                book.members[(change.campaign, change.customer_id)] = change.member
                out.append(WriteResult("membership", change.dedupe_key, True))
            for close in plan.task_closes:
                book.closed.add(close.dedupe_key)
                out.append(WriteResult("task_close", close.dedupe_key, True))
        return out


def assess(profiles: Sequence[CustomerProfile], households: object = None) -> list[AssessmentData]:
    return decide_batch(profiles, POLICY, AS_OF, kinds=action_kinds(WRITEBACK))


def engine_on(store: StateStore, book: Book, connector: BookConnector | None = None) -> SyncEngine:
    return SyncEngine(
        store,
        connector or BookConnector(book),
        WRITEBACK,
        assess,
        stream=STREAM,
        pseudonym_key=b"k" * 32,
        settings=SyncSettings(overlap=timedelta(seconds=5), write_concurrency=3),
        policy_version=POLICY.version,
        task_limits=task_limits(POLICY),
    )


StoreFactory = Callable[[], StateStore]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[StoreFactory, ...]]:
    """Two store factories (in-process run, spread run), each opening a new connection
    to its own database as a process on another host would."""
    if request.param == "sqlite":
        yield tuple(
            (lambda name=name: StateStore.open(f"sqlite:///{tmp_path / name}"))  # type: ignore[misc]
            for name in ("one.db", "spread.db")
        )
        return
    with pg_schema() as one, pg_schema() as spread:

        def opener(name: str) -> StoreFactory:
            def open_store() -> StateStore:
                engine = sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={name}"})
                store = StateStore(engine)
                store.migrate("sync", schema.SYNC_MIGRATIONS)
                return store

            return open_store

        yield opener(one), opener(spread)


def spread_run(store: StateStore, book: Book, open_store: StoreFactory, workers: int) -> RunReport:
    opened: list[StateStore] = []

    def engine_for() -> SyncEngine:
        opened.append(open_store())
        return engine_on(opened[-1], book)

    executor = InProcessUnits(engine_for, workers=workers)
    try:
        return retier(engine_on(store, book), executor, RunOptions(full=True, as_of=AS_OF))
    finally:
        executor.close()
        for s in opened:
            s.close()


def stored(store: StateStore) -> dict[str, Any]:
    """What the store holds of the customers, their tasks and the audit trail (run ids
    and the chain's order and hashes left out: those differ by construction)."""
    with store.begin() as conn:
        customers = sorted(
            (r.customer_id, r.tiers, r.fields, r.assessed_at, r.below_floor_since, r.pending)
            for r in conn.execute(sa.select(schema.customers))
        )
        queue = sorted(
            (r.key, r.customer_id, r.rule, r.status, r.due)
            for r in conn.execute(sa.select(schema.task_queue))
        )
        effects = sorted(
            (r.key, r.customer_id, r.kind, r.active)
            for r in conn.execute(sa.select(schema.side_effects))
        )
        audit = Counter(
            repr((r.customer_ref, r.event, r.old, r.new, r.reason_codes, r.trigger, r.input_hash))
            for r in conn.execute(sa.select(schema.audit))
        )
        outbox = Counter(r.status for r in conn.execute(sa.select(schema.outbox)))
    return {
        "customers": customers,
        "queue": queue,
        "effects": effects,
        "audit": audit,
        "outbox": outbox,
    }


def same_report(one: RunReport, spread: RunReport) -> None:
    assert spread.status == one.status == "succeeded", (spread.error, one.error)
    assert spread.counts.as_json() == one.counts.as_json()
    assert spread.outcomes == one.outcomes
    assert spread.api_calls == one.api_calls
    assert spread.min_calls == one.min_calls
    writes = {k: v for k, v in spread.api_calls.items() if k != "read"}
    assert writes == {k: v for k, v in spread.min_calls.items() if k != "read" and v}


def test_a_spread_re_tier_ends_exactly_where_one_process_does(
    stores: tuple[StoreFactory, StoreFactory],
) -> None:
    """Everything, strictly, on both runs: no figure here depends on timing (the book's
    reads are a snapshot, and a customer read twice in a run is decided once whether or
    not its write has landed before the second read, ``PagePlanner.settled``); and a unit
    done for every page, the audit citing the coordinator's run."""
    for edit, one, spread in _first_then_edited_runs(stores):
        same_report(one.report, spread.report)
        assert spread.book.state() == one.book.state()
        assert stored(spread.store) == stored(one.store)
        if not edit:  # (the second run first fetches the customers whose tasks wait)
            read = spread.report.counts.read, spread.report.api_calls["read"]
            assert read == (len(one.book.profiles), math.ceil(len(one.book.profiles) / PAGE))
            assert spread.report.counts.tasks_deferred, "the policy's task budgets bind here"
        with spread.store.begin() as conn:
            cited = {r.run_id for r in conn.execute(sa.select(schema.audit))}
            units = retier_units.finished(conn, spread.report.run_id)
            answers = sa.select(sa.func.count()).select_from(retier_unit_answers)
            assert conn.execute(answers).scalar() == 0  # each folded into its unit's result
        assert spread.report.run_id in cited
        pages = math.ceil(len(one.book.profiles) / PAGE)
        assert [status for _, status, _, _ in units] == ["done"] * pages


@dataclass
class _Side:
    book: Book
    store: StateStore
    report: RunReport


def _first_then_edited_runs(
    stores: tuple[StoreFactory, StoreFactory], n: int = 420
) -> Iterator[tuple[list[str] | None, _Side, _Side]]:
    """A first full run and a second after edits (some customers changed, all with a
    previous), each in one process and spread over two workers, on twin books."""
    one_book, spread_book = Book(n), Book(n)
    one_store, spread_store = stores[0](), stores[1]()
    try:
        for edit in (None, [f"C{i:09d}" for i in range(0, n, 7)]):
            if edit:
                one_book.edit(edit, 2_500_000.0)
                spread_book.edit(edit, 2_500_000.0)
            one = engine_on(one_store, one_book).run(RunOptions(full=True, as_of=AS_OF))
            spread = spread_run(spread_store, spread_book, stores[1], workers=2)
            yield edit, _Side(one_book, one_store, one), _Side(spread_book, spread_store, spread)
    finally:
        one_store.close()
        spread_store.close()


def test_the_bookmark_moves_only_past_committed_pages_and_a_rerun_is_idempotent(
    tmp_path: Path,
) -> None:
    """A coordinator that dies after handing out its units (none processed): its units are
    given up once a rerun has taken the stream over, the bookmark has not moved, and the
    rerun ends exactly where an uninterrupted run does."""
    book, twin = Book(120), Book(120)
    store = StateStore.open(f"sqlite:///{tmp_path / 'spread.db'}")
    twin_store = StateStore.open(f"sqlite:///{tmp_path / 'twin.db'}")
    handed: list[UnitRef] = []

    class Lost:
        def submit(self, unit: UnitRef) -> None:
            handed.append(unit)

    class Died(Exception):
        pass

    engine = engine_on(store, book)
    original = engine.store.release_lock

    def die_after_read(name: str) -> None:  # the lease is held by a process that is gone
        raise Died

    try:
        engine.store.release_lock = die_after_read  # type: ignore[method-assign]
        with pytest.raises(Died):
            # every unit stays queued: the coordinator waits for them, then "dies"
            retier(engine, Lost(), RunOptions(full=True, as_of=AS_OF), stall_seconds=0.2)
        engine.store.release_lock = original  # type: ignore[method-assign]
        assert handed and not book.tasks and not any(book.fields.values())
        with store.begin() as conn:
            assert conn.execute(sa.select(schema.bookmarks)).first() is None
        original(engine.lock_name)
        rerun = spread_run(
            store, book, lambda: StateStore.open(f"sqlite:///{tmp_path / 'spread.db'}"), 2
        )
        for ref in handed:  # the dead run's units, handed to a worker late
            run_unit(engine_on(store, book), ref)
        with store.begin() as conn:
            late = {s for _, s, _, _ in retier_units.finished(conn, handed[0].run_id)}
        assert late == {"abandoned"}
        one = engine_on(twin_store, twin).run(RunOptions(full=True, as_of=AS_OF))
        same_report(one, rerun)
        assert book.state() == twin.state()
        assert stored(store) == stored(twin_store)
    finally:
        store.close()
        twin_store.close()


def test_a_unit_that_keeps_failing_fails_the_run_naming_its_page_and_the_rerun_completes(
    tmp_path: Path,
) -> None:
    """Page 2's worker fails at every attempt (here: an adjustment that raises for one of
    its customers): the engine retries it, then gives it up; the run fails naming page 2,
    page 3 cannot commit past it, the bookmark stays past page 1 only. A rerun with
    healthy workers ends exactly where one process does."""
    book, twin = Book(3 * PAGE), Book(3 * PAGE)
    url = f"sqlite:///{tmp_path / 'spread.db'}"
    store = StateStore.open(url)
    twin_store = StateStore.open(f"sqlite:///{tmp_path / 'twin.db'}")
    poison = sorted(book.profiles)[PAGE + 3]  # on page 2
    attempts: list[str] = []

    def boom(pairs: list[Any]) -> list[Any]:
        if any(record.profile.id == poison for record, _ in pairs):
            attempts.append(poison)
            raise RuntimeError("a bug that hits this page")
        return pairs

    opened: list[StateStore] = []

    def failing_engine() -> SyncEngine:
        opened.append(StateStore.open(url))
        engine = engine_on(opened[-1], book)
        engine.adjustments = (boom,)
        return engine

    executor = InProcessUnits(failing_engine, workers=2, attempts=3, retry_delay=0.01)
    try:
        failed = retier(engine_on(store, book), executor, RunOptions(full=True, as_of=AS_OF))
    finally:
        executor.close()
        for s in opened:
            s.close()
    try:
        assert failed.status == "failed" and failed.error is not None
        assert "page 2" in failed.error and "a bug that hits this page" in failed.error
        assert len(attempts) == 3  # retried, then given up
        with store.begin() as conn:
            statuses = [s for _, s, _, _ in retier_units.finished(conn, failed.run_id)]
            bookmark = conn.execute(sa.select(schema.bookmarks)).one()
        assert statuses == ["done", "failed", "abandoned"]
        assert bookmark.record_id == sorted(book.profiles)[PAGE - 1]  # past page 1 only
        rerun = spread_run(store, book, lambda: StateStore.open(url), 2)
        one = engine_on(twin_store, twin).run(RunOptions(full=True, as_of=AS_OF))
        assert rerun.status == one.status == "succeeded", rerun.error
        assert book.state() == twin.state()
        assert stored(store)["customers"] == stored(twin_store)["customers"]
    finally:
        store.close()
        twin_store.close()
