"""State, inputs, outbox and audit rows written in bulk (``sync.bulkwrite``) are stored
exactly as SQLAlchemy's own statements stored them, on both backends, so stores written
before keep working beside rows written now; an audit chain that rows of both writers
extend still verifies.

The "before" side is spelled out here as it was: SQLAlchemy ``insert()`` statements with
``on_conflict_do_update`` over dict rows, and the audit hash through ``json.dumps``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from connectors.contract import CrmRecord
from sync import audit, bulkwrite, crypto, inputs, outbox, state
from sync.audit import GENESIS, HEAD_KEY, AuditEntry
from sync.crypto import StoreCipher
from sync.outbox import NewItem
from sync.schema import assessed_inputs, customers, meta, side_effects
from sync.schema import audit as audit_table
from sync.schema import outbox as outbox_table
from sync.store import StateStore
from tests.sync.conftest import PG_URL, pg_schema
from tests.sync.test_sync_store import _entry
from tiering_core.models import CustomerProfile

NOW = "2026-06-30T12:00:00.000000Z"
STREAM = "salesforce:Account"

STATE_ROWS: list[dict[str, Any]] = [
    {
        "customer_id": "001A",
        "pseudonym": "cust_a",
        "tiers": {"value_tier": "private", "aml_risk": "high"},
        "assessed_at": "2026-06-30",
        "below_floor_since": None,
        "input_hash": "ab" * 32,
        "run_id": "r1",
    },
    {
        "customer_id": "001B",
        "pseudonym": "cust_b",
        "tiers": None,
        "assessed_at": "2026-06-30",
        "below_floor_since": "2026-01-02",
        "input_hash": "cd" * 32,
        "run_id": "r1",
    },
    # a second column set, as a page's queued decisions make: pending, no tiers yet
    {
        "customer_id": "001C",
        "pseudonym": "cust_c",
        "pending": {"tiers": {"value_tier": "mass"}, "reasons": "AUM ¥1,234 — 低"},
        "run_id": "r1",
    },
    {"customer_id": "001D", "pseudonym": "cust_d", "pending": None, "run_id": "r1"},
]
UPDATES: list[dict[str, Any]] = [  # the same customers again: an upsert updates, keeps pseudonym
    {**STATE_ROWS[0], "pseudonym": "other", "tiers": {"value_tier": "affluent"}},
    {"customer_id": "001C", "pseudonym": "other", "pending": None, "run_id": "r2"},
]
EFFECTS: list[dict[str, Any]] = [
    {
        "kind": "task",
        "key": "t1",
        "customer_id": "001A",
        "campaign": None,
        "rule": "edd",
        "active": True,
        "run_id": "r1",
    },
    {
        "kind": "membership",
        "key": "m1",
        "customer_id": "001B",
        "campaign": "c1",
        "rule": None,
        "active": False,
        "run_id": "r1",
    },
]
ITEMS = [
    NewItem("001A", "field_update", "001A", {"value_tier": "private", "score": 91.5}),
    NewItem("001B", "membership", "m1", {"campaign": "c1", "member": True}, "evt-9"),
    NewItem("001A", "task", "t1", {"subject": "Review — ¥"}),
]


def _old_upsert(
    conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], keys: tuple[str, ...]
) -> None:
    """The state store's upsert as it was: one SQLAlchemy statement over dict rows."""
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
    columns = [c for c in rows[0] if c not in keys and c != "pseudonym"]
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=list(keys), set_={c: insert.excluded[c] for c in columns}
        ),
        rows,
    )


