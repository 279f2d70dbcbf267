"""A task whose write call went unanswered stays in doubt on record (``side_effects.in_doubt``,
``sync.state.mark_in_doubt``) until a write of it is answered: the customer's state
gives it to the planner (``Known.tasks_in_doubt``), so a sanctions hit closes it whatever
became of its outbox row and dead letter. A store of version 10 learns these marks from
the writes whose last call went unanswered (migration 11), encrypted or not.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.contract import WriteKind
from sync import outbox, schema, unanswered_backfill
from sync.crypto import StoreCipher
from sync.effect_rows import effect_row
from sync.outbox import NewItem, OutboxItem
from sync.records import Json
from sync.state import load_states, mark_in_doubt, save_side_effects, save_states
from sync.store import StateStore
from tests.sync.conftest import PG_URL, pg_schema

STREAM = "s"


def _customers(conn: sa.Connection, *ids: str) -> None:
    """The customers' rows, which the state of each is read with."""
    save_states(conn, STREAM, [{"customer_id": cid, "pseudonym": f"p-{cid}"} for cid in ids])


def _task(key: str, rule: str = "upgrade_call") -> OutboxItem:
    return OutboxItem(1, "C1", "task", key, {"rule": rule}, 1, "r1", "sync")


def _answered(item: OutboxItem, kind: WriteKind) -> dict[str, Json]:
    """The row of a write of the task answered: made (``task``) or closed (``task_close``)."""
    answered = OutboxItem(2, item.customer_id, kind, item.key, item.payload, 0, "r2", "sync")
    return effect_row(answered, "r2")[0]


@pytest.mark.parametrize(
    ("answered", "made", "in_doubt"),
    [
        (None, set(), {"k": "upgrade_call"}),  # unanswered alone: in doubt
        ("task", {"k"}, {}),  # made since: on record, no longer in doubt
        ("task_close", set(), {}),  # closed since: neither
    ],
)
def test_a_task_is_in_doubt_from_its_unanswered_call_until_a_write_of_it_is_answered(
    store: StateStore, answered: WriteKind | None, made: set[str], in_doubt: dict[str, str]
) -> None:
    item = _task("k")
    with store.begin() as conn:
        _customers(conn, "C1")
        mark_in_doubt(conn, STREAM, [item], "r1")
        if answered is not None:
            save_side_effects(conn, STREAM, [_answered(item, answered)])
        state = load_states(conn, STREAM, ["C1"])["C1"]
    assert (set(state.tasks), dict(state.tasks_in_doubt)) == (made, in_doubt)
    assert dict(state.known().tasks_in_doubt) == in_doubt


@pytest.mark.parametrize(("absent", "in_doubt"), [(False, {}), (True, {"k": "upgrade_call"})])
def test_a_closure_of_a_task_in_doubt_the_crm_did_not_hold_keeps_it_in_doubt(
    store: StateStore, absent: bool, in_doubt: dict[str, str]
) -> None:
    """A closure the CRM answered without holding the key (``WriteResult.absent``) says
    nothing of the unanswered making, which may land after its look-up: the task stays in
    doubt, so the restricted customer's next closure looks for it again. A closure that
    found the task ends the doubt."""
    item = _task("k")
    closure = OutboxItem(
        2, "C1", "task_close", "k", {"rule": "upgrade_call", "in_doubt": True}, 0, "r2", "sync"
    )
    with store.begin() as conn:
        _customers(conn, "C1")
        mark_in_doubt(conn, STREAM, [item], "r1")
        save_side_effects(conn, STREAM, [effect_row(closure, "r2", absent)[0]])
        state = load_states(conn, STREAM, ["C1"])["C1"]
    assert (set(state.tasks), dict(state.tasks_in_doubt)) == (set(), in_doubt)


def test_an_unanswered_call_of_a_task_on_record_leaves_it_made(store: StateStore) -> None:
    """A re-sent task crmtier made stays on record as made (a closure of it is not in
    doubt), and the mark goes with the next answered write of it."""
    item = _task("k")
    with store.begin() as conn:
        _customers(conn, "C1")
        save_side_effects(conn, STREAM, [_answered(item, "task")])
        mark_in_doubt(conn, STREAM, [item], "r3")
        state = load_states(conn, STREAM, ["C1"])["C1"]
    assert (set(state.tasks), dict(state.task_rules), dict(state.tasks_in_doubt)) == (
        {"k"},
        {"k": "upgrade_call"},
        {},
    )


