"""A run's own writes never come back to it as changes, even on a CRM whose modification
stamps have whole-second resolution (Zoho, Salesforce).

The engine reads records stamped up to its signpost (the moment the read began). A write
made within the signpost's second would be stamped with that second, i.e. at or before
the signpost, and a key-paged read (Zoho's) would return it as a change of this run: 240
customers read as 340. So while the read goes on, no write leaves before the CRM's clock
has passed that second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from connectors.calltally import CallCounter
from connectors.contract import (
    Capabilities,
    CrmRecord,
    Cursor,
    Page,
    WritePlan,
    WriteResult,
)
from sync.engine import RunOptions
from sync.reader import _next_tick
from tests.sync.memory_crm import InMemoryConnector, memory_engine
from tests.sync.test_sync_stateful import WRITEBACK, assess
from tiering_core.models import Assets, CustomerProfile

SECOND = timedelta(seconds=1)
IDS = [f"C{i:02d}" for i in range(12)]
PAGE_LATENCY = 0.3


def whole_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


class WholeSecondCrm(InMemoryConnector):
    """Stamps at whole seconds, like Zoho's ``Modified_Time``; each page is a new query
    for records after the last one returned, so a record stamped again comes back. A
    page takes ``PAGE_LATENCY``, so the read spans more than a second of writes."""

    capabilities = Capabilities(
        crm="seconds", page_size=3, max_write_batch=2, modstamp_resolution=SECOND
    )

    def __init__(self) -> None:
        old = whole_second(datetime.now(UTC)) - timedelta(minutes=5)
        self.stamps = {cid: old for cid in IDS}
        self.tiers: dict[str, str] = {}
        self.write_stamps: list[datetime] = []
        self.calls = CallCounter()

    def _record(self, cid: str) -> CrmRecord:
        profile = CustomerProfile(id=cid, assets=Assets(deposits=500))
        return CrmRecord(profile, self.stamps[cid], {"value_tier": self.tiers.get(cid)})

    def read_changed(self, since: Cursor | None) -> Iterator[Page]:
        after: Cursor | None = None
        while True:
            time.sleep(PAGE_LATENCY)
            self.calls.add("read")
            rows = sorted(Cursor(stamp, cid) for cid, stamp in self.stamps.items())
            rows = [
                c for c in rows if (since is None or c >= since) and (after is None or c > after)
            ]
            if not rows:
                return
            page = rows[:3]
            after = page[-1]
            yield Page(tuple(self._record(c.id) for c in page))

    def fetch(self, ids: Sequence[str]) -> list[CrmRecord]:
        return [self._record(cid) for cid in ids]

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        self.calls.add("write")
        out = []
        for update in plan.field_updates:
            stamp = whole_second(datetime.now(UTC))
            self.write_stamps.append(stamp)
            self.tiers[update.customer_id] = str(update.fields["value_tier"])
            self.stamps[update.customer_id] = stamp
            out.append(WriteResult("field_update", update.customer_id, True))
        out += [WriteResult("task", t.task.dedupe_key, True) for t in plan.tasks]
        out += [WriteResult("membership", m.dedupe_key, True) for m in plan.memberships]
        return out


def early_in_a_second() -> datetime:
    """Wait for the start of a wall-clock second, so the run's first writes, unheld,
    would land in the second its read began."""
    while (now := datetime.now(UTC)).microsecond > 50_000:
        time.sleep((1_000_000 - now.microsecond) / 1_000_000)
    return now


def test_own_writes_are_stamped_after_the_signpost_and_never_read_back(
    tmp_path: Path,
) -> None:
    crm = WholeSecondCrm()
    engine = memory_engine(crm, tmp_path, WRITEBACK, assess, stream="seconds:Customer")
    began = early_in_a_second()
    report = engine.run(RunOptions(as_of=date(2026, 5, 2)))

    assert report.status == "succeeded", report.error
    assert report.counts.read == len(IDS)  # not one of our writes read back
    assert report.counts.written == len(IDS)
    assert crm.write_stamps and min(crm.write_stamps) > began


@pytest.mark.parametrize(
    ("moment", "resolution", "tick"),
    [
        ("2026-01-01T00:00:05.300000", SECOND, "2026-01-01T00:00:06"),
        ("2026-01-01T00:00:05", SECOND, "2026-01-01T00:00:06"),
        ("2026-01-01T00:00:05.999999", SECOND, "2026-01-01T00:00:06"),
        ("2026-01-01T00:00:05.300400", timedelta(milliseconds=1), "2026-01-01T00:00:05.301"),
        ("2026-01-01T00:00:05.301000", timedelta(milliseconds=1), "2026-01-01T00:00:05.302"),
    ],
)
def test_next_tick_is_the_first_instant_stamped_later(
    moment: str, resolution: timedelta, tick: str
) -> None:
    at = datetime.fromisoformat(moment).replace(tzinfo=UTC)
    assert _next_tick(at, resolution) == datetime.fromisoformat(tick).replace(tzinfo=UTC)