def _old_states(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        full = {"stream": STREAM, **row, "updated_at": NOW}
        groups.setdefault(tuple(sorted(full)), []).append(full)
    for group in groups.values():
        _old_upsert(conn, customers, group, ("stream", "customer_id"))


def _old_hash(prev: str, row: dict[str, Any], key: bytes) -> str:
    body = {k: v for k, v in row.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key, (prev + canonical).encode("utf-8"), hashlib.sha256).hexdigest()


def _old_append(conn: sa.Connection, entries: list[AuditEntry], keys: audit.AuditKeys) -> None:
    """``audit.append`` as it was: a dict per row, ``json.dumps``, a SQLAlchemy insert."""
    head = conn.execute(sa.select(meta.c.value).where(meta.c.key == HEAD_KEY)).scalar()
    if head is None:
        conn.execute(meta.insert().values(key=HEAD_KEY, value=f"0:{GENESIS}"))
        head = f"0:{GENESIS}"
    seq_text, _, prev = str(head).partition(":")
    seq, rows = int(seq_text), []
    for entry in entries:
        seq += 1
        row = {"seq": seq, "at": NOW, **vars(entry), "key_id": keys.key_id, "prev_hash": prev}
        row["hash"] = prev = _old_hash(prev, row, keys.current)
        rows.append(row)
    conn.execute(audit_table.insert(), rows)
    conn.execute(meta.update().where(meta.c.key == HEAD_KEY).values(value=f"{seq}:{prev}"))


def _old_enqueue(conn: sa.Connection, items: list[NewItem]) -> None:
    conn.execute(
        outbox_table.insert(),
        [
            {
                "stream": STREAM,
                "run_id": "r1",
                "customer_id": i.customer_id,
                "kind": i.kind,
                "key": i.key,
                "payload": i.payload,
                "status": "pending",
                "attempts": 0,
                "trigger": "sync",
                "source_event_id": i.source_event_id,
                "created_at": NOW,
                "updated_at": NOW,
            }
            for i in items
        ],
    )


RECORDS = [
    CrmRecord(
        CustomerProfile.model_validate({"id": cid, "assets": {"deposits": 1.5}}),
        datetime(2026, 6, 1, tzinfo=UTC),
        {"value_tier": None, "reasons": "ü"},
    )
    for cid in ("001A", "001B", "001A")  # a customer read twice in a page: saved once
]


def _old_inputs(conn: sa.Connection) -> None:
    rows = {
        r.profile.id: {
            "stream": STREAM,
            "customer_id": r.profile.id,
            "profile": inputs.profile_text(r.profile),
            "current": dict(r.current),
            "as_of": "2026-06-30",
            "updated_at": NOW,
        }
        for r in RECORDS
    }
    _old_upsert(conn, assessed_inputs, list(rows.values()), ("stream", "customer_id"))


def _stored(
    conn: sa.Connection, table: sa.Table, *, skip: tuple[str, ...] = ()
) -> list[tuple[Any, ...]]:
    """Every row as the database holds it: each column as text, undecoded."""
    cols = [c for c in table.c if c.name not in skip]
    query = sa.select(*(sa.cast(c, sa.Text) for c in cols)).order_by(*table.primary_key.columns)
    return [tuple(r) for r in conn.execute(query)]


@contextmanager
def _undone(store: StateStore) -> Iterator[sa.Connection]:
    """A transaction of the store that is rolled back afterwards."""
    with store.engine.connect() as conn:
        trans = conn.begin()
        try:
            yield conn
        finally:
            trans.rollback()


def _snapshot(store: StateStore, write: Callable[[sa.Connection], None]) -> dict[str, Any]:
    with _undone(store) as conn:
        write(conn)
        return {
            "customers": _stored(conn, customers),
            "side_effects": _stored(conn, side_effects),
            "inputs": _stored(conn, assessed_inputs),
            "outbox": _stored(conn, outbox_table, skip=("id",)),
            "audit": _stored(conn, audit_table),
            "head": conn.execute(sa.select(meta.c.value).where(meta.c.key == HEAD_KEY)).scalar(),
        }


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (state, inputs, outbox, audit):
        monkeypatch.setattr(module, "now_text", lambda: NOW)


@pytest.mark.usefixtures("fixed_clock")
def test_rows_are_stored_exactly_as_sqlalchemy_stored_them(store: StateStore) -> None:
    _stored_alike(store)


@pytest.mark.usefixtures("fixed_clock")
@pytest.mark.parametrize("encrypted", [True, False], ids=["cipher", "no-cipher"])
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_rows_of_a_store_opened_as_crmtier_opens_it_are_stored_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, encrypted: bool
) -> None:
    """The store as ``crmtier`` opens it (its engine's JSON serializer, its cipher), on
    both backends: with a cipher, on SQLite the bulk path seals the encrypted columns
    itself (``EncryptedJSON.seal`` before the serializer), on PostgreSQL through the type
    decorator's processor, and an encrypted text column (``assessed_inputs.profile``) is
    sealed on both, never passed through as it is; without one, that column is stored as
    given. One nonce for every value (a test only) makes the ciphertexts comparable
    whichever order the two paths seal them in."""
    with ExitStack() as stack:
        url = f"sqlite:///{tmp_path / 's.db'}"
        if backend == "postgres":
            url = f"{PG_URL}?options=-csearch_path%3D{stack.enter_context(pg_schema())}"
        # after the schema is named: ``crypto.os`` is the os module, and a uuid4 from
        # zero bytes would give every worker's schema the same name
        monkeypatch.setattr(crypto.os, "urandom", bytes)
        store = StateStore.open(url, cipher=StoreCipher(b"k" * 32) if encrypted else None)
        stack.callback(store.close)
        after = _stored_alike(store)
    assert after["outbox"] and after["inputs"]
    payloads = [json.loads(row[5]) for row in after["outbox"]]
    assert all(crypto.is_ciphertext(p) == encrypted for p in payloads)
    assert all(crypto.is_ciphertext(row[2]) == encrypted for row in after["inputs"])  # profile


