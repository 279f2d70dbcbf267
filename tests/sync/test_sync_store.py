"""State store: migrations, meta, leases, bookmarks, audit chain on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.contract import Cursor
from sync import audit, bookmarks, jsontext, migrate, schema
from sync.audit import AuditEntry
from sync.bookmarks import Bookmark, BookmarkConflictError
from sync.migration_steps import Migration
from sync.store import StateStore

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_sqlite_runs_in_wal_with_full_sync(sqlite_store: StateStore) -> None:
    with sqlite_store.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_the_stores_of_these_tests_are_opened_as_crmtier_opens_one(store: StateStore) -> None:
    """Both backends' fixtures give the product's engine (``sync.store_engine``): JSON
    columns through ``sync.jsontext`` and no bound values in error messages, so a test on
    a store passes or fails as the product would on it."""
    assert store.engine.dialect._json_serializer is jsontext.dumps  # type: ignore[attr-defined]
    assert store.engine.dialect._json_deserializer is jsontext.loads  # type: ignore[attr-defined]
    assert store.engine.hide_parameters


def test_migrations_are_recorded_and_idempotent(store: StateStore) -> None:
    newest = schema.SYNC_MIGRATIONS[-1].version
    assert store.migrate("sync", schema.SYNC_MIGRATIONS) == newest
    assert store.migrate("sync", schema.SYNC_MIGRATIONS) == newest
    with store.begin() as conn:
        rows = conn.execute(sa.select(schema.schema_version)).all()
    assert [(r.component, r.version) for r in rows] == [("sync", newest)]


def test_a_version_1_store_is_upgraded_in_place(store: StateStore) -> None:
    with store.begin() as conn:
        conn.execute(sa.text("ALTER TABLE customers DROP COLUMN input_hash"))
        for column in ("min_calls", "owner", "expires_at"):
            conn.execute(sa.text(f"ALTER TABLE runs DROP COLUMN {column}"))
        conn.execute(schema.schema_version.update().values(version=1))
        conn.execute(
            sa.text(
                "INSERT INTO customers (stream, customer_id, pseudonym, updated_at) "
                "VALUES ('s', 'C1', 'cust_x', '2026-01-01T00:00:00.000000Z')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO runs (id, stream, trigger, status, dry_run, started_at, counts, "
                "api_calls) VALUES ('r1', 's', 'sync', 'running', false, "
                "'2026-01-01T00:00:00.000000Z', '{}', '{}')"
            )
        )
    assert store.migrate("sync", schema.SYNC_MIGRATIONS) == schema.SYNC_MIGRATIONS[-1].version
    with store.begin() as conn:
        row = conn.execute(sa.select(schema.customers)).one()
        run = conn.execute(sa.select(schema.runs)).one()
    assert (row.customer_id, row.input_hash) == ("C1", None)
    assert (run.id, run.min_calls) == ("r1", None)  # an older run: minimum unknown
    assert (run.owner, run.expires_at) == (None, None)  # and no liveness: taken as dead


def test_a_version_5_store_learns_the_rule_of_each_task_it_made(store: StateStore) -> None:
    """Version 6 adds ``side_effects.rule`` and fills it from the audit trail's task rows,
    so sales tasks made before the upgrade can still be withdrawn on a sanctions hit."""
    keys = store.audit_keys
    with store.begin() as conn:
        conn.execute(sa.text("ALTER TABLE side_effects DROP COLUMN rule"))
        conn.execute(schema.schema_version.update().values(version=5))
        for kind, key in (("task", "k-sales"), ("task", "k-unaudited"), ("membership", "m1")):
            conn.execute(
                sa.text(
                    "INSERT INTO side_effects (stream, kind, key, customer_id, active, "
                    "updated_at) VALUES ('s', :kind, :key, 'C1', :active, 'x')"
                ),
                {"kind": kind, "key": key, "active": True},
            )
        audit.append(
            conn,
            [
                AuditEntry(
                    "s",
                    "cust_x",
                    "task",
                    None,
                    {"rule": "corporate_banking", "key": "k-sales"},
                    [],
                    "p",
                    "h",
                    "sync",
                    "t",
                    "r1",
                ),
                AuditEntry(
                    "s",
                    "cust_x",
                    "campaign",
                    None,
                    {"campaign": "vip", "key": "m1"},
                    [],
                    "p",
                    "h",
                    "sync",
                    "t",
                    "r1",
                ),
            ],
            keys,
        )
    assert store.migrate("sync", schema.SYNC_MIGRATIONS) == schema.SYNC_MIGRATIONS[-1].version
    with store.begin() as conn:
        effects = schema.side_effects
        rules = {k: r for k, r in conn.execute(sa.select(effects.c.key, effects.c.rule)).all()}
    assert rules == {"k-sales": "corporate_banking", "k-unaudited": None, "m1": None}


def test_a_version_9_store_learns_to_keep_the_last_override_row(store: StateStore) -> None:
    """Version 10 adds ``customers.override`` (the value of each customer's last override
    audit row); a customer of before keeps its state and has none recorded, and the column
    then takes a row's value."""
    with store.begin() as conn:
        conn.execute(sa.text("ALTER TABLE customers DROP COLUMN override"))
        conn.execute(schema.schema_version.update().values(version=9))
        conn.execute(
            sa.text(
                "INSERT INTO customers (stream, customer_id, pseudonym, tiers, updated_at) "
                "VALUES ('s', 'C1', 'cust_x', '{\"value_tier\": \"mass\"}', "
                "'2026-01-01T00:00:00.000000Z')"
            )
        )
    assert store.migrate("sync", schema.SYNC_MIGRATIONS) == schema.SYNC_MIGRATIONS[-1].version
    c = schema.customers
    with store.begin() as conn:
        assert conn.execute(sa.select(c.c.tiers, c.c.override)).one() == (
            {"value_tier": "mass"},
            None,
        )
        value = {"outcome": "refused", "cause": "self_approved", "maker": "005RM"}
        conn.execute(c.update().values(override=value))
    with store.begin() as conn:
        assert conn.execute(sa.select(c.c.override)).scalar() == value


