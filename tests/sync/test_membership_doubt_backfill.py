"""A campaign membership add whose call went unanswered before the store kept such marks
is in doubt on record after the upgrade (migration 12), as a task is after migration 11
(tests/sync/test_task_doubt_marks.py): the CRM may hold the member, so a sanctions hit
removes it. A store already at version 11, whose upgrade marked tasks only, gets them
too; so does one upgraded from 10 in one go. Encrypted or not, SQLite and PostgreSQL,
in one batch or many.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from sync import outbox, schema, unanswered_backfill
from sync.crypto import StoreCipher
from sync.outbox import NewItem
from sync.state import load_states, save_states
from sync.store import StateStore
from tests.sync.conftest import PG_URL, pg_schema

STREAM = "s"

#: outbox rows of membership writes: (customer, key, an add, status, a call of it went
#: unanswered, on record: True when a member, a time when removed then, None when absent)
#: and whether the upgrade marks it in doubt; each key's campaign is ``camp-`` + key
ROWS = [
    ("C1", "m-dead", True, "dead", True, None, True),  # its letter open or not
    ("C1", "m-superseded", True, "superseded", True, None, True),  # not wanted since
    ("C1", "m-pending", True, "pending", True, None, True),  # to be retried
    ("C1", "m-made", True, "dead", True, True, False),  # on record as a member
    ("C1", "m-refused", True, "dead", False, None, False),  # every call answered: refused
    ("C2", "m-removal", False, "dead", True, None, False),  # a removal leaves nothing of ours
    ("C2", "m-twice", True, "superseded", True, None, True),  # queued twice:
    ("C2", "m-twice", True, "dead", True, None, True),  # marked once
    ("C2", "m-done", True, "done", True, True, False),  # its retry went through
    # removed before its key was added again (its row older than the outbox row): in doubt
    ("C2", "m-removed-before", True, "dead", True, "0000", True),
    ("C2", "m-removed-after", True, "dead", True, "9999", False),  # removed since
]


def _stored(store: StateStore, version: int) -> None:
    """The store as ``version`` (10 or 11) left it, with ``ROWS`` in its outbox: at 11 the
    rows whose call went unanswered are flagged, and no membership is marked."""
    with store.begin() as conn:
        if version == 10:
            conn.execute(sa.text("ALTER TABLE outbox DROP COLUMN unanswered"))
            conn.execute(sa.text("ALTER TABLE side_effects DROP COLUMN in_doubt"))
        conn.execute(schema.schema_version.update().values(version=version))
        save_states(conn, STREAM, [{"customer_id": c, "pseudonym": f"p-{c}"} for c in ("C1", "C2")])
        for cid, key, add, status, unanswered, on_record, _ in ROWS:
            payload = {"campaign": f"camp-{key}", "member": add}
            new = NewItem(cid, "membership", key, payload)
            (item,) = outbox.enqueue(conn, STREAM, "r1", [new], trigger="sync")
            values = {
                "status": status,
                "attempts": 2,
                "last_error": "TRANSIENT" if unanswered else "FIELD_INTEGRITY_EXCEPTION",
            }
            if version == 11:
                values["unanswered"] = unanswered
            table = schema.outbox
            conn.execute(table.update().where(table.c.id == item.id).values(**values))
            if on_record is not None:  # True: a member; else removed, its row updated then
                conn.execute(
                    schema.side_effects.insert().values(
                        stream=STREAM, kind="membership", key=key, customer_id=cid,
                        campaign=f"camp-{key}", active=on_record is True,
                        updated_at="x" if on_record is True else on_record,
                    )
                )  # fmt: skip


def _check_upgraded(store: StateStore) -> None:
    assert store.migrate("sync", schema.SYNC_MIGRATIONS) == 12
    step = next(m for m in schema.SYNC_MIGRATIONS if m.version == 12)
    with store.begin() as conn:
        step.apply(conn)  # safe to repeat (a crash before its version was recorded)
        states = load_states(conn, STREAM, ["C1", "C2"])
    doubted = {c: k for state in states.values() for c, k in state.memberships_in_doubt.items()}
    assert doubted == {f"camp-{r[1]}": r[1] for r in ROWS if r[6]}
    assert dict(states["C1"].memberships) == {"camp-m-made": "m-made"}  # as it was
    assert dict(states["C2"].memberships) == {"camp-m-done": "m-done"}
    assert not any(state.tasks_in_doubt for state in states.values())


@pytest.mark.parametrize("version", [11, 10])
@pytest.mark.parametrize("batch", [1000, 2], ids=["one-batch", "batches-of-2"])
def test_a_store_marks_the_membership_adds_whose_call_went_unanswered(
    store: StateStore, version: int, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read in batches (a large outbox is never held whole), the marks are the same."""
    monkeypatch.setattr(unanswered_backfill, "_BATCH", batch)
    _stored(store, version)
    _check_upgraded(store)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_an_encrypted_version_11_store_reads_the_campaigns_from_its_encrypted_payloads(
    tmp_path: Path, backend: str
) -> None:
    """The payloads are ciphertexts: the upgrade reads each add's campaign with the
    store's key; opened without it, the store stays at version 11, to be upgraded with it."""
    if backend == "sqlite":
        _encrypted_upgrade(f"sqlite:///{tmp_path / 'state.db'}")
    else:
        with pg_schema() as name:
            _encrypted_upgrade(f"{PG_URL}?options=-csearch_path%3D{name}")


def _encrypted_upgrade(url: str) -> None:
    """A version-11 store encrypted under a key, upgraded without it (refused), then with it."""
    cipher = StoreCipher(b"\x07" * 32)
    store = StateStore.open(url, cipher=cipher)
    try:
        _stored(store, 11)
    finally:
        store.close()
    with pytest.raises(Exception, match="encrypted; set \\[state\\] encryption_key"):
        StateStore.open(url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            table = schema.schema_version
            query = sa.select(table.c.version).where(table.c.component == "sync")
            version = conn.execute(query).scalar_one()
    finally:
        engine.dispose()
    assert version == 11
    store = StateStore.open(url, cipher=cipher)
    try:
        _check_upgraded(store)
    finally:
        store.close()
