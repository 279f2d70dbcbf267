"""A re-tier page unit keeps what each recording adds to its result, not its whole result
again (``sync.retier_results``): saved whole in every recording's transaction, a unit of
2,000 customers recorded one answer at a time (FXiaoke's one record a call) rewrote every
outcome so far each time, quadratic in the unit's size. That a killed worker's recorded
answers still count, exactly as the whole result would have had them, is checked with real
processes in tests/sync/test_retier_died_writing.py.

One unit of ``PAGE`` customers on a CRM taking one record a write call, one call at a
time (one answer a recording), in one process on SQLite: what each recording's
transaction writes to the unit's ledger is read off the statements themselves.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.contract import Capabilities
from sync import recorder
from sync.engine import RunOptions, SyncEngine
from sync.retier import retier
from sync.retier_results import retier_unit_answers
from sync.retier_threads import InProcessUnits
from sync.store import StateStore
from tests.sync.test_retier import AS_OF, PAGE, Book, BookConnector, engine_on


class OneRecordACall(BookConnector):
    capabilities = Capabilities(crm="book", page_size=PAGE, max_write_batch=1)


class LedgerWrites:
    """What each recording's transaction writes to the units' ledger (``retier_units``,
    ``retier_unit_answers``), in order: the customers whose outcomes it keeps, and the
    size of the rest of its JSON less the counts (a few dozen numbers, whose keys appear
    as the run meets tiers, changes and kinds), every number read as 0 (a count's digits
    grow with the unit however it is kept). How many outcomes a recording keeps depends
    on how many calls answered before it (a call in flight and one queued behind it)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.outcomes: list[str] = []
        self.sizes: list[int] = []
        self.recording = threading.local()
        record = recorder.Recorder.record_results

        def recording(this: recorder.Recorder, calls: Any) -> Any:
            self.recording.on = True
            try:
                return record(this, calls)
            finally:
                self.recording.on = False

        monkeypatch.setattr(recorder.Recorder, "record_results", recording)

    def watch(self, engine: sa.Engine) -> None:
        sa.event.listen(engine, "before_cursor_execute", self._statement)

    def _statement(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if getattr(self.recording, "on", False) and "retier_unit" in statement:
            kept = [json.loads(p) for p in params if isinstance(p, str) and p.startswith("{")]
            if not kept:  # a read (``retier_units.owns``): it writes nothing
                return
            for row in kept:
                self.outcomes += row.get("outcomes", {})
            rest = [{**k, "counts": None, "outcomes": None} for k in kept]
            self.sizes.append(len(re.sub(r"\d+", "0", json.dumps(rest))))


@contextmanager
def one_unit_run(tmp_path: Path, watch: LedgerWrites) -> Iterator[tuple[StateStore, Any]]:
    url = f"sqlite:///{tmp_path / 'spread.db'}"
    book = Book(PAGE)
    store = StateStore.open(url)
    opened: list[StateStore] = []

    def engine_for() -> SyncEngine:
        opened.append(StateStore.open(url))
        watch.watch(opened[-1].engine)
        engine = engine_on(opened[-1], book, OneRecordACall(book))
        engine.settings = replace(engine.settings, write_concurrency=1)
        return engine

    executor = InProcessUnits(engine_for, workers=1)
    try:
        report = retier(engine_on(store, book), executor, RunOptions(full=True, as_of=AS_OF))
    finally:
        executor.close()
        for s in opened:
            s.close()
    try:
        yield store, report
    finally:
        store.close()


def test_a_recording_keeps_what_it_adds_not_the_unit_s_whole_result_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch = LedgerWrites(monkeypatch)
    with one_unit_run(tmp_path, watch) as (store, report):
        assert report.status == "succeeded", report.error
        assert report.counts.written == PAGE
        with store.begin() as conn:  # folded into the unit's result when it was done
            left = conn.execute(sa.select(sa.func.count()).select_from(retier_unit_answers))
            assert left.scalar() == 0
    sizes = watch.sizes
    assert len(sizes) >= PAGE  # a recording an answer or two, each keeping what it added
    # each customer's outcome is kept once, by the recording that finished it (the whole
    # result rewrote every outcome so far each time)
    assert len(watch.outcomes) == len(set(watch.outcomes)) == PAGE
    # nor does the rest grow with the unit: the later half of the recordings writes no
    # more than the earlier
    half = len(sizes) // 2
    assert max(sizes[half:]) <= max(sizes[:half]), sizes