def test_another_component_brings_its_own_tables(store: StateStore) -> None:
    extra = sa.Table("inbox_probe", schema.metadata, sa.Column("id", sa.Integer, primary_key=True))
    try:
        steps = (Migration(1, "probe", lambda c: extra.create(c, checkfirst=True)),)
        assert store.migrate("probe", steps) == 1
        with store.begin() as conn:
            conn.execute(extra.insert().values(id=1))
    finally:
        schema.metadata.remove(extra)


def test_a_newer_schema_is_refused(store: StateStore) -> None:
    with store.begin() as conn:
        conn.execute(schema.schema_version.update().values(version=99))
    with pytest.raises(migrate.SchemaTooNewError, match="version 99"):
        store.migrate("sync", schema.SYNC_MIGRATIONS)


def test_pseudonym_key_is_generated_once(store: StateStore) -> None:
    first = store.pseudonym_key()
    assert len(first) == 32
    assert store.pseudonym_key() == first


def test_lease_excludes_a_live_holder_and_passes_from_a_dead_one(store: StateStore) -> None:
    assert store.acquire_lock("sync:x")
    assert store.acquire_lock("sync:x")  # re-entrant for the same process
    # a live process elsewhere on this host holds it
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with store.begin() as conn:
            conn.execute(schema.locks.update().values(owner=f"other:{holder.pid}", pid=holder.pid))
        assert not store.acquire_lock("sync:x")
    finally:
        holder.kill()
        holder.wait()
    assert store.acquire_lock("sync:x")  # its process is gone: taken over at once
    store.release_lock("sync:x")
    with store.begin() as conn:
        assert conn.execute(sa.select(schema.locks)).first() is None


def _hold(store: StateStore, name: str, *, host: str, pid: int, expires: datetime) -> None:
    """Make the lease ``name`` look held by process ``pid`` on ``host``."""
    with store.begin() as conn:
        conn.execute(schema.locks.delete().where(schema.locks.c.name == name))
        conn.execute(
            schema.locks.insert().values(
                name=name,
                owner=f"{host}:{pid}",
                host=host,
                pid=pid,
                expires_at=schema.utc_text(expires),
            )
        )


