"""The fence of a re-tier's page units (``retier_units.attempt``), where it had gaps.

* The end of a committed unit by someone other than its attempt (a retry taking it over,
  the task engine giving it up) read the unit's recordings (``retier_unit_answers``)
  before it locked the unit's row. A late recording of the old attempt (frozen past
  ``lock_ttl``; its answered items a dead run's adopted writes, which the take-over's
  marks of the unit's own pending writes do not wait for) checks it still owns the unit
  (the row share-locked) and adds its row; the take-over reads the rows without it (not
  committed yet), deletes those it read, then waits for the row lock at its last update;
  the recording commits, the unit ends without it and its row stays for ever. Now the
  row is locked before the rows are read: the take-over waits, then finds the recording.

* A failed ownership check (``UnitRunner._owns_unit``: its own database error) before a
  write call: the call never left. It was counted as sent (the write tally, the
  minimum-calls figure) and failed the unit's writing as a failed call would, the calls
  after it still going out. Now it is withdrawn as unsent (``Unsent``): the attempt sends
  nothing more, its items stay pending, exact, for the run's last drain.

(The third gap, the recordings of a dead coordinator's units, is closed with real
processes in tests/sync/test_retier_died_writing.py.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import cast

import pytest
import sqlalchemy as sa

from connectors.calltally import CallTally
from connectors.contract import Connector, WritePlan
from sync import retier_died, retier_worker, runs, schema
from sync import retier_units as units
from sync.engine import RunOptions, SyncEngine, SyncSettings
from sync.maybe_made import MaybeMade
from sync.records import Unsent
from sync.retier_results import UnitResult, keep_recorded, retier_unit_answers
from sync.retier_units import UnitRef
from sync.runs import RunCounts
from sync.store import StateStore
from sync.writepool import SentTally, WritePool
from tests.sync.conftest import PG_URL, pg_schema
from tests.sync.test_retier import (  # noqa: F401  (``stores`` is a fixture)
    AS_OF,
    Book,
    StoreFactory,
    engine_on,
    same_report,
    spread_run,
    stored,
    stores,
)
from tests.sync.test_retier_fencing import until_blocking
from tests.sync.test_write_pipeline import PagedCrm

OLD_ATTEMPT = "old-attempt"


@pytest.fixture
def pg_engine() -> Iterator[SyncEngine]:
    """A sync engine on a PostgreSQL schema of its own (row locks are what is tested)."""
    with pg_schema() as name:
        engine = sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={name}"})
        store = StateStore(engine)
        try:
            store.migrate("sync", schema.SYNC_MIGRATIONS)
            store.migrate("retier", units.MIGRATIONS)
            yield engine_on(store, Book(1))
        finally:
            store.close()


def committed_unit(engine: SyncEngine) -> UnitRef:
    """A running run's unit 1, committed by ``OLD_ATTEMPT``, with nothing recorded yet."""
    ref = UnitRef(runs.new_run_id(), 1)
    nothing = UnitResult.of(RunCounts(), {}, {}, SentTally(frozenset()))
    with engine.store.begin() as conn:
        runs.start(
            conn, ref.run_id, engine.stream, trigger="full", dry_run=False, owner="o", ttl=TTL
        )
        units.put(conn, ref, engine.stream, options={})
        units.set_status(conn, ref, "committed", result=nothing, attempt=OLD_ATTEMPT)
    return ref


def take_over(engine: SyncEngine, ref: UnitRef) -> None:
    retier_died.take_over_committed(engine, ref)


def give_up(engine: SyncEngine, ref: UnitRef) -> None:
    retier_worker.give_up(engine, ref, "its last attempt failed")


