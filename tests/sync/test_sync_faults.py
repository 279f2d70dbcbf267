"""Faults against the real Salesforce sandbox and connector (docs/targets.md R3, R4, R5, R7).

The engine runs in this process (so a test can change the CRM *during* a run) on a real
SQLite store, over real HTTPS; crash cases run ``crmtier sync`` as a subprocess.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.errors import ReadOnlyError
from crmtier.commands.sync import open_engine
from crmtier.config import load_config
from sync import bookmarks, schema
from sync.engine import RunOptions, RunReport
from sync.runs import RunCounts
from tests.sync.conftest import Harness, available_crms, salesforce_harness

pytestmark = pytest.mark.skipif(
    "salesforce" not in available_crms(), reason="Salesforce sandbox/connector not in tree"
)
CUSTOMERS = 500
AS_OF = date(2026, 6, 30)
RICH = {"assets.deposits": 90_000_000, "aum_avg_3m": 90_000_000}


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    with salesforce_harness(tmp_path / "sf", monkeypatch, CUSTOMERS) as h:
        yield h


def _run(h: Harness, on_progress: object = None, **options: object) -> RunReport:
    config = load_config(h.config)
    with open_engine(config, as_of=AS_OF, on_progress=on_progress) as engine:
        report = engine.run(RunOptions(as_of=AS_OF, **options))  # type: ignore[arg-type]
    assert report.counts.reconciles(), report.counts.as_json()
    return report


def _done_field_writes(h: Harness) -> Counter[str]:
    store_url = h.state_url()
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.outbox.c.customer_id).where(
                schema.outbox.c.kind == "field_update", schema.outbox.c.status == "done"
            )
        ).scalars()
        out = Counter(rows)
    engine.dispose()
    return out


def _lower_tier_customers(h: Harness, n: int, exclude: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    ids = [
        cid
        for cid in h.customer_ids()
        if cid not in exclude and h.sandbox.written(cid).get("value_tier") in ("mass", "affluent")
    ]
    assert len(ids) >= n
    return ids[:n]


def test_ties_at_a_page_boundary_and_edits_during_the_run(harness: Harness) -> None:
    """R3: 12 customers share one modstamp across the page boundary; 5 more change while
    the run reads. Nothing is missed and no customer is written twice."""
    sb = harness.sandbox
    _run(harness)
    _run(harness)  # our own writes come back once: nothing to do
    before = _done_field_writes(harness)
    edited = _lower_tier_customers(harness, 202)
    for cid in edited[:190]:
        sb.edit_customer(cid, RICH)
    last = max(sb.store.get("Account", cid)[0] for cid in edited[:190])  # type: ignore[index]
    tie = last + timedelta(milliseconds=1)
    for cid in edited[190:]:
        sb.edit_customer(cid, RICH, modstamp=tie)
    during = _lower_tier_customers(harness, 5, exclude=set(edited))

    def edit_during_run(counts: RunCounts, _calls: int) -> None:
        if counts.pages == 1 and not getattr(edit_during_run, "done", False):
            edit_during_run.done = True  # type: ignore[attr-defined]
            for cid in during:
                sb.edit_customer(cid, RICH)

    first = _run(harness, on_progress=edit_during_run)
    assert first.counts.pages >= 2  # the tie group straddles the page boundary
    assert first.status == "succeeded"
    second = _run(harness)
    assert second.status == "succeeded"
    writes = _done_field_writes(harness) - before
    # with households on, an edited customer's household members are written too: their
    # household now reaches private (their own tier lifted, or their household_tier moved)
    lifted = {c for c in writes if sb.written(c).get("household_tier") == "private"}
    assert set(writes) == set(edited) | set(during) | lifted  # 0 missed
    assert all(n == 1 for n in writes.values()), writes.most_common(3)  # 0 repeated
    assert all(sb.written(cid)["value_tier"] == "private" for cid in [*edited, *during])


def test_locked_rows_retry_then_dead_letter_then_succeed_next_run(harness: Harness) -> None:
    """R4: per-record failures inside a 200-record call are retried alone, then
    dead-lettered; the run is completed_with_errors; the next run retries them."""
    sb = harness.sandbox
    ids = [sb.customer_id(i) for i in range(CUSTOMERS)]  # type: ignore[attr-defined]
    stuck, flaky = ids[:3], ids[3:5]
    sb.lock_rows(stuck, times=100)  # type: ignore[attr-defined]
    sb.lock_rows(flaky, times=2)  # type: ignore[attr-defined]
    report = _run(harness)
    assert report.status == "completed_with_errors"
    assert report.counts.dead_lettered == 3
    assert report.counts.written == CUSTOMERS - 3
    assert report.dead_letters_open == 3
    # successes are not re-sent: every written item went out once, except the two that
    # failed twice before succeeding; retry calls carry only failed items
    with sa.create_engine(harness.state_url()).connect() as conn:
        sent = dict(
            conn.execute(
                sa.select(schema.outbox.c.customer_id, schema.outbox.c.attempts).where(
                    schema.outbox.c.kind == "field_update", schema.outbox.c.status == "done"
                )
            ).all()
        )
    assert set(sent) == set(ids) - set(stuck)
    assert {cid: n for cid, n in sent.items() if n} == dict.fromkeys(flaky, 2)
    assert report.api_calls["collections_update"] <= 3 + 4 * 3
    with sa.create_engine(harness.state_url()).connect() as conn:
        letters = conn.execute(sa.select(schema.dead_letters)).all()
    assert {r.customer_id for r in letters} == set(stuck)
    assert {(r.error_code, r.attempts, r.status) for r in letters} == {
        ("UNABLE_TO_LOCK_ROW", 5, "open")
    }
    assert all(r.pseudonym.startswith("cust_") for r in letters)

    sb.server.faults.clear()
    sb.org.locks.clear()  # type: ignore[attr-defined]
    again = _run(harness)
    assert again.status == "succeeded"
    assert again.dead_letters_open == 0
    assert all(sb.written(cid).get("value_tier") for cid in stuck)


def test_quota_stop_pauses_and_resumes_with_at_most_one_page_reread(harness: Harness) -> None:
    """R5: REQUEST_LIMIT_EXCEEDED on the second page: one call, checkpoint, paused_quota;
    the next run re-reads at most one page and finishes the work."""
    sb = harness.sandbox
    sb.rate_limit(kind="query_more", times=None)  # type: ignore[attr-defined]
    paused = _run(harness)
    assert paused.status == "paused_quota"
    assert sb.server.calls.count("query_more") == 1  # no retry storm, no further calls
    read_first = paused.counts.read
    assert 0 < read_first < CUSTOMERS
    sb.server.faults.clear()
    resumed = _run(harness)
    assert resumed.status == "succeeded"
    assert resumed.counts.read - (CUSTOMERS - read_first) <= 200  # ≤ 1 page re-read
    ids = harness.customer_ids()
    assert len(ids) == CUSTOMERS
    assert all(sb.written(cid).get("value_tier") for cid in ids)


def _outbox_ids(h: Harness, status: str) -> set[int]:
    with sa.create_engine(h.state_url()).connect() as conn:
        return set(
            conn.execute(
                sa.select(schema.outbox.c.id).where(schema.outbox.c.status == status)
            ).scalars()
        )


def test_quota_stop_during_writes_keeps_them_for_the_next_run(harness: Harness) -> None:
    """R5 on the write side: a rate limit on task upserts pauses the run; the writes it
    had planned stay in the outbox and the next run sends exactly those rows (re-reading
    a customer reuses its queued rows rather than planning twins), once each."""
    sb = harness.sandbox
    sb.rate_limit(kind="collections_upsert", times=None)  # type: ignore[attr-defined]
    paused = _run(harness)
    assert paused.status == "paused_quota"
    assert paused.counts.skipped["deferred_to_next_run"] > 0
    kept = _outbox_ids(harness, "pending")
    assert kept
    sb.server.faults.clear()
    resumed = _run(harness)
    assert resumed.status == "succeeded"
    assert kept <= _outbox_ids(harness, "done")  # the kept rows themselves went out
    assert not _outbox_ids(harness, "pending")
    assert not _outbox_ids(harness, "superseded")
    keys = [t.external_id for t in sb.tasks()]
    assert keys and len(keys) == len(set(keys))
    assert all(sb.written(cid).get("value_tier") for cid in harness.customer_ids())


def test_a_read_only_org_pauses_the_run_and_keeps_its_writes_for_the_next(
    harness: Harness,
) -> None:
    """Salesforce's read-only mode (planned maintenance) lasts hours and refuses every write
    (``INSERT_UPDATE_DELETE_NOT_ALLOWED_DURING_MAINTENANCE``). Nothing is wrong with the
    records, and a retry within the run cannot pass: the run stops writing at the first
    refusal (no retry loop spending API calls on every batch, no dead letter), pauses with
    a reason that names the read-only org, and keeps the writes in the outbox; the run
    after the window sends them."""
    sb = harness.sandbox
    sb.read_only_mode()  # type: ignore[attr-defined]
    paused = _run(harness)
    assert paused.status == "paused_quota"
    assert "read-only" in (paused.error or "")
    assert paused.counts.dead_lettered == 0 and paused.dead_letters_open == 0
    # the calls already sent when the first refusal came back, and no retry of any
    concurrency = load_config(harness.config).sync.write_concurrency
    assert 1 <= sb.write_calls() <= 2 * concurrency  # type: ignore[attr-defined]
    assert _outbox_ids(harness, "pending")
    sb.read_only_mode(False)  # type: ignore[attr-defined]
    resumed = _run(harness)
    assert resumed.status == "succeeded"
    assert not _outbox_ids(harness, "pending")
    assert all(sb.written(cid).get("value_tier") for cid in harness.customer_ids())


def test_a_webhook_batch_in_a_read_only_org_raises_read_only_for_its_worker(
    harness: Harness,
) -> None:
    """The webhook path pauses as the scheduled run does, and says why: the worker waits
    for a read-only CRM without giving its events up (``sync.worker``), where a quota or
    rate-limit pause counts towards burying them."""
    sb = harness.sandbox
    _run(harness)
    customer = harness.customer_ids()[0]
    sb.edit_customer(customer, RICH)  # type: ignore[attr-defined]
    sb.read_only_mode()  # type: ignore[attr-defined]
    with open_engine(load_config(harness.config), as_of=AS_OF) as engine:
        [record] = engine.connector.fetch([customer])
        with pytest.raises(ReadOnlyError, match="read-only"):
            engine.process_changes([record], {customer: "evt-1"})


def test_zero_reads_after_a_crash_fail_the_run(harness: Harness) -> None:
    """R7: the bookmark record is always re-read; reading nothing after a crash means
    something is wrong (records deleted, wrong object, a filter): failed, not succeeded."""
    killed = harness.run("--as-of", AS_OF.isoformat(), kill_at="before_write:1")
    assert killed.returncode == -signal.SIGKILL
    with sa.create_engine(harness.state_url()).connect() as conn:
        assert bookmarks.load(conn, "salesforce:Account") is not None
    harness.sandbox.store.clear("Account")
    after = harness.run("--as-of", AS_OF.isoformat())
    assert after.returncode == 1
    assert after.report is not None
    assert after.report["status"] == "failed"
    assert "read 0 records after an interrupted run" in after.report["error"]


def test_no_overlapping_runs_for_one_stream(harness: Harness) -> None:
    config = load_config(harness.config)
    with open_engine(config, as_of=AS_OF) as engine:
        assert engine.store.acquire_lock(engine.lock_name)
        busy = harness.run()
        assert busy.returncode == 5
        assert "already syncing" in busy.stderr
        engine.store.release_lock(engine.lock_name)
    assert harness.run().returncode == 0


def test_signpost_leaves_records_stamped_after_the_run_began(harness: Harness) -> None:
    """Records stamped after the run started are the next run's work, even if the CRM's
    clock runs ahead: the bookmark never passes them."""
    sb = harness.sandbox
    _run(harness)
    _run(harness)
    cid = _lower_tier_customers(harness, 1)[0]
    sb.edit_customer(cid, RICH, modstamp=datetime.now(UTC) + timedelta(hours=1))
    report = _run(harness)
    assert report.counts.written == 0
    with sa.create_engine(harness.state_url()).connect() as conn:
        bm = bookmarks.load(conn, "salesforce:Account")
    assert bm is not None and bm.cursor.modstamp < datetime.now(UTC) + timedelta(minutes=1)
