"""Recording the write calls that landed together (``Recorder.record_results``): one
transaction, and the run's memory changed only once it has committed; likewise a page's
unchanged customers (``Recorder.unchanged``) count only if the page's transaction commits."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.contract import WriteResult
from sync import outbox, page_step, recorder, schema
from sync.audit import AuditEntry, AuditKeys
from sync.engine import RunOptions
from sync.maybe_made import MaybeMade
from sync.outbox import NewItem
from sync.planning import PagePlanner
from sync.recorder import Answered, Recorder, StateRow
from sync.records import Decision, Outcome, PendingDecision, Planned
from sync.runs import RunCounts
from sync.store import StateStore
from tests.sync.test_write_pipeline import AS_OF, PAGE, PagedCrm, engine_for


@pytest.mark.parametrize("failing", ["states", "audit"])
def test_a_record_whose_commit_fails_leaves_the_counts_as_the_database_holds_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """The second promotion's transaction fails (a locked database, a lost connection) at
    its states or at its audit rows, its last statement: it rolls back, and so must the
    run's counts, outcomes and open decisions, or the run record claims writes the outbox
    never marked done."""
    crm = PagedCrm(pages=2)
    save_states, append = recorder.save_states, recorder.append
    promotions = 0
    locked = sa.exc.OperationalError("UPDATE customers", {}, Exception("locked"))

    def failing_second(conn: sa.Connection, stream: str, rows: list[StateRow]) -> None:
        nonlocal promotions
        if rows and rows[0].get("pending", ...) is None:  # a promotion, not a parked decision
            promotions += 1
            if promotions == 2 and failing == "states":
                raise locked
        save_states(conn, stream, rows)

    def failing_audit(conn: sa.Connection, entries: list[AuditEntry], keys: AuditKeys) -> None:
        if promotions == 2:
            raise locked
        append(conn, entries, keys)

    monkeypatch.setattr(recorder, "save_states", failing_second)
    monkeypatch.setattr(recorder, "append", failing_audit)
    report = engine_for(crm, tmp_path).run(RunOptions(as_of=AS_OF))
    assert report.status == "failed"
    with sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}").connect() as conn:
        done = conn.execute(
            sa.select(sa.func.count()).where(schema.outbox.c.status == "done")
        ).scalar_one()
        states = conn.execute(sa.select(schema.customers.c.pending, schema.customers.c.tiers))
        promoted = sum(pending is None and tiers is not None for pending, tiers in states)
        saved = conn.execute(sa.select(schema.runs.c.counts)).scalar_one()
    assert 0 < done < len(crm.ids)  # some calls were recorded, not all
    assert report.counts.writes["field_update"] == done
    assert report.counts.written == promoted == done  # one field write per customer
    assert saved["written"] == done


def test_a_page_whose_commit_fails_leaves_its_unchanged_customers_uncounted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CRM already shows every decision, so each customer is recorded unchanged (its
    first state row and ``tier_change`` audit row, no write). The second page's
    transaction fails at its checkpoint and rolls back: the run's counts (every one its
    commit step made, its planned ones too) and outcomes keep the first page's customers
    only, as the database does."""
    crm = PagedCrm(pages=2)
    crm.tiers = dict.fromkeys(crm.ids, "private")  # what fields_only decides for them all
    checkpoint = page_step.runs.checkpoint
    pages = 0

    def failing_second(conn: sa.Connection, run_id: str, counts: RunCounts, calls: dict) -> None:
        nonlocal pages
        pages += 1
        if pages == 2:
            raise sa.exc.OperationalError("UPDATE runs", {}, Exception("locked"))
        checkpoint(conn, run_id, counts, calls)

    monkeypatch.setattr(page_step.runs, "checkpoint", failing_second)
    count_planned = PagePlanner.count_planned

    def count_every_plan(self: PagePlanner, plans: list[Planned]) -> None:
        """Each plan counted planned too, inside the page's transaction: as a page's
        tasks and memberships are (field writes alone plan none)."""
        count_planned(self, plans)
        self.counts.planned["plans"] += len(plans)

    monkeypatch.setattr(PagePlanner, "count_planned", count_every_plan)
    report = engine_for(crm, tmp_path).run(RunOptions(as_of=AS_OF))
    assert report.status == "failed"
    with sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}").connect() as conn:
        stored = conn.execute(sa.select(schema.customers.c.customer_id)).scalars().all()
    assert sorted(stored) == crm.ids[:PAGE]
    assert (report.counts.unchanged, report.counts.written) == (PAGE, 0)
    assert report.counts.changes == {"none -> private": PAGE}
    assert report.counts.planned == {"plans": PAGE}
    assert report.outcomes == dict.fromkeys(crm.ids[:PAGE], Outcome.UNCHANGED)


STREAM = "paged:Customer"


def _pending(tier: str) -> PendingDecision:
    return PendingDecision(
        tiers={"value_tier": tier},
        fields={"value_tier": tier},
        assessed_at=AS_OF,
        below_floor_since=None,
        reason_codes=("VALUE_TEST",),
        policy_version="p1",
        input_hash="h-" + tier,
        run_id="run-1",
        trigger="sync",
        source_event_id=None,
    )