@pytest.mark.postgres
@pytest.mark.parametrize("end", [take_over, give_up])
def test_a_recording_of_the_old_attempt_under_way_as_its_unit_ends_is_folded_in(
    pg_engine: SyncEngine, end: Callable[[SyncEngine, UnitRef], None]
) -> None:
    ref = committed_unit(pg_engine)
    ended: list[BaseException | None] = []

    def ending() -> None:
        try:
            end(pg_engine, ref)
            ended.append(None)
        except BaseException as exc:  # reported by the test's thread
            ended.append(exc)

    thread = threading.Thread(target=ending)
    with pg_engine.store.engine.connect() as late:
        with late.begin():  # the old attempt's recording (``UnitRunner._recorded``)
            units.ensure_owner(late, ref, OLD_ATTEMPT)
            counts = RunCounts(written=1)
            tally = SentTally(frozenset())
            outcomes, calls = {"C1": "written"}, {"task": 1}
            keep_recorded(late, ref, counts, outcomes, calls, tally, tally_moved=False)
            thread.start()
            assert until_blocking(late)  # the end waits for the recording's row lock
        thread.join(timeout=120)
    assert ended == [None]
    with pg_engine.store.begin() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(retier_unit_answers))
        result = units.finished(conn, ref.run_id)[0][2]
        assert left.scalar() == 0  # none left behind...
    assert result["outcomes"] == {"C1": "written"}  # ...the recording is in the result
    assert result["counts"]["written"] == 1 and result["api_calls"] == {"task": 1}


TTL = timedelta(minutes=5)


class CheckFailsOnce:
    """The first ownership check of any unit's attempt raises a database error (the
    store unreachable for a moment); how many checks ran after it on that attempt."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lock = threading.Lock()
        self.failed_on: object = None
        self.after = 0
        owns = retier_worker.UnitRunner._owns_unit

        def flaky(runner: retier_worker.UnitRunner) -> bool:
            with self.lock:
                if self.failed_on is None:
                    self.failed_on = runner
                    raise sa.exc.OperationalError("SELECT", {}, Exception("connection lost"))
                if self.failed_on is runner:
                    self.after += 1
            return owns(runner)

        monkeypatch.setattr(retier_worker.UnitRunner, "_owns_unit", flaky)


def test_a_failed_ownership_check_sends_nothing_and_the_run_ends_as_one_process_does(
    stores: tuple[StoreFactory, StoreFactory],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one_book, spread_book = Book(420), Book(420)
    one_store, spread_store = stores[0](), stores[1]()
    check = CheckFailsOnce(monkeypatch)
    options = RunOptions(full=True, as_of=AS_OF)
    one = engine_on(one_store, one_book).run(options)
    spread = spread_run(spread_store, spread_book, stores[1], workers=2)
    assert check.failed_on is not None
    assert check.after == 0  # the attempt sent nothing more once a check had failed
    # the call never left: not counted sent, not in doubt; the run's last drain sent its
    # items as the run's own, and everything ends where one process leaves it
    same_report(one, spread)
    assert spread_book.state() == one_book.state()
    assert stored(spread_store) == stored(one_store)
    with spread_store.begin() as conn:
        unanswered = conn.execute(
            sa.select(sa.func.count()).where(schema.outbox.c.unanswered.is_(True))
        ).scalar()
    assert unanswered == 0


def test_a_call_checked_while_another_s_check_fails_is_withdrawn_too() -> None:
    """Two write threads: the second's check would begin while the first's is failing,
    the pool not yet halted. It waits for that check to end and is withdrawn with it,
    unchecked; made, it went out past the failure (a flaky ``check.after`` above)."""
    applied: list[object] = []
    connector = cast(
        Connector, SimpleNamespace(capabilities=PagedCrm.capabilities, apply=applied.append)
    )
    pool = WritePool(
        connector,
        SyncSettings(write_concurrency=2),
        holding=bool,
        record=lambda calls: [],
        after_record=bool,
        maybe_made=MaybeMade("run-1"),
    )
    checks: list[str] = []
    second: list[BaseException | None] = []

    def send_second() -> None:
        try:
            pool._send(cast(WritePlan, "second"), CallTally())
            second.append(None)
        except BaseException as exc:  # reported by the test's thread
            second.append(exc)

    other = threading.Thread(target=send_second)

    def check() -> bool:
        checks.append("check")
        if len(checks) == 1:  # the first call's check: the second call comes meanwhile
            other.start()
            other.join(timeout=1)  # made at once on the old code; waits for this check now
            raise sa.exc.OperationalError("SELECT", {}, Exception("connection lost"))
        return True

    pool.may_send = check
    try:
        with pytest.raises(Unsent):
            pool._send(cast(WritePlan, "first"), CallTally())
        other.join()
    finally:
        pool.pool.shutdown()
    assert checks == ["check"] and applied == []
    assert len(second) == 1 and isinstance(second[0], Unsent)
