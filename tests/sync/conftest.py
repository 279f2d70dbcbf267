"""Fixtures for the sync tests: a state store on SQLite and on the local PostgreSQL.

The PostgreSQL store lives in a schema created for the test and dropped after it, so tests
never touch each other's (or anyone's) tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync import schema
from sync.store import StateStore

PG_URL = "postgresql+psycopg://postgres@127.0.0.1/test"


def _pg_available() -> bool:
    try:
        with sa.create_engine(PG_URL).connect() as conn:
            conn.execute(sa.text("select 1"))
        return True
    except Exception:
        return False


@pytest.fixture
def pg_store() -> Iterator[StateStore]:
    if not _pg_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"crmtier_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    engine = sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={name}"})
    store = StateStore(engine)
    store.migrate("sync", schema.SYNC_MIGRATIONS)
    try:
        yield store
    finally:
        store.close()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> StateStore:
    """The same test against both backends."""
    fixture = "sqlite_store" if request.param == "sqlite" else "pg_store"
    result: StateStore = request.getfixturevalue(fixture)
    return result
