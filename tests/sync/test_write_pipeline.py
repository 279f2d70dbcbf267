"""How write calls leave the run: kept flowing while pages are processed, and withdrawn
at once when the CRM refuses one outright.

Each write thread has one call queued behind the one it is making, and the read loop
refills freed slots at points inside a page, not only between pages (docs/targets.md P4: the
write slots otherwise stood idle most of each page). A queued call is withdrawn, not sent,
once any call meets a rate limit: the CRM would refuse it alike (docs/targets.md R5, no retry
storm).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from connectors.calltally import CallCounter
from connectors.contract import Capabilities, CrmRecord, Cursor, Page, WritePlan, WriteResult
from connectors.errors import RateLimitedError
from sync import schema
from sync.engine import RunOptions, SyncEngine
from tests.sync.memory_crm import InMemoryConnector, memory_engine
from tests.sync.test_sync_stateful import WRITEBACK, assess
from tiering_core.models import AssessmentData, Assets, CustomerProfile

CONCURRENCY = 4
BATCH = 2
PAGE = 24  # 12 write batches a page: below the read loop's back-pressure (4 x 4 batches)
AS_OF = date(2026, 5, 2)


class PagedCrm(InMemoryConnector):
    """Customers in pages of ``PAGE``, two field writes per call. ``before_page`` runs on
    the read-ahead thread before each page after the first is handed over; ``on_call``
    runs as each write call starts."""

    capabilities = Capabilities(crm="paged", page_size=PAGE, max_write_batch=BATCH)

    def __init__(self, pages: int) -> None:
        self.ids = [f"C{i:03d}" for i in range(pages * PAGE)]
        self.stamp = datetime.now(UTC) - timedelta(minutes=5)
        self.tiers: dict[str, str] = {}
        self.calls = CallCounter()
        self.lock = threading.Lock()
        self.refuse = False
        self.before_page: Callable[[], object] = lambda: None
        self.on_call: Callable[[int], object] = lambda n: None

    def _record(self, cid: str) -> CrmRecord:
        profile = CustomerProfile(id=cid, assets=Assets(deposits=500))
        return CrmRecord(profile, self.stamp, {"value_tier": self.tiers.get(cid)})

    def read_changed(self, since: Cursor | None) -> Iterator[Page]:
        for start in range(0, len(self.ids), PAGE):
            if start:
                self.before_page()
            self.calls.add("read")
            yield Page(tuple(self._record(cid) for cid in self.ids[start : start + PAGE]))

    def fetch(self, ids: Sequence[str]) -> list[CrmRecord]:
        return [self._record(cid) for cid in ids]

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        with self.lock:
            self.calls.add("write")
            number = self.calls["write"]
        self.on_call(number)
        if self.refuse:
            time.sleep(0.05)  # the calls queued behind this one are waiting meanwhile
            raise RateLimitedError("REQUEST_LIMIT_EXCEEDED")
        out = []
        for update in plan.field_updates:
            self.tiers[update.customer_id] = str(update.fields["value_tier"])
            out.append(WriteResult("field_update", update.customer_id, True))
        return out


def fields_only(profiles: Sequence[CustomerProfile]) -> list[AssessmentData]:
    """The test CRM's decisions without their tasks: field writes only."""
    out = assess(profiles)
    for decision in out:
        decision["actions"] = tuple(a for a in decision["actions"] if a["kind"] == "set_field")
    return out


def engine_for(
    crm: PagedCrm,
    tmp_path: Path,
    assess_fn: Callable[[Sequence[CustomerProfile]], list[AssessmentData]] = fields_only,
) -> SyncEngine:
    return memory_engine(
        crm, tmp_path, WRITEBACK, assess_fn, stream="paged:Customer", write_concurrency=CONCURRENCY
    )


def test_freed_write_slots_are_refilled_before_the_next_page_is_assessed(
    tmp_path: Path,
) -> None:
    """Page 1 plans twelve batches, more than the write threads take at once. Page 2 is
    handed over only once the CRM has answered every call it was sent and has stood idle:
    the rest of page 1's writes are then waiting in the run. Page 2's assessment waits for
    every page-1 customer to be written: that happens only if the run sends its waiting
    writes from inside page 2's processing, not after it."""
    crm = PagedCrm(pages=3)
    last_call = [time.monotonic()]

    def note(number: int) -> None:
        last_call[0] = time.monotonic()

    def idle() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if crm.calls["write"] and time.monotonic() - last_call[0] > 0.3:
                break
            time.sleep(0.02)
        waiting_at_handover.append(len(page_one - set(crm.tiers)))

    crm.on_call = note
    crm.before_page = idle
    page_one = set(crm.ids[:PAGE])
    waiting_at_handover: list[int] = []
    written_while_assessing: list[bool] = []

    def assess_waiting(profiles: Sequence[CustomerProfile]) -> list[AssessmentData]:
        if profiles[0].id == crm.ids[PAGE]:  # page 2 (page 3 may be read ahead already)
            deadline = time.monotonic() + 10
            while page_one - set(crm.tiers) and time.monotonic() < deadline:
                time.sleep(0.02)
            written_while_assessing.append(not page_one - set(crm.tiers))
        return fields_only(profiles)

    report = engine_for(crm, tmp_path, assess_waiting).run(RunOptions(as_of=AS_OF))
    assert report.status == "succeeded", report.error
    assert report.counts.written == 3 * PAGE
    assert waiting_at_handover[0] > 0  # page 1's writes were not all out at the handover
    assert written_while_assessing == [True]
    assert crm.calls["write"] == 3 * PAGE // BATCH  # full batches only, each sent once


def _pending_rows(tmp_path: Path) -> int:
    with sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}").connect() as conn:
        return len(
            conn.execute(
                sa.select(schema.outbox.c.id).where(schema.outbox.c.status == "pending")
            ).all()
        )


def test_a_rate_limited_call_withdraws_the_calls_queued_behind_it(tmp_path: Path) -> None:
    """Every call is refused: only the calls already being made when the first refusal
    came back reach the CRM (at most one per write thread); the queued ones are withdrawn
    and kept in the outbox, and the next run sends every write exactly once."""
    crm = PagedCrm(pages=1)
    crm.refuse = True
    paused = engine_for(crm, tmp_path).run(RunOptions(as_of=AS_OF))
    assert paused.status == "paused_quota"
    assert 1 <= crm.calls["write"] <= CONCURRENCY
    assert _pending_rows(tmp_path) == PAGE
    assert paused.counts.reconciles()

    crm.refuse = False
    crm.calls = CallCounter()
    resumed = engine_for(crm, tmp_path).run(RunOptions(as_of=AS_OF))
    assert resumed.status == "succeeded", resumed.error
    assert crm.calls["write"] == PAGE // BATCH
    assert _pending_rows(tmp_path) == 0
    assert set(crm.tiers) == set(crm.ids)
