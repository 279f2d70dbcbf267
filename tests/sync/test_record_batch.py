"""Recording the write calls that landed together (``Recorder.record_results``): one
transaction, and the run's memory changed only once it has committed."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from sync import recorder, schema
from sync.engine import RunOptions
from sync.recorder import StateRow
from tests.sync.test_write_pipeline import AS_OF, PagedCrm, engine_for


def test_a_record_whose_commit_fails_leaves_the_counts_as_the_database_holds_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second promotion's commit fails (a locked database, a lost connection): its
    transaction rolls back, and so must the run's counts, outcomes and open decisions, or
    the run record claims writes the outbox never marked done."""
    crm = PagedCrm(pages=2)
    save_states = recorder.save_states
    promotions = 0

    def failing_second(conn: sa.Connection, stream: str, rows: list[StateRow]) -> None:
        nonlocal promotions
        if rows and rows[0].get("pending", ...) is None:  # a promotion, not a parked decision
            promotions += 1
            if promotions == 2:
                raise sa.exc.OperationalError("UPDATE customers", {}, Exception("locked"))
        save_states(conn, stream, rows)

    monkeypatch.setattr(recorder, "save_states", failing_second)
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