def _stored_alike(store: StateStore) -> dict[str, Any]:
    """The rows the bulk writers store, compared with SQLAlchemy's statements'."""
    inputs.ensure_table(store)
    keys = store.audit_keys
    entries = [_entry(i) for i in range(5)] + [
        AuditEntry(**{**vars(_entry(9)), "old": None, "source_event_id": "evt ¥ ü"})
    ]

    def old(conn: sa.Connection) -> None:
        _old_states(conn, STATE_ROWS)
        _old_states(conn, UPDATES)
        _old_upsert(
            conn,
            side_effects,
            [{"stream": STREAM, **r, "updated_at": NOW} for r in EFFECTS],
            ("stream", "kind", "key"),
        )
        _old_inputs(conn)
        _old_enqueue(conn, ITEMS)
        _old_append(conn, entries, keys)

    def new(conn: sa.Connection) -> None:
        state.save_states(conn, STREAM, STATE_ROWS)
        state.save_states(conn, STREAM, UPDATES)
        state.save_side_effects(conn, STREAM, EFFECTS)
        inputs.save_inputs(conn, STREAM, RECORDS, "2026-06-30")
        outbox.enqueue(conn, STREAM, "r1", ITEMS, trigger="sync")
        audit.append(conn, entries, keys)

    before, after = _snapshot(store, old), _snapshot(store, new)
    assert after == before
    assert [r[2] for r in after["customers"]] == ["cust_a", "cust_b", "cust_c", "cust_d"]
    return after


def test_an_encrypted_store_reads_back_what_was_written(tmp_path: Path) -> None:
    store = StateStore.open(f"sqlite:///{tmp_path / 's.db'}", cipher=StoreCipher(b"k" * 32))
    try:
        with store.begin() as conn:
            state.save_states(conn, STREAM, STATE_ROWS)
            added = outbox.enqueue(conn, STREAM, "r1", ITEMS, trigger="sync")
        with store.begin() as conn:
            raw = conn.exec_driver_sql("SELECT pending FROM customers ORDER BY customer_id").all()
            loaded = state.load_states(conn, STREAM, ["001A", "001C", "001D"])
            queued = outbox.pending(conn, STREAM)
    finally:
        store.close()
    # not written: SQL NULL; None: JSON null, as SQLAlchemy stores it; else a ciphertext's JSON
    assert raw[0][0] is None and raw[3][0] == "null" and raw[2][0].startswith('"enc1:')
    assert loaded["001C"].pending == STATE_ROWS[2]["pending"]
    assert loaded["001D"].pending is None
    assert [(i.id, i.payload) for i in queued] == [(a.id, a.payload) for a in added]


def test_a_chain_of_rows_by_the_old_and_the_new_writer_verifies(store: StateStore) -> None:
    keys = store.audit_keys
    with store.begin() as conn:
        _old_append(conn, [_entry(i) for i in range(3)], keys)
    with store.begin() as conn:
        audit.append(conn, [_entry(i) for i in range(3, 7)], keys)
    with store.begin() as conn:
        _old_append(conn, [_entry(7)], keys)
        audit.append(conn, [_entry(8)], keys)
    with store.begin() as conn:
        result = audit.verify(conn, keys)
        assert result.ok and result.rows == 9, result
        conn.execute(
            audit_table.update().where(audit_table.c.seq == 5).values(actor="someone else")
        )
        assert audit.verify(conn, keys).first_bad_seq == 5


def test_outbox_ids_ascend_in_item_order_after_every_earlier_row(store: StateStore) -> None:
    with store.begin() as conn:
        first = outbox.enqueue(conn, STREAM, "r1", ITEMS, trigger="sync")
    with store.begin() as conn:
        second = outbox.enqueue(conn, STREAM, "r2", ITEMS[:2], trigger="sync")
        stored = conn.execute(
            sa.select(outbox_table.c.id, outbox_table.c.run_id, outbox_table.c.key).order_by(
                outbox_table.c.id
            )
        ).all()
    ids = [i.id for i in first + second]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert [tuple(r) for r in stored] == [(i.id, i.run_id, i.key) for i in first + second]


@pytest.mark.parametrize("size", [1, 7, 4_000])  # 4,000 rows: several PostgreSQL statements
def test_an_upsert_keeps_the_last_row_of_a_key_and_an_existing_pseudonym(
    store: StateStore, size: int
) -> None:
    columns = ("stream", "customer_id", "pseudonym", "run_id", "updated_at")
    rows = [(STREAM, f"C{i % size:05d}", "later", "r1", f"u{i}") for i in range(size + 3)]
    with store.begin() as conn:
        first = [(STREAM, "C00000", "first", "r0", "u")]
        bulkwrite.upsert_rows(conn, customers, columns, first, ("stream", "customer_id"))
        bulkwrite.upsert_rows(
            conn, customers, columns, rows, ("stream", "customer_id"), keep=("pseudonym",)
        )
        stored = {
            r.customer_id: (r.pseudonym, r.updated_at) for r in conn.execute(sa.select(customers))
        }
    last = {cid: at for _, cid, _, _, at in rows}
    assert stored == {
        cid: ("first" if cid == "C00000" else "later", at) for cid, at in last.items()
    }
