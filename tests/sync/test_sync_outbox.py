"""Outbox ids: every queued item must carry the id of its own row, whichever way the batch
is inserted (multi-row statements matched by name, or row by row for a repeated name)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest
import sqlalchemy as sa

from sync import bulkwrite, outbox
from sync.outbox import NewItem
from sync.schema import outbox as outbox_table
from sync.store import StateStore


def _rows_by_id(store: StateStore) -> dict[int, tuple[str, str, str, dict[str, object]]]:
    with store.begin() as conn:
        rows = conn.execute(
            sa.select(
                outbox_table.c.id,
                outbox_table.c.customer_id,
                outbox_table.c.kind,
                outbox_table.c.key,
                outbox_table.c.payload,
            )
        )
        return {int(r.id): (r.customer_id, r.kind, r.key, r.payload) for r in rows}


@pytest.mark.parametrize(
    "items",
    [
        pytest.param(
            [
                NewItem(
                    f"C{i:03d}", kind, f"C{i:03d}" if kind == "field_update" else f"k{i}", {"n": i}
                )
                for i in range(250)
                for kind in ("field_update", "membership")
            ],
            id="each-name-once",
        ),
        pytest.param(
            [
                NewItem("C1", "membership", "camp-1", {"member": True}),
                NewItem("C2", "field_update", "C2", {"Tier__c": "gold"}),
                NewItem("C1", "membership", "camp-1", {"member": False}),
            ],
            id="a-name-twice",
        ),
    ],
)
def test_each_item_gets_the_id_of_its_own_row(store: StateStore, items: list[NewItem]) -> None:
    with store.begin() as conn:
        outbox.enqueue(conn, "s", "r0", [NewItem("C0", "task", "earlier", {})], trigger="sync")
        queued = outbox.enqueue(conn, "s", "r1", items, trigger="sync")
    rows = _rows_by_id(store)
    assert len({item.id for item in queued}) == len(items)
    for item, new in zip(queued, items, strict=True):
        assert rows[item.id] == (new.customer_id, new.kind, new.key, new.payload)


def _marks(store: StateStore) -> list[sa.Row[tuple[int, str, int, str | None, str]]]:
    """Every outbox item's id, status, attempts, last error and update time, by id."""
    c = outbox_table.c
    with store.begin() as conn:
        return list(
            conn.execute(
                sa.select(c.id, c.status, c.attempts, c.last_error, c.updated_at).order_by(c.id)
            ).all()
        )


def test_set_status_marks_exactly_the_items_named_in_statements_of_500(store: StateStore) -> None:
    """1,201 items marked over three statements (``set_status`` writes straight through the
    driver); a retry's attempts and its error, cut to 200 characters; items not named keep
    what they had."""
    items = [NewItem(f"C{i:04d}", "field_update", f"C{i:04d}", {"n": i}) for i in range(1_300)]
    with store.begin() as conn:
        ids = [item.id for item in outbox.enqueue(conn, "s", "r1", items, trigger="sync")]
        outbox.set_status(conn, ids[:1_201], "done")
        outbox.set_status(conn, ids[1_201:1_250], "pending", attempts=2, error="E" * 250)
        outbox.set_status(conn, [], "dead")
    rows = _marks(store)
    assert [(r.id, r.status, r.attempts, r.last_error) for r in rows] == [
        *((i, "done", 0, None) for i in ids[:1_201]),
        *((i, "pending", 2, "E" * 200) for i in ids[1_201:1_250]),
        *((i, "pending", 0, None) for i in ids[1_250:]),
    ]
    assert all(r.updated_at for r in rows)


#: a CRM's error text as it may come: quotes, SQL, and every driver's parameter markers
HOSTILE_ERROR = "E'); DROP TABLE outbox; -- ? %s %(x)s :1 $1 %"


@pytest.mark.parametrize("marked", [500, 501])
def test_set_status_binds_every_value_at_a_statement_boundary(
    store: StateStore, marked: int
) -> None:
    """Exactly one statement's ids, and one more; an error text full of SQL and parameter
    markers is stored as it came (bound, never part of the statement's text)."""
    items = [NewItem(f"C{i:04d}", "field_update", f"C{i:04d}", {"n": i}) for i in range(502)]
    with store.begin() as conn:
        ids = [item.id for item in outbox.enqueue(conn, "s", "r1", items, trigger="sync")]
        outbox.set_status(conn, ids[:marked], "dead", attempts=3, error=HOSTILE_ERROR)
    assert [(r.id, r.status, r.attempts, r.last_error) for r in _marks(store)] == [
        *((i, "dead", 3, HOSTILE_ERROR) for i in ids[:marked]),
        *((i, "pending", 0, None) for i in ids[marked:]),
    ]


def test_driver_sql_takes_its_parameter_marker_from_the_driver() -> None:
    """``?`` for sqlite3 (``qmark``), ``%s`` for psycopg (``pyformat``); a driver with
    another paramstyle is refused by name, not sent SQL it would misread."""
    sqlite = sa.create_engine("sqlite://").dialect
    psycopg = sa.create_engine("postgresql+psycopg://u@h/db").dialect
    assert (bulkwrite.marker(sqlite), bulkwrite.marker(psycopg)) == ("?", "%s")
    numeric = SimpleNamespace(
        dbapi=SimpleNamespace(paramstyle="numeric"), paramstyle="numeric", driver="other"
    )
    with pytest.raises(ValueError, match="database driver 'other' takes 'numeric' parameters"):
        bulkwrite.marker(cast(sa.Dialect, numeric))


def test_queued_items_carry_their_plan_run_and_trigger(store: StateStore) -> None:
    """``enqueue`` returns each item as pending in memory: what was planned, never tried,
    of this run and trigger."""
    new = [
        NewItem("C1", "field_update", "C1", {"Tier__c": "gold"}, "evt-1"),
        NewItem("C2", "membership", "camp-1", {"campaign": "vip", "member": True}),
    ]
    with store.begin() as conn:
        queued = outbox.enqueue(conn, "s", "r1", new, trigger="sync")
    for item, planned in zip(queued, new, strict=True):
        assert (item.customer_id, item.kind, item.key, item.payload) == planned[:4]
        assert (item.attempts, item.run_id, item.trigger) == (0, "r1", "sync")
        assert (item.source_event_id, item.action) == (planned.source_event_id, None)


def test_a_write_once_unanswered_stays_so_whatever_its_later_attempts_answer(
    store: StateStore,
) -> None:
    """A timeout, then a locked record: the CRM answered the second call, not the first,
    which may have applied it. ``pending`` gives the mark back to the next run."""
    with store.begin() as conn:
        (item,) = outbox.enqueue(conn, "s", "r1", [NewItem("C1", "task", "k", {})], trigger="sync")
        outbox.set_status(conn, [item.id], "pending", attempts=1, error="TRANSIENT")
        outbox.set_status(conn, [item.id], "pending", attempts=2, error="RECORD_LOCKED")
        (again,) = outbox.pending(conn, "s")
        other = outbox.enqueue(conn, "s", "r1", [NewItem("C2", "task", "j", {})], trigger="sync")
        outbox.set_status(conn, [other[0].id], "pending", attempts=1, error="RECORD_LOCKED")
        locked = next(i for i in outbox.pending(conn, "s") if i.key == "j")
    assert (again.attempts, again.unanswered) == (2, True)
    assert (locked.attempts, locked.unanswered) == (1, False)
