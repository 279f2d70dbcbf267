"""A Zoho timeline that cannot be read whole does not stop the run, nor lets its override
through.

The override audit reads a customer's timeline to its last page (``connectors/zoho/
override_audit.py``). A page that says there is more but names no ``next_page_token``
cannot be followed; before, that failed the whole read, and as the answer does not change,
every run after it failed on the same page. Now that customer's approved override gets no
maker or checker, so it is refused (a task), the record counts as ``DQ_AUDIT_UNREAD`` in
the run report and one warning names it by pseudonym; every other customer, one lifted
beside it too, is synced as before. Once the timeline reads whole, a full run applies the
override: nothing was lost."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from connectors.override_audit import APPROVAL_PATH, AUDIT_UNREAD
from connectors.sandbox.override_trail import approve_override, propose_override
from connectors.sandbox.server import Response
from crmtier.commands.sync import open_engine
from crmtier.config import load_config
from sync.engine import RunOptions, RunReport
from sync.store import StateStore
from tests.sync.conftest import Harness, crm_harness
from tests.sync.test_sync_override import _liftable
from tiering_core.privacy import pseudonym

AS_OF = date(2026, 6, 30)
DAY = AS_OF - timedelta(days=1)
BROKEN = {"__timeline": [], "info": {"per_page": 200, "count": 0, "more_records": True}}


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    with crm_harness("zoho", tmp_path / "zoho", monkeypatch, 40) as h:
        yield h


def _run(h: Harness, *, full: bool = False) -> RunReport:
    with open_engine(load_config(h.config), as_of=AS_OF) as engine:
        return engine.run(RunOptions(as_of=AS_OF, full=full))


def _at(hour: int) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hour, tzinfo=UTC)


def test_a_timeline_not_read_whole_refuses_its_override_and_the_run_goes_on(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h, sb = harness, harness.sandbox
    assert _run(h).status == "succeeded"
    (lifted, unread, *_), (maker, checker, *_) = _liftable(h)
    expires = AS_OF + timedelta(days=30)
    for cid in (lifted, unread):
        propose_override(sb, cid, user=maker, at=_at(9), value_tier="private", expires=expires)
        approve_override(sb, cid, user=checker, at=_at(11))
    sb.server.inject(  # type: ignore[attr-defined]
        "timeline",
        response=Response.json(BROKEN),
        times=None,
        match=lambda request: request.params.get("id") == unread,
    )

    with caplog.at_level(logging.WARNING):
        report = _run(h)

    assert report.status == "succeeded", report.error
    assert report.counts.dq_issues[AUDIT_UNREAD] == 1
    assert sb.written(lifted)["value_tier"] == "private"
    assert sb.written(unread)["value_tier"] != "private"
    refused = [t for t in sb.tasks() if t.customer_id == unread and "refused" in t.subject]
    assert len(refused) == 1 and "does not show who proposed it" in refused[0].subject
    store = StateStore.open(h.state_url())
    try:
        ref = pseudonym(unread, store.pseudonym_key())
    finally:
        store.close()
    lines = [r for r in caplog.records if r.getMessage() == "override audit unread"]
    assert [(r.customer, r.field) for r in lines] == [(ref, APPROVAL_PATH)]  # type: ignore[attr-defined]
    assert "next_page_token" in lines[0].problem  # type: ignore[attr-defined]
    assert unread not in json.dumps([r.__dict__ for r in lines], default=str)

    sb.server.faults.clear()  # type: ignore[attr-defined]
    assert _run(h, full=True).status == "succeeded"
    assert sb.written(unread)["value_tier"] == "private"
