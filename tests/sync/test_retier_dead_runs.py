"""The sweep every reading run makes as it starts (``retier_died.end_dead_runs``): which
committed page units it ends, and what it costs when there are none.

"No longer running" is the run record's status, the rule a unit's commit and its worker
use (``retier_units.run_is_running``); the reading run that sweeps has just marked every
other reading run of the stream interrupted, holding the stream's lease. A record still
``running`` is never swept, whoever it belongs to.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

import pytest
import sqlalchemy as sa

from sync import outbox, retier_died, runs
from sync import retier_units as units
from sync.outbox import NewItem
from sync.retier_results import UnitResult, keep_recorded, retier_unit_answers
from sync.retier_units import UnitRef
from sync.runs import RunCounts
from sync.store import StateStore
from sync.writepool import SentTally

STREAM = "crm:accounts"
TTL = timedelta(minutes=5)


class Case(NamedTuple):
    """A re-tier run whose unit 1 is committed, with one recording and one pending write."""

    status: str  # the run's record: "running", or how it finished
    error: str | None
    unit_stream: str
    ended: bool  # whether the sweep ends the unit


CASES = {
    "marked-interrupted": Case("failed", runs.INTERRUPTED, STREAM, True),
    "finished-with-unit-committed": Case("succeeded", None, STREAM, True),
    "paused-on-quota": Case("paused_quota", "CRM quota", STREAM, True),
    "still-running": Case("running", None, STREAM, False),
    "another-stream-s": Case("failed", runs.INTERRUPTED, "crm:contacts", False),
}


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        store.migrate("retier", units.MIGRATIONS)
        yield store
    finally:
        store.close()


def committed_unit(store: StateStore, case: Case) -> UnitRef:
    ref = UnitRef(runs.new_run_id(), 1)
    nothing = UnitResult.of(RunCounts(), {}, {}, SentTally(frozenset()))
    with store.begin() as conn:
        runs.start(
            conn, ref.run_id, case.unit_stream, trigger="full", dry_run=False, owner="o", ttl=TTL
        )
        if case.status != "running":
            runs.finish(conn, ref.run_id, case.status, RunCounts(), {}, case.error)  # type: ignore[arg-type]
        units.put(conn, ref, case.unit_stream, options={})
        units.set_status(conn, ref, "committed", result=nothing, writing=["C1"], attempt="attempt")
        tally = SentTally(frozenset())
        keep_recorded(
            conn, ref, RunCounts(written=1), {"C1": "written"}, {}, tally, tally_moved=False
        )
        item = NewItem("C1", "field_update", "k1", {"tier": "gold"})
        outbox.enqueue(conn, case.unit_stream, ref.run_id, [item], trigger="full")
    return ref


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_sweep_ends_the_committed_units_of_stopped_runs_only(
    sqlite: StateStore, case: Case
) -> None:
    ref = committed_unit(sqlite, case)
    assert retier_died.end_dead_runs(sqlite, STREAM) == int(case.ended)
    with sqlite.begin() as conn:
        ((status, result, _),) = [u[1:] for u in units.finished(conn, ref.run_id)]
        recordings = conn.execute(sa.select(sa.func.count()).select_from(retier_unit_answers))
        cites = set(conn.execute(sa.select(outbox.outbox.c.run_id)).scalars())
    if case.ended:
        assert status == "failed" and recordings.scalar() == 0
        assert result["outcomes"] == {"C1": "written"}  # the recording folded in
        assert cites == {retier_died.died_run_id(ref)}  # its write held as a dead run's
    else:
        assert status == "committed" and recordings.scalar() == 1
        assert cites == {ref.run_id}


def test_a_store_without_units_is_swept_in_one_look(sqlite: StateStore) -> None:
    with sqlite.begin() as conn:
        conn.execute(sa.text("DROP TABLE retier_units"))
    assert retier_died.end_dead_runs(sqlite, STREAM) == 0


def test_the_sweep_reads_the_index_of_committed_units_in_a_store_migrated_before_it(
    sqlite: StateStore,
) -> None:
    """A store whose re-tiers stored units before the index existed (every unit kept, one
    a page of every re-tier, nearly all done) and whose statistics say so (``ANALYZE``):
    the sweep adds the index and reads it, never walking every unit each run."""
    finished = Case("succeeded", None, STREAM, True)
    ref = committed_unit(sqlite, finished)
    with sqlite.begin() as conn:
        conn.execute(
            units.retier_units.insert(),
            [
                {"run_id": ref.run_id, "seq": seq, "stream": STREAM, "status": "done"}
                | {"options": {}, "updated_at": "2026-12-08T00:00:00Z"}
                for seq in range(2, 500)
            ],
        )
        conn.execute(sa.text("DROP INDEX retier_units_committed"))
        conn.execute(sa.text("UPDATE schema_version SET version = 4 WHERE component = 'retier'"))
        conn.execute(sa.text("ANALYZE"))
    assert retier_died.end_dead_runs(sqlite, STREAM) == 1  # found all the same
    query = retier_died.dead_runs(STREAM).compile(
        dialect=sqlite.engine.dialect, compile_kwargs={"literal_binds": True}
    )
    with sqlite.begin() as conn:
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}"))
    assert "INDEX retier_units_committed" in plan, plan
