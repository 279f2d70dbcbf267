"""Encryption at rest of the state store (docs/targets.md S4).

The canary test runs a real sync against the Salesforce sandbox and webhook inbox inserts
into a SQLite store, then scans the database file, its WAL and a backup copy (SQLite backup
API) for every value that could identify or describe a customer: the sandbox's canary PII,
a CRM error message quoting a canary e-mail address (kept as a dead letter), and the
reasons text written to each customer (it quotes amounts). With a key: 0 hits. Without
one, the same scan finds the reasons and the quoted address, so the scan can fail.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.registry import build_connector
from connectors.sandbox.generator import generate
from connectors.webhook_events import ChangeEvent
from crmtier.commands.doctor_local import check_state
from crmtier.commands.sync import sync_settings
from crmtier.config import ConfigFileError, CrmtierConfig, load_config
from sync import audit, crypto, outbox, schema
from sync.crypto import StoreCipher
from sync.engine import RunOptions, SyncEngine
from sync.inbox import Inbox
from sync.state import load_states
from sync.store import StateStore, StoreError, create_engine
from tests.sync.conftest import (
    CRM_TABLE,
    PG_URL,
    Harness,
    pg_schema,
    salesforce_harness,
    store_files,
)
from tiering_core.engine import decide_batch
from tiering_core.policy import load_policy

CUSTOMERS = 150
AS_OF = date(2026, 6, 30)
STREAM = "salesforce:Account"
KEY_VAR = "CRMTIER_TEST_STATE_KEY"


def _key() -> str:
    return secrets.token_hex(32)


def _cipher(*keys: str) -> StoreCipher:
    current, *old = (bytes.fromhex(k) for k in keys)
    return StoreCipher(current, old)


def _hits(paths: list[Path], canaries: list[str]) -> list[str]:
    """Canaries found in these files, as UTF-8 or as they look inside JSON text."""
    blob = b"".join(p.read_bytes() for p in paths)
    forms = {c: {c.encode(), json.dumps(c)[1:-1].encode()} for c in canaries}
    return [c for c, encoded in forms.items() if any(e in blob for e in encoded)]


def _backup(db: Path, target: Path) -> Path:
    source, copy = sqlite3.connect(db), sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    return target


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    with salesforce_harness(tmp_path / "sf", monkeypatch, CUSTOMERS) as h:
        yield h


def _sync(config: CrmtierConfig, store: StateStore) -> None:
    """One scheduled-sync run in this process, built from the config like ``crmtier sync``
    but on a store opened by the test (so it stays open and its WAL stays on disk)."""
    policy = load_policy(config.policy_path())
    connector = build_connector(config.crm, config.field_mapping(), config.writeback_config())
    try:
        report = SyncEngine(
            store,
            connector,
            config.writeback_config(),
            partial(decide_batch, policy=policy, as_of=AS_OF),
            stream=config.stream,
            pseudonym_key=store.pseudonym_key(),
            settings=sync_settings(config),
            policy_version=policy.version,
        ).run(RunOptions(as_of=AS_OF))
    finally:
        connector.close()
    assert report.status == "succeeded", report.error


@pytest.mark.parametrize("encrypted", [True, False], ids=["with-key", "without-key"])
def test_canary_values_are_not_in_the_file_the_wal_or_a_backup(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, encrypted: bool
) -> None:
    if encrypted:  # the override of crmtier.toml an operator can use too
        monkeypatch.setenv(KEY_VAR, _key())
        monkeypatch.setenv("CRMTIER_STATE__ENCRYPTION_KEY", f"env:{KEY_VAR}")
    config = load_config(harness.config)
    db = Path(config.state_url().get_secret_value().removeprefix("sqlite:///"))
    customers = list(generate(CUSTOMERS))
    quoted = customers[0].pii["email"]
    store = StateStore.open(config.state_url().get_secret_value(), cipher=config.state_cipher())
    try:
        _sync(config, store)
        ids = [harness.sandbox.customer_id(i) for i in range(CUSTOMERS)]  # type: ignore[attr-defined]
        with store.begin() as conn:  # a CRM message quoting a rejected value (Salesforce does)
            outbox.dead_letter(
                conn,
                config.stream,
                outbox.OutboxItem(0, ids[0], "field_update", ids[0], {}, 5, "r", "sync"),
                pseudonym="cust_test",
                error_code="INVALID_EMAIL_ADDRESS",
                reason=f"Email: invalid email address: {quoted}",
                run_id="r",
            )
        inbox = Inbox(store)
        now = datetime.now(UTC)
        inbox.add([[ChangeEvent("salesforce", f"evt-{cid}", cid) for cid in ids[:40]]], now)
        claimed = inbox.claim("test", 20, now, timedelta(minutes=1))
        inbox.complete({i.id: "written" for i in claimed}, now)

        reasons = [harness.sandbox.written(cid).get("reasons") for cid in ids]
        canaries = [v for c in customers for v in c.pii.values()] + [str(r) for r in reasons if r]
        assert len(canaries) > 4 * CUSTOMERS
        files = store_files(db)
        assert db.with_name(db.name + "-wal").stat().st_size > 0  # the WAL holds this run
        backup = _backup(db, tmp_path / "backup.db")
        found = _hits([*files, backup], canaries)

        keys = store.audit_keys  # generated, kept in the store (encrypted with its values)
        with store.begin() as conn:  # the store still reads its own values
            states = load_states(conn, config.stream, ids)
            assert audit.verify(conn, keys).ok
            letters = outbox.list_dead_letters(conn, config.stream)
        assert [states[cid].fields.get("reasons") for cid in ids] == reasons  # type: ignore[union-attr]
        assert [row["reason"] for row in letters] == [f"Email: invalid email address: {quoted}"]
    finally:
        store.close()
    if encrypted:
        assert found == []
    else:  # the scan does find what a plaintext store holds
        assert quoted in found
        assert len(set(found) & {str(r) for r in reasons}) > CUSTOMERS // 2


def _plain_store(tmp_path: Path) -> tuple[str, Path]:
    db = tmp_path / "state.db"
    store = StateStore.open(f"sqlite:///{db}")
    try:
        with store.begin() as conn:
            conn.execute(
                schema.customers.insert(),
                [
                    {
                        "stream": STREAM,
                        "customer_id": f"C{i}",
                        "pseudonym": f"cust_{i}",
                        "tiers": {"value_tier": "private"},
                        "fields": {"reasons": f"AUM {i},777,001 >= private floor"},
                        "pending": {"fields": {"reasons": f"AUM {i},777,002"}},
                        "updated_at": "2026-01-01T00:00:00.000000Z",
                    }
                    for i in range(1500)  # more than one re-encryption chunk
                ],
            )
        store.pseudonym_key()
    finally:
        store.close()
    return f"sqlite:///{db}", db


def test_a_plaintext_store_is_encrypted_on_its_first_open_with_a_key(tmp_path: Path) -> None:
    url, db = _plain_store(tmp_path)
    canaries = [f"{i},777,00{n}" for i in (0, 777, 1499) for n in (1, 2)]
    assert _hits(store_files(db), canaries)
    before = StateStore.open(url)
    pseudonym_key = before.pseudonym_key()
    before.close()

    key = _key()
    store = StateStore.open(url, cipher=_cipher(key))
    try:
        assert _hits(store_files(db), canaries) == []  # VACUUM left no free-page copy
        with store.begin() as conn:
            states = load_states(conn, STREAM, ["C777", "C1499"])
            raw = conn.execute(sa.text("SELECT value FROM meta WHERE key='pseudonym_key'"))
            assert raw.scalar_one().startswith("enc1:")
        assert states["C1499"].fields == {"reasons": "AUM 1499,777,001 >= private floor"}
        assert states["C777"].pending == {"fields": {"reasons": "AUM 777,777,002"}}
        assert store.pseudonym_key() == pseudonym_key  # pseudonyms stay stable
    finally:
        store.close()
    StateStore.open(url, cipher=_cipher(key)).close()  # the next open is a no-op


def test_missing_or_wrong_key_is_one_line_and_names_no_key(tmp_path: Path) -> None:
    url, _ = _plain_store(tmp_path)
    key = _key()
    StateStore.open(url, cipher=_cipher(key)).close()
    for cipher, message in [
        (None, "state store is encrypted (key id "),
        (_cipher(_key()), "but [state] encryption_key is key id"),
    ]:
        with pytest.raises(StoreError) as info:
            StateStore.open(url, cipher=cipher)
        assert message in str(info.value)
        assert "\n" not in str(info.value)
        assert key not in str(info.value)


def test_keys_rotate_through_old_encryption_key(tmp_path: Path) -> None:
    url, _ = _plain_store(tmp_path)
    first, second = _key(), _key()
    StateStore.open(url, cipher=_cipher(first)).close()
    StateStore.open(url, cipher=_cipher(second, first)).close()  # re-encrypts under second
    store = StateStore.open(url, cipher=_cipher(second))
    try:
        with store.begin() as conn:
            assert load_states(conn, STREAM, ["C5"])["C5"].fields == {
                "reasons": "AUM 5,777,001 >= private floor"
            }
    finally:
        store.close()
    with pytest.raises(StoreError, match="wrong key"):
        StateStore.open(url, cipher=_cipher(first))


def _raw(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(sql, args).fetchall()
        conn.commit()
    finally:
        conn.close()
    return rows


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ("flip", "customers.fields failed authentication"),
        ("move", "customers.fields failed authentication"),  # pending's ciphertext in fields
        ("plain", "customers.fields holds an unencrypted value"),
    ],
)
def test_a_tampered_value_is_a_clear_error_not_garbage(
    tmp_path: Path, tamper: str, message: str
) -> None:
    url, db = _plain_store(tmp_path)
    key = _key()
    StateStore.open(url, cipher=_cipher(key)).close()
    [(fields, pending)] = _raw(db, "SELECT fields, pending FROM customers WHERE customer_id='C3'")
    token = json.loads(str(fields))
    if tamper == "flip":  # one byte of the ciphertext body
        i = len(token) - 10
        value = json.dumps(token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :])
    elif tamper == "move":
        value = str(pending)
    else:
        value = json.dumps({"reasons": "forged"})
    _raw(db, "UPDATE customers SET fields=? WHERE customer_id='C3'", value)
    store = StateStore.open(url, cipher=_cipher(key))
    try:
        with store.begin() as conn, pytest.raises(StoreError) as info:
            load_states(conn, STREAM, ["C3"])
    finally:
        store.close()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


BASE = CRM_TABLE + "[state]\n"


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (f'encryption_key = "{"ab" * 32}"', "[state] encryption_key: literal secrets"),
        (f'encryption_key = "env:{KEY_VAR}"\nold_encryption_key = "x"', "old_encryption_key"),
        ('encryption_key = "env:SHORT_KEY"', "[state] encryption_key: must be 32 random bytes"),
        (f'old_encryption_key = "env:{KEY_VAR}"', "set only with encryption_key"),
    ],
)
def test_the_key_is_a_reference_to_32_random_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str, message: str
) -> None:
    monkeypatch.setenv(KEY_VAR, _key())
    monkeypatch.setenv("SHORT_KEY", "ab" * 16)
    path = tmp_path / "crmtier.toml"
    path.write_text(BASE + state + "\n", "utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_config(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert "ab" * 16 not in str(info.value)


def test_a_configured_key_in_hex_or_base64_gives_the_same_cipher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = os.urandom(32)
    monkeypatch.setenv("HEX_KEY", raw.hex())
    (tmp_path / "key.b64").write_text(base64.b64encode(raw).decode() + "\n")
    path = tmp_path / "crmtier.toml"
    ids = []
    for ref in ("env:HEX_KEY", f"file:{tmp_path / 'key.b64'}"):
        path.write_text(BASE + f'encryption_key = "{ref}"\n', "utf-8")
        cipher = load_config(path).state_cipher()
        assert cipher is not None
        ids.append(cipher.key_id)
    assert ids[0] == ids[1]
    path.write_text(BASE, "utf-8")
    assert load_config(path).state_cipher() is None


@pytest.mark.parametrize(
    ("url", "env", "refused"),
    [
        ("postgresql+psycopg://crmtier@db.bank.example/state", {}, True),
        ("postgresql+psycopg://crmtier@db.bank.example/state?sslmode=require", {}, True),
        ("postgresql+psycopg://crmtier@db.bank.example/state?sslmode=verify-full", {}, False),
        ("postgresql+psycopg://crmtier@db.bank.example/state", {"PGSSLMODE": "verify-full"}, False),
        ("postgresql+psycopg:///state?host=/var/run/postgresql", {}, False),
        ("postgresql+psycopg://crmtier@127.0.0.1/state", {}, False),
        ("postgresql+psycopg://crmtier@localhost:5433/state", {}, False),
    ],
)
def test_a_remote_postgresql_store_needs_verify_full(
    monkeypatch: pytest.MonkeyPatch, url: str, env: dict[str, str], refused: bool
) -> None:
    monkeypatch.delenv("PGSSLMODE", raising=False)
    monkeypatch.delenv("PGHOST", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if refused:
        with pytest.raises(StoreError, match="sslmode=verify-full") as info:
            create_engine(url)
        assert "bank.example" not in str(info.value)
    else:
        create_engine(url).dispose()  # no connection is made


@pytest.mark.postgres
def test_postgresql_store_encrypts_and_widens_an_old_dead_letter_column() -> None:
    with pg_schema() as name:
        engine = sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={name}"})
        store = StateStore(engine, _cipher(_key()))
        try:
            store.migrate("sync", schema.SYNC_MIGRATIONS[:3])  # a store from before step 4
            with store.begin() as conn:
                conn.execute(
                    sa.text("ALTER TABLE dead_letters ALTER COLUMN reason TYPE VARCHAR(300)")
                )
            store.migrate("sync", schema.SYNC_MIGRATIONS)
            store.check_encryption()
            reason = "x" * 300
            item = outbox.OutboxItem(1, "C1", "field_update", "C1", {}, 5, "r", "sync")
            with store.begin() as conn:
                outbox.dead_letter(
                    conn,
                    STREAM,
                    item,
                    pseudonym="cust_1",
                    error_code="E",
                    reason=reason,
                    run_id="r",
                )
                stored = conn.execute(sa.text("SELECT reason FROM dead_letters")).scalar_one()
                read = conn.execute(sa.select(schema.dead_letters.c.reason)).scalar_one()
            assert stored.startswith("enc1:") and len(stored) > 300
            assert read == reason
        finally:
            store.close()


def test_the_commands_open_the_store_with_the_configured_key(harness: Harness) -> None:
    """``crmtier sync`` (a subprocess, as an operator runs it) writes an encrypted store
    when the config names a key; ``crmtier audit verify`` reads it with the key; opening it
    without the key is refused."""
    harness.env.update({KEY_VAR: _key(), "CRMTIER_STATE__ENCRYPTION_KEY": f"env:{KEY_VAR}"})
    run = harness.run("--as-of", AS_OF.isoformat())
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.report is not None and run.report["counts"]["written"] == CUSTOMERS
    assert harness.audit_verify().returncode == 0
    with pytest.raises(StoreError, match="encryption_key"):
        StateStore.open(harness.state_url())
    db = Path(harness.state_url().removeprefix("sqlite:///"))
    ids = [harness.sandbox.customer_id(i) for i in range(CUSTOMERS)]  # type: ignore[attr-defined]
    reasons = [str(harness.sandbox.written(cid).get("reasons")) for cid in ids]
    assert _hits(store_files(db), reasons) == []


def test_a_plain_doctor_reports_pending_encryption_and_fix_does_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """doctor without --fix must not rewrite the store (the rewrite is a transaction over
    every value plus a VACUUM); it says the encryption is pending, and --fix does it."""
    url, _ = _plain_store(tmp_path)
    monkeypatch.setenv(KEY_VAR, _key())
    path = tmp_path / "crmtier.toml"
    path.write_text(BASE + f'url = "{url}"\nencryption_key = "env:{KEY_VAR}"\n', "utf-8")
    config = load_config(path)

    pending = check_state(config, fix=False)
    assert (pending.ok, pending.severity) == (False, "warning")
    assert "in the clear" in pending.detail
    StateStore.open(url).close()  # still plaintext: opens without a key

    fixed = check_state(config, fix=True)
    assert fixed.ok and "values encrypted" in fixed.detail
    with pytest.raises(StoreError, match="encryption_key"):
        StateStore.open(url)


def test_a_token_is_pinned_to_its_key_nonce_column_and_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``StoreCipher.encrypt`` with its nonce fixed gives, byte for byte, the tokens it gave
    before d989441 made its header and base64 faster (these were made with d989441^'s
    cipher): a change to the token's form would leave stores unreadable by older code."""
    monkeypatch.setattr(crypto.os, "urandom", lambda n: bytes(range(n)))
    cipher = StoreCipher(bytes(range(32)))
    assert cipher.encrypt(b'{"value_tier":"private"}', "customers.pending") == (
        "enc1:ebd67794:AAECAwQFBgcICQoLPCCgeqmQp0T5KPL5k9NaHfG_8VWEHn0BThWchFjGj-rZun-18w5oxg=="
    )
    assert cipher.encrypt(b"", "outbox.payload") == (
        "enc1:ebd67794:AAECAwQFBgcICQoLfjTe_84ZtRA4ssn6NvKoig=="
    )