def _state_of(pid: int) -> str:
    return (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[0]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs procfs")
def test_a_lease_held_by_a_zombie_is_taken_over_at_once(store: StateStore) -> None:
    """A SIGKILLed holder its parent has not reaped yet is a zombie: ``kill(pid, 0)`` still
    succeeds on it, but it holds nothing, however far ahead its lease's expiry is."""
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        os.kill(holder.pid, signal.SIGKILL)  # and not reaped: no wait(), no poll()
        for _ in range(10_000):
            if _state_of(holder.pid) == "Z":
                break
            time.sleep(0.001)
        assert _state_of(holder.pid) == "Z"
        far = datetime.now(UTC) + timedelta(hours=1)
        _hold(store, "sync:z", host=socket.gethostname(), pid=holder.pid, expires=far)
        assert store.acquire_lock("sync:z")
        store.release_lock("sync:z")
    finally:
        holder.wait()


def test_a_lease_whose_holder_stopped_renewing_passes_after_its_ttl(store: StateStore) -> None:
    """A holder on another host is judged by its heartbeat alone."""
    now = datetime.now(UTC)
    _hold(store, "sync:h", host="elsewhere", pid=1, expires=now + timedelta(seconds=30))
    assert not store.acquire_lock("sync:h")  # renewed recently: alive
    _hold(store, "sync:h", host="elsewhere", pid=1, expires=now - timedelta(seconds=1))
    assert store.acquire_lock("sync:h")  # its last beat is older than the ttl: dead
    store.release_lock("sync:h")


def test_a_held_lease_is_renewed_by_its_heartbeat(store: StateStore) -> None:
    """While held, the lease's expiry keeps moving ahead, so a run longer than the ttl keeps
    its stream; once released it is gone."""

    def expiry() -> str:
        with store.begin() as conn:
            return str(
                conn.execute(
                    sa.select(schema.locks.c.expires_at).where(schema.locks.c.name == "sync:b")
                ).scalar_one()
            )

    ttl = timedelta(milliseconds=300)
    assert store.acquire_lock("sync:b", ttl=ttl)
    first = expiry()
    beats = []
    for _ in range(10_000):
        beats = sorted({*beats, expiry()})
        if len(beats) >= 3:
            break
        time.sleep(0.01)
    assert beats[0] == first and len(beats) >= 3  # renewed again and again
    store.release_lock("sync:b")
    with store.begin() as conn:
        assert conn.execute(sa.select(schema.locks)).first() is None


def test_bookmark_round_trip_and_optimistic_version(store: StateStore) -> None:
    bm = Bookmark.initial("salesforce:Account").advance(
        Cursor(T0, "A2"),
        [("A1", T0), ("A2", T0)],
        {"A1": "d1", "A2": "d2"}.__getitem__,
        read_at=T0 + timedelta(seconds=1),
        overlap=timedelta(seconds=5),
        tie_max=10,
    )
    with store.begin() as conn:
        saved = bookmarks.save(conn, bm)
    with store.begin() as conn:
        loaded = bookmarks.load(conn, "salesforce:Account")
    assert loaded == saved
    assert loaded.already_synced("A1", T0, lambda: "d1")
    assert not loaded.already_synced("A1", T0 + timedelta(1), lambda: "d1")
    with store.begin() as conn:
        bookmarks.save(conn, loaded)
    with pytest.raises(BookmarkConflictError), store.begin() as conn:
        bookmarks.save(conn, loaded)  # stale version: someone else moved it


def _entry(i: int) -> AuditEntry:
    return AuditEntry(
        stream="s",
        customer_ref=f"cust_{i:020d}",
        event="tier_change",
        old={"value_tier": "mass"},
        new={"value_tier": "affluent"},
        reason_codes=["VAL_AUM_AFFLUENT"],
        policy_version="default@abc",
        input_hash="0" * 64,
        trigger="sync",
        actor="test",
        run_id="r1",
    )


@pytest.mark.parametrize(
    ("tamper", "bad_seq"),
    [
        ('UPDATE audit SET new = \'{"value_tier": "private"}\' WHERE seq = 3', 3),
        ("DELETE FROM audit WHERE seq = 2", 3),
        ("UPDATE audit SET seq = seq + 100 WHERE seq = 2", 3),
        ("DELETE FROM audit WHERE seq = 5", 5),
        ("UPDATE audit SET customer_ref = 'cust_x', hash = hash WHERE seq = 1", 1),
    ],
    ids=["edited", "deleted", "moved", "tail-deleted", "edited-first"],
)
def test_audit_verify_names_the_first_bad_row(store: StateStore, tamper: str, bad_seq: int) -> None:
    keys = store.audit_keys
    with store.begin() as conn:
        audit.append(conn, [_entry(i) for i in range(3)], keys)
    with store.begin() as conn:
        audit.append(conn, [_entry(i) for i in range(3, 5)], keys)
    with store.begin() as conn:
        assert audit.verify(conn, keys).ok
        assert audit.verify(conn, keys).rows == 5
        conn.execute(sa.text(tamper))
    with store.begin() as conn:
        result = audit.verify(conn, keys)
    assert not result.ok
    assert result.first_bad_seq == bad_seq


def test_swapped_rows_are_detected(store: StateStore) -> None:
    keys = store.audit_keys
    with store.begin() as conn:
        audit.append(conn, [_entry(i) for i in range(4)], keys)
        conn.execute(sa.text("UPDATE audit SET seq = -1 WHERE seq = 2"))
        conn.execute(sa.text("UPDATE audit SET seq = 2 WHERE seq = 3"))
        conn.execute(sa.text("UPDATE audit SET seq = 3 WHERE seq = -1"))
    with store.begin() as conn:
        result = audit.verify(conn, keys)
    assert (result.ok, result.first_bad_seq) == (False, 2)
