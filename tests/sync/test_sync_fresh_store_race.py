"""Several processes opening one fresh PostgreSQL store at the same moment (two ``serve``
started together): every one of them migrates or finds the store migrated, none fails
with a ``UniqueViolation`` on the tables or the version rows both tried to create, and
all of them pseudonymise with the one key the first of them generated; and the first audit
rows of a store, appended by several writers at once, form one chain."""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
import traceback
from multiprocessing.synchronize import Barrier

import pytest
import sqlalchemy as sa

from sync import audit, schema
from sync.audit import AuditEntry
from sync.inbox import INBOX_MIGRATIONS, Inbox
from sync.store import StateStore
from sync.worker import WORKER_MIGRATIONS
from tests.sync.conftest import PG_URL, pg_schema

PROCESSES = 4
ROUNDS = 4
COMPONENTS = {
    "sync": len(schema.SYNC_MIGRATIONS),
    "webhook_inbox": len(INBOX_MIGRATIONS),
    "webhook_worker": len(WORKER_MIGRATIONS),
}


def _open_like_serve(url: str, barrier: Barrier, results: multiprocessing.Queue[str]) -> None:
    """What ``crmtier serve`` does to the store on start: open (migrating ``sync``), the
    inbox's and the worker's components, then the pseudonym key; all processes released
    at once into each. Reports the key's fingerprint, or the error."""
    try:
        barrier.wait()
        store = StateStore.open(url)
        try:
            Inbox(store)
            store.migrate("webhook_worker", WORKER_MIGRATIONS)
            barrier.wait()  # the migrations took turns: start the next race together too
            key = store.pseudonym_key()
        finally:
            store.close()
        results.put("key " + hashlib.sha256(key).hexdigest()[:16])
    except BaseException:
        results.put(traceback.format_exc(limit=1))


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_simultaneous_first_opens_all_succeed(round_: int) -> None:
    ctx = multiprocessing.get_context("fork")  # no engine exists yet to be inherited
    with pg_schema() as name:
        url = f"{PG_URL}?options=-csearch_path%3D{name}"
        barrier = ctx.Barrier(PROCESSES)
        results: multiprocessing.Queue[str] = ctx.Queue()
        procs = [
            ctx.Process(target=_open_like_serve, args=(url, barrier, results))
            for _ in range(PROCESSES)
        ]
        for proc in procs:
            proc.start()
        outcomes = [results.get() for _ in procs]
        for proc in procs:
            proc.join()
        errors = [o for o in outcomes if not o.startswith("key ")]
        assert not errors, "\n".join(errors)
        assert len(set(outcomes)) == 1, outcomes  # one key, generated once
        engine = sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={name}"})
        with engine.connect() as conn:
            versions = dict(
                conn.execute(
                    sa.select(schema.schema_version.c.component, schema.schema_version.c.version)
                ).all()
            )
        engine.dispose()
        assert versions == COMPONENTS


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_simultaneous_first_audit_appends_form_one_chain(pg_store: StateStore, round_: int) -> None:
    """Two streams' runs recording their first changes at once: the chain has no head row
    yet to lock, and both used to start it at row 1 (one failed on the primary key)."""
    keys = pg_store.audit_keys
    start = threading.Barrier(PROCESSES)
    errors: list[BaseException] = []

    def record(stream: str) -> None:
        entry = AuditEntry(
            stream=stream, customer_ref="cust_00000000000000000001", event="tier_change",
            old=None, new={"value_tier": "affluent"}, reason_codes=["VAL_AUM_AFFLUENT"],
            policy_version="default@abc", input_hash="0" * 64, trigger="sync", actor="test",
            run_id=f"run-{stream}",
        )  # fmt: skip
        try:
            start.wait()
            with pg_store.begin() as conn:
                audit.append(conn, [entry, entry], keys)
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(f"s{n}",)) for n in range(PROCESSES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    with pg_store.engine.connect() as conn:
        assert audit.verify(conn, keys) == audit.VerifyResult(True, 2 * PROCESSES)