#: outbox rows of a version-10 store: (customer, kind, key, status, last error, made: True
#: when open on record, a time when closed then) and whether the upgrade marks it in doubt
ROWS = [
    ("C1", "task", "k-dead", "dead", "TRANSIENT", False, True),  # its letter open or not
    ("C1", "task", "k-superseded", "superseded", "TRANSIENT", False, True),  # not wanted since
    ("C1", "task", "k-pending", "pending", "TRANSIENT", False, True),  # to be retried
    ("C1", "task", "k-made", "dead", "TRANSIENT", True, False),  # on record as made
    ("C1", "task", "k-refused", "dead", "FIELD_INTEGRITY_EXCEPTION", False, False),
    # attempted, to be retried, its last call refused (a locked record): an earlier one
    # may have gone unanswered, and the rule of before held it as one that may have landed
    ("C1", "task", "k-locked", "pending", "UNABLE_TO_LOCK_ROW", False, True),
    ("C2", "task", "k-twice", "superseded", "TRANSIENT", False, True),  # queued twice:
    ("C2", "task", "k-twice", "dead", "TRANSIENT", False, True),  # marked once
    ("C2", "task", "k-done", "done", "TRANSIENT", True, False),  # its retry went through
    ("C2", "membership", "m", "pending", "TRANSIENT", False, False),  # not a task
    # closed before its key was sent again (its row older than the outbox row): in doubt
    ("C2", "task", "k-closed-before", "dead", "TRANSIENT", "0000", True),
    ("C2", "task", "k-closed-after", "dead", "TRANSIENT", "9999", False),  # closed since
]


def _version_10(store: StateStore) -> None:
    """The store as version 10 left it, with ``ROWS`` in its outbox."""
    with store.begin() as conn:
        conn.execute(sa.text("ALTER TABLE outbox DROP COLUMN unanswered"))
        conn.execute(sa.text("ALTER TABLE side_effects DROP COLUMN in_doubt"))
        conn.execute(schema.schema_version.update().values(version=10))
        _customers(conn, "C1", "C2")
        for cid, kind, key, status, error, made in [r[:6] for r in ROWS]:
            payload = {"rule": "upgrade_call"} if kind == "task" else {"campaign": "vip"}
            (item,) = outbox.enqueue(
                conn, STREAM, "r1", [NewItem(cid, kind, key, payload)], trigger="sync"
            )
            table = schema.outbox
            conn.execute(
                table.update()
                .where(table.c.id == item.id)
                .values(status=status, last_error=error, attempts=2)
            )
            if made:  # True: open on record; else closed, its row updated at ``made``
                effects = schema.side_effects
                conn.execute(
                    effects.insert().values(
                        stream=STREAM, kind="task", key=key, customer_id=cid,
                        rule="upgrade_call", active=made is True,
                        updated_at="x" if made is True else made,
                    )
                )  # fmt: skip


def _check_upgraded(store: StateStore) -> None:
    assert store.migrate("sync", schema.SYNC_MIGRATIONS) == schema.SYNC_MIGRATIONS[-1].version
    step = next(m for m in schema.SYNC_MIGRATIONS if m.version == 11)
    with store.begin() as conn:
        step.apply(conn)  # safe to repeat (a crash before its version was recorded)
        table = schema.outbox
        flags = dict(conn.execute(sa.select(table.c.key, table.c.unanswered)).tuples().all())
        states = load_states(conn, STREAM, ["C1", "C2"])
    assert {key for key, flag in flags.items() if flag} == {
        r[2] for r in ROWS if r[4] == "TRANSIENT" or r[3] == "pending"
    }
    doubted = {key for state in states.values() for key in state.tasks_in_doubt}
    assert doubted == {r[2] for r in ROWS if r[6]}
    assert states["C1"].tasks_in_doubt["k-dead"] == "upgrade_call"
    assert set(states["C1"].tasks) == {"k-made"}  # on record as it was


@pytest.mark.parametrize("batch", [1000, 2], ids=["one-batch", "batches-of-2"])
def test_a_version_10_store_marks_the_tasks_whose_call_went_unanswered(
    store: StateStore, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read in batches (a large outbox is never held whole), the marks are the same."""
    monkeypatch.setattr(unanswered_backfill, "_BATCH", batch)
    _version_10(store)
    _check_upgraded(store)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_an_encrypted_version_10_store_reads_the_rules_from_its_encrypted_payloads(
    tmp_path: Path, backend: str
) -> None:
    """The payloads are ciphertexts: the upgrade reads each rule with the store's key;
    opened without it, the store stays at version 10, to be upgraded with the key."""
    if backend == "sqlite":
        _encrypted_upgrade(f"sqlite:///{tmp_path / 'state.db'}")
    else:
        with pg_schema() as name:
            _encrypted_upgrade(f"{PG_URL}?options=-csearch_path%3D{name}")


def _encrypted_upgrade(url: str) -> None:
    """A version-10 store encrypted under a key, upgraded without it (refused), then with it."""
    cipher = StoreCipher(b"\x07" * 32)
    store = StateStore.open(url, cipher=cipher)
    try:
        _version_10(store)
    finally:
        store.close()
    with pytest.raises(Exception, match="encrypted; set \\[state\\] encryption_key"):
        StateStore.open(url)
    store = StateStore.open(url, cipher=cipher)
    try:
        _check_upgraded(store)
    finally:
        store.close()
