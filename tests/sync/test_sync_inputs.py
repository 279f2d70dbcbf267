"""``sync.inputs``: what the sync keeps of each assessed customer for simulate and explain.

The inputs hold amounts: with a key they are ciphertext in the file, and read back as they
were; a customer assessed again replaces its row; ``iter_stored`` pages the whole stream in
CRM id order, one short transaction a chunk."""

from __future__ import annotations

import secrets
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.contract import CrmRecord
from sync.crypto import StoreCipher
from sync.inputs import ensure_table, iter_chunks, iter_stored, save_inputs
from sync.state import save_states
from sync.store import StateStore
from tiering_core.models import CustomerProfile

STREAM = "salesforce:Account"
AMOUNT = 7_654_321.5


def record(cid: str, deposits: float) -> CrmRecord:
    profile = CustomerProfile.model_validate(
        {"id": cid, "kind": "individual", "assets": {"deposits": deposits}}
    )
    return CrmRecord(profile, datetime(2026, 12, 6, tzinfo=UTC), {"value_tier": "private"})


@pytest.mark.parametrize("encrypted", [False, True])
def test_inputs_round_trip_and_are_encrypted_with_a_key(tmp_path: Path, encrypted: bool) -> None:
    db = tmp_path / "state.db"
    cipher = StoreCipher(secrets.token_bytes(32)) if encrypted else None
    store = StateStore.open(f"sqlite:///{db}", cipher=cipher)
    try:
        ensure_table(store)
        with store.begin() as conn:
            save_states(
                conn,
                STREAM,
                [
                    {"customer_id": f"C{i}", "pseudonym": f"p{i}", "tiers": {"value_tier": "mass"}}
                    for i in range(5)
                ],
            )
            save_inputs(conn, STREAM, [record(f"C{i}", 100.0 + i) for i in range(5)], "2026-12-05")
        with store.begin() as conn:  # assessed again: the row is replaced
            save_inputs(conn, STREAM, [record("C3", AMOUNT)], "2026-12-06")
        chunks = list(iter_stored(store, STREAM, chunk=2))
    finally:
        store.close()
    assert [len(c) for c in chunks] == [2, 2, 1]
    stored = {c.customer_id: c for chunk in chunks for c in chunk}
    assert sorted(stored) == [f"C{i}" for i in range(5)]
    assert stored["C3"].profile.assets is not None
    assert stored["C3"].profile.assets.deposits == AMOUNT
    assert (stored["C3"].as_of, stored["C0"].as_of) == ("2026-12-06", "2026-12-05")
    assert stored["C3"].current == {"value_tier": "private"}
    assert stored["C3"].state.tiers == {"value_tier": "mass"}
    raw = (
        sqlite3.connect(db)
        .execute("select profile from assessed_inputs where customer_id = 'C3'")
        .fetchone()[0]
    )
    assert (str(AMOUNT) in raw) is not encrypted


def _save_two(store: StateStore) -> None:
    ensure_table(store)
    with store.begin() as conn:
        save_states(
            conn,
            STREAM,
            [
                {
                    "customer_id": "C1",
                    "pseudonym": "p1",
                    "tiers": {"value_tier": "mass"},
                    "fields": {"policy_version": "v2"},
                },
                {"customer_id": "C2", "pseudonym": "p2", "tiers": {"value_tier": "mass"}},
            ],
        )
        save_inputs(conn, STREAM, [record("C1", 1.0), record("C2", 2.0)], "2026-12-06")


def test_chunks_read_every_column_as_the_built_customers_do(store: StateStore) -> None:
    """``iter_chunks`` (columns, values decoded when read) and ``iter_stored`` (customers
    built) read the same values on both backends; tiers texts are decoded once."""
    _save_two(store)
    (chunk,) = list(iter_chunks(store, STREAM))
    (built,) = list(iter_stored(store, STREAM))
    assert list(chunk.ids) == [c.customer_id for c in built] == ["C1", "C2"]
    assert chunk.tiers[0] == chunk.tiers[1] == {"value_tier": "mass"}
    if store.engine.dialect.name == "sqlite":  # one decoded mapping for one stored text
        assert chunk.tiers[0] is chunk.tiers[1]
    for i, customer in enumerate(built):
        assert chunk.customer(i).crm_values() == customer.crm_values()
        assert chunk.crm_value(i, "policy_version") == customer.crm_value("policy_version")
        assert chunk.crm_value(i, "value_tier") == "private"
    assert [chunk.crm_value(i, "policy_version") for i in range(2)] == ["v2", None]
    assert built[0].crm_values() == {"value_tier": "private", "policy_version": "v2"}


def test_chunks_decrypt_what_they_read(tmp_path: Path) -> None:
    cipher = StoreCipher(secrets.token_bytes(32))
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}", cipher=cipher)
    try:
        _save_two(store)
        (chunk,) = list(iter_chunks(store, STREAM))
        assert chunk.crm_value(0, "policy_version") == "v2"
        assert chunk.customer(1).crm_values() == {"value_tier": "private"}
    finally:
        store.close()