def _record(tmp_path: Path, together: bool) -> tuple[object, ...]:
    """One scenario's calls, recorded together or each alone: A's decision spread over
    two calls (its field, then its task: a side-effect audit row), B's field write retried,
    C's field write dead-lettered, D's field written beside its task dead-lettered, and E
    promoted by the first call (closing the letter an earlier call left it) then
    dead-lettered by the second; and F, an earlier run's decision, its field dead in the
    first call and its task written in the second (recovered, its tiers kept). What the
    database holds, the run's counts and letters, the retries, and how many commits it
    took."""
    store = StateStore.open(f"sqlite:///{tmp_path / ('together' if together else 'alone')}.db")
    decisions: dict[str, Decision] = {}
    rec = Recorder(
        store,
        STREAM,
        "run-1",
        key=b"k" * 32,
        audit_keys=store.audit_keys,
        trigger="sync",
        actor="test",
        retry_attempts=3,
        decisions=decisions,
        maybe_made=MaybeMade("run-1"),
    )
    task = {"rule": "call", "priority": "high", "due": "2026-05-09", "queue": "rm"}
    new = [
        NewItem("E", "field_update", "E", {"value_tier": "old"}),
        NewItem("A", "field_update", "A", {"value_tier": "gold"}),
        NewItem("B", "field_update", "B", {"value_tier": "gold"}),
        NewItem("E", "field_update", "E", {"value_tier": "gold"}),
        NewItem("A", "task", "A:call", task),
        NewItem("C", "field_update", "C", {"value_tier": "gold"}),
        NewItem("E", "membership", "E:vip", {"campaign": "vip", "member": True}),
        NewItem("D", "field_update", "D", {"value_tier": "gold"}),
        NewItem("D", "task", "D:call", task),
        NewItem("F", "field_update", "F", {"value_tier": "gold"}),
        NewItem("F", "task", "F:call", task),
    ]
    with store.begin() as conn:
        e0, a1, b1, e1, a2, c1, e2, d1, d2, f1, f2 = outbox.enqueue(
            conn, STREAM, "run-1", new, trigger="sync"
        )
    rec.record_results([([e0], [WriteResult("field_update", "E", False, "BAD", "no")])])
    for cid, ids in (
        ("A", {a1.id, a2.id}),
        ("B", {b1.id}),
        ("C", {c1.id}),
        ("D", {d1.id, d2.id}),
        ("E", {e1.id}),
    ):
        decisions[cid] = Decision(cid, _pending("gold"), ids, this_run=True, base=None)
    decisions["F"] = Decision("F", _pending("gold"), {f1.id, f2.id}, this_run=False, base=None)
    calls: list[Answered] = [
        (
            [a1, b1, e1, f1],
            [
                WriteResult("field_update", "A", True),
                WriteResult("field_update", "B", False, "BUSY", "later", retryable=True),
                WriteResult("field_update", "E", True),
                WriteResult("field_update", "F", False, "INVALID", "bad value"),
            ],
        ),
        (
            [a2, c1, e2, d1, d2, f2],
            [
                WriteResult("task", "A:call", True),
                WriteResult("field_update", "C", False, "INVALID", "bad value"),
                WriteResult("membership", "E:vip", False, "INVALID", "no campaign"),
                WriteResult("field_update", "D", True),
                WriteResult("task", "D:call", False, "INVALID", "no queue"),
                WriteResult("task", "F:call", True),
            ],
        ),
    ]
    commits = 0

    def count(conn: sa.Connection) -> None:
        nonlocal commits
        commits += 1

    sa.event.listen(store.engine, "commit", count)
    retries = [
        r
        for batch in ([calls] if together else [[c] for c in calls])
        for r in rec.record_results(batch)
    ]
    sa.event.remove(store.engine, "commit", count)
    with store.begin() as conn:
        rows = [
            conn.execute(sa.select(*cols).order_by(*order)).all()
            for cols, order in (
                ((schema.outbox.c.id, schema.outbox.c.status, schema.outbox.c.attempts), ()),
                (
                    (schema.dead_letters.c.customer_id, schema.dead_letters.c.status),
                    (schema.dead_letters.c.id,),
                ),
                (
                    (
                        schema.customers.c.customer_id,
                        schema.customers.c.tiers,
                        schema.customers.c.input_hash,
                        schema.customers.c.pending,
                    ),
                    (schema.customers.c.customer_id,),
                ),
                ((schema.side_effects.c.key, schema.side_effects.c.active), ()),
                (
                    (schema.audit.c.event, schema.audit.c.customer_ref, schema.audit.c.new),
                    (schema.audit.c.seq,),
                ),
            )
        ]
    store.close()
    state = (rec.counts, rec.outcomes, sorted(rec.dead_letter_customers), sorted(decisions))
    return (*rows, state, retries, commits)


def test_calls_recorded_together_leave_what_each_recorded_alone_would_in_one_commit(
    tmp_path: Path,
) -> None:
    *alone, commits_alone = _record(tmp_path, together=False)
    *together, commits_together = _record(tmp_path, together=True)
    assert together == alone
    assert (commits_alone, commits_together) == (2, 1)
    outbox_rows, letters, *_ = together
    assert [status for _, status, _ in outbox_rows] == [
        "dead",
        "done",
        "pending",
        "done",
        "done",
        "dead",
        "dead",
        "done",
        "dead",
        "dead",
        "done",
    ]
    assert letters == [
        ("E", "resolved"),
        ("F", "open"),
        ("C", "open"),
        ("E", "open"),
        ("D", "open"),
    ]
    # promoted: A whole; C's only write (its field) dead, so its committed tiers stay as
    # they were (none); D's field landed beside a dead task: its tiers move, its input
    # hash goes (planned again on its next read); E by the first call, before its dead
    # membership (no decision left open to mark)
    assert together[2] == [
        ("A", {"value_tier": "gold"}, "h-gold", None),
        ("C", None, None, None),
        ("D", {"value_tier": "gold"}, None, None),
        ("E", {"value_tier": "gold"}, "h-gold", None),
        ("F", None, None, None),
    ]
    counts = together[5][0]
    assert (counts.written, counts.dead_lettered, counts.recovered) == (2, 2, 1)
