"""The audit chain is keyed: whoever can write the database but does not hold the key
cannot edit a row, recompute the chain and pass ``verify``; keys rotate with the key id in
each row; rows written before the upgrade stay verifiable; the SQLite store is 0600."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sync import audit, migrate, schema
from sync.audit import GENESIS, HEAD_KEY, AuditKeys
from sync.store import StateStore, readable_by_others
from tests.sync.test_sync_store import _entry  # one audit row, as the store tests make it

KEY_A, KEY_B = b"a" * 32, b"b" * 32


def _append(store: StateStore, n: int, start: int = 0) -> None:
    keys = store.audit_keys
    with store.begin() as conn:
        audit.append(conn, [_entry(i) for i in range(start, start + n)], keys)


def _verify(store: StateStore) -> audit.VerifyResult:
    keys = store.audit_keys
    with store.begin() as conn:
        return audit.verify(conn, keys)


def _rechain(conn: sa.Connection, key: bytes | None, *, drop_key_id: bool = False) -> None:
    """What an attacker with write access does after editing a row: recompute every hash
    and the head, with a key of their own (or unkeyed SHA-256, the pre-upgrade way)."""
    prev = GENESIS
    rows = [dict(r._mapping) for r in conn.execute(sa.select(schema.audit).order_by("seq"))]
    for row in rows:
        if drop_key_id:
            row["key_id"] = None
        elif key is not None:
            row["key_id"] = audit.audit_key_id(key)
        row["prev_hash"] = prev
        row["hash"] = prev = audit.row_hash(prev, row, key)
        conn.execute(
            schema.audit.update()
            .where(schema.audit.c.seq == row["seq"])
            .values(key_id=row["key_id"], prev_hash=row["prev_hash"], hash=row["hash"])
        )
    conn.execute(
        schema.meta.update()
        .where(schema.meta.c.key == HEAD_KEY)
        .values(value=f"{rows[-1]['seq']}:{prev}")
    )


EDIT = 'UPDATE audit SET new = \'{"value_tier": "private"}\' WHERE seq = 2'


@pytest.mark.parametrize(
    "attack",
    [
        "rechain with own key",
        "rechain unkeyed",
        "rechain as pre-upgrade rows",
        "and claim every row pre-upgrade",
    ],
)
def test_a_tampered_and_rechained_trail_fails_verify(store: StateStore, attack: str) -> None:
    _append(store, 4)
    assert _verify(store).ok
    with store.begin() as conn:
        conn.execute(sa.text(EDIT))
        if attack == "rechain with own key":
            _rechain(conn, b"x" * 32)
        elif attack == "rechain unkeyed":
            _rechain(conn, None)
        else:
            _rechain(conn, None, drop_key_id=True)
        if attack == "and claim every row pre-upgrade":
            conn.execute(
                schema.meta.update()
                .where(schema.meta.c.key == audit.BOUNDARY_KEY)
                .values(value="4")
            )
    result = _verify(store)
    assert not result.ok, result


def test_the_same_rechain_passed_the_unkeyed_chain_of_before(store: StateStore) -> None:
    """The attack the keyed chain stops: against plain SHA-256 hashes it went unnoticed."""
    _append(store, 4)
    with store.begin() as conn:
        conn.execute(sa.text(EDIT))
        _rechain(conn, None)
        rows = [dict(r._mapping) for r in conn.execute(sa.select(schema.audit).order_by("seq"))]
    prev = GENESIS
    for row in rows:  # the old verify: prev links and unkeyed hashes only
        assert row["prev_hash"] == prev and audit.row_hash(prev, row, None) == row["hash"]
        prev = row["hash"]


def _open(path: Path, keys: AuditKeys | None) -> StateStore:
    return StateStore.open(f"sqlite:///{path}", audit_keys=keys)


def test_keys_rotate_and_old_rows_stay_verifiable(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    first = _open(db, AuditKeys(KEY_A))
    _append(first, 2)
    first.close()
    rotated = _open(db, AuditKeys(KEY_B, (KEY_A,)))
    _append(rotated, 2, start=2)
    assert _verify(rotated).ok
    with rotated.begin() as conn:
        kids = list(conn.execute(sa.select(schema.audit.c.key_id).order_by("seq")).scalars())
    assert kids == [audit.audit_key_id(KEY_A)] * 2 + [audit.audit_key_id(KEY_B)] * 2
    rotated.close()
    forgotten = _open(db, AuditKeys(KEY_B))
    result = _verify(forgotten)
    forgotten.close()
    assert (result.ok, result.first_bad_seq) == (False, 1)
    assert audit.audit_key_id(KEY_A) in result.problem and "old_audit_keys" in result.problem


def _legacy_row_hash(prev: str, row: dict[str, Any]) -> str:
    """The chain before schema version 5, as it was written: SHA-256, no key id."""
    body = {k: v for k, v in row.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev + canonical).encode("utf-8")).hexdigest()


def _version_4_store(db: Path, rows: int) -> None:
    """A store as crmtier wrote it before keyed chaining, with ``rows`` audit rows."""
    engine = sa.create_engine(f"sqlite:///{db}")
    migrate.migrate(engine, "sync", schema.SYNC_MIGRATIONS[:4])
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit DROP COLUMN key_id"))
        prev = GENESIS
        for seq in range(1, rows + 1):
            row = {
                "seq": seq,
                "at": "2026-01-01T00:00:00.000000Z",
                **vars(_entry(seq)),
                "prev_hash": prev,
            }
            row["hash"] = prev = _legacy_row_hash(prev, row)
            conn.execute(schema.audit.insert().values(row))  # without key_id: none then
        conn.execute(schema.meta.insert().values(key=HEAD_KEY, value=f"{rows}:{prev}"))
    engine.dispose()


def test_rows_of_before_the_upgrade_stay_verifiable_and_pinned(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _version_4_store(db, 3)
    store = _open(db, AuditKeys(KEY_A))
    try:
        assert _verify(store).ok  # the old rows, as they were
        _append(store, 2, start=3)
        assert _verify(store) == audit.VerifyResult(True, 5)
        with store.begin() as conn:  # edit an old row and rechain the old prefix
            conn.execute(sa.text(EDIT))
            prev = GENESIS
            for row in [
                dict(r._mapping)
                for r in conn.execute(
                    sa.select(schema.audit).where(schema.audit.c.seq <= 3).order_by("seq")
                )
            ]:
                row["prev_hash"] = prev
                row["hash"] = prev = audit.row_hash(prev, row, None)
                conn.execute(
                    schema.audit.update()
                    .where(schema.audit.c.seq == row["seq"])
                    .values(prev_hash=row["prev_hash"], hash=row["hash"])
                )
        result = _verify(store)
        assert (result.ok, result.first_bad_seq) == (False, 4)  # the first keyed row pins them
    finally:
        store.close()


def test_the_sqlite_store_is_created_for_its_owner_alone(tmp_path: Path) -> None:
    db = tmp_path / "new" / "state.db"
    store = StateStore.open(f"sqlite:///{db}")
    _append(store, 1)  # a write: the WAL exists too
    try:
        for path in (db, db.with_name("state.db-wal")):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
        assert readable_by_others(f"sqlite:///{db}") is None
        os.chmod(db, 0o644)
        assert readable_by_others(f"sqlite:///{db}") == str(db)
    finally:
        store.close()
