"""The state store: one SQLAlchemy engine over SQLite (embedded default) or PostgreSQL
(``sync.store_engine`` creates it; ``sync.migrate`` brings its schema up to date).

SQLite runs in WAL mode with ``synchronous=FULL`` (a committed bookmark survives power
loss, docs/targets.md R1) and every transaction starts with ``BEGIN IMMEDIATE``, so writers are
serialised up front instead of failing at commit; PostgreSQL serialises the few contended
rows (audit head, locks) with ``SELECT ... FOR UPDATE``. Everything else in ``sync/`` takes a
``Connection`` inside a transaction from here, so several facts (writes, state, audit,
bookmark) always commit together.

With a key (``[state] encryption_key``) the columns that can hold customer data are
encrypted (``sync/crypto.py``); the store remembers which key, refuses to open without it,
and encrypts an existing plaintext store, or re-encrypts an old key's values, on the first
open with the new key. A PostgreSQL store on another host is reached only with
``sslmode=verify-full`` (docs/targets.md S4).
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

from sync import audit, crypto, migrate, schema
from sync.audit import AuditKeys
from sync.crypto import StoreCipher, StoreError
from sync.leases import Heartbeat, process_is_running
from sync.meta_facts import meta_once
from sync.migration_steps import Migration
from sync.schema import locks, meta, now_text, utc_text
from sync.store_engine import create_engine, readable_by_others

__all__ = [
    "EncryptionPendingError",
    "StateStore",
    "StoreError",
    "create_engine",
    "readable_by_others",
]


class EncryptionPendingError(StoreError):
    """The store's values are not yet under the configured key, and this open was told
    not to rewrite them (a plain ``crmtier doctor`` changes nothing on disk)."""


#: ``meta`` key naming the key the store's values are encrypted under (``enc1:<key id>``)
ENCRYPTION_META = "encryption"
_CHUNK = 1000
#: ``meta`` key of the generated pseudonym key, and the associated data of its ciphertext
PSEUDONYM_META = "pseudonym_key"
_META_AD = "meta.pseudonym_key"
#: ``meta`` key of the audit key the store generates when ``[state] audit_key`` is not set
AUDIT_KEY_META = "audit_key"
#: the generated keys kept in ``meta`` -> the associated data of their ciphertexts
_META_SECRETS = {PSEUDONYM_META: _META_AD, AUDIT_KEY_META: "meta.audit_key"}
#: the sync schema version from which the audit chain is keyed (``sync/audit.py``)
KEYED_AUDIT_VERSION = 5


class StateStore:
    """Owns the engine; opens transactions; keeps the store's meta facts and leases.

    ``cipher`` (from ``[state] encryption_key``) encrypts the customer-data columns of
    every statement run on this engine; ``None`` stores them as they are."""

    def __init__(
        self,
        engine: sa.Engine,
        cipher: StoreCipher | None = None,
        audit_keys: AuditKeys | None = None,
    ) -> None:
        self.engine = engine
        self.cipher = cipher
        self._heartbeats: dict[str, Heartbeat] = {}
        self._configured_audit_keys = audit_keys
        self._audit_keys: AuditKeys | None = None
        crypto.install(engine, cipher)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        cipher: StoreCipher | None = None,
        rewrite: bool = True,
        audit_keys: AuditKeys | None = None,
    ) -> StateStore:
        """Open and migrate the store; with ``rewrite`` (the default) bring its values to
        ``cipher``'s key, otherwise raise ``EncryptionPendingError`` where that is due.
        ``audit_keys`` (``[state] audit_key``) sign the audit chain; without them the
        store's own generated key does."""
        store = cls(create_engine(url), cipher, audit_keys)
        try:
            store.migrate("sync", schema.SYNC_MIGRATIONS)
            store.check_encryption(rewrite=rewrite)
        except BaseException:
            store.close()
            raise
        return store

    def migrate(self, component: str, migrations: tuple[Migration, ...]) -> int:
        """Other components (the webhook inbox) bring their own tables up to date here.

        The sync step that keys the audit chain also seals the end of its unkeyed rows with
        the audit key, in the same transaction: the version is recorded only with a sealed
        marker, and a marker found unsealed later is never trusted (``sync/audit.py``)."""
        if component == "sync":
            migrations = tuple(
                replace(m, apply=self._sealing(m.apply)) if m.version == KEYED_AUDIT_VERSION else m
                for m in migrations
            )
        return migrate.migrate(self.engine, component, migrations)

    def _sealing(self, step: Callable[[sa.Connection], None]) -> Callable[[sa.Connection], None]:
        def apply(conn: sa.Connection) -> None:
            step(conn)
            self._refuse_wrong_key(conn)  # never seal a generated key under a wrong one
            audit.seal_boundary(conn, self._load_audit_keys(conn))

        return apply

    @property
    def audit_keys(self) -> AuditKeys:
        """The keys of the audit chain: the configured ones, with the store's generated key
        among the old ones when it has signed rows before; the generated key alone (made
        on first use) when none is configured."""
        if self._audit_keys is None:
            with self.begin() as conn:
                self._audit_keys = self._load_audit_keys(conn)
        return self._audit_keys

    def _load_audit_keys(self, conn: sa.Connection) -> AuditKeys:
        configured = self._configured_audit_keys
        stored = self.meta_get(conn, AUDIT_KEY_META, for_update=True)
        if stored is None:
            if configured is not None:
                return configured
            generated = secrets.token_hex(32)
            sealed = self._seal_meta(generated, AUDIT_KEY_META)
            conn.execute(meta.insert().values(key=AUDIT_KEY_META, value=sealed))
            return AuditKeys(bytes.fromhex(generated))
        own = bytes.fromhex(self._open_meta(stored, AUDIT_KEY_META))
        if configured is None:
            return AuditKeys(own)
        return AuditKeys(configured.current, (*configured.previous, own))

    @property
    def audit_key_configured(self) -> bool:
        """Whether the audit chain is signed with a key held outside the store."""
        return self._configured_audit_keys is not None

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn

    def close(self) -> None:
        for heartbeat in self._heartbeats.values():
            heartbeat.stop()
        self._heartbeats.clear()
        self.engine.dispose()

    # --- meta -----------------------------------------------------------------------

    def meta_get(self, conn: sa.Connection, key: str, *, for_update: bool = False) -> str | None:
        query = sa.select(meta.c.value).where(meta.c.key == key)
        if for_update:
            query = query.with_for_update()
        value = conn.execute(query).scalar()
        return None if value is None else str(value)

    def meta_put(self, conn: sa.Connection, key: str, value: str) -> None:
        updated = conn.execute(meta.update().where(meta.c.key == key).values(value=value))
        if not updated.rowcount:
            conn.execute(meta.insert().values(key=key, value=value))

    def pseudonym_key(self) -> bytes:
        """The key customers are pseudonymised with when ``[privacy] pseudonym_key`` is not
        configured: generated once, kept in the store (encrypted when the store has a
        key), so pseudonyms stay stable; processes asking at once on a fresh store all
        keep the one stored first."""
        with self.begin() as conn:
            stored = self.meta_get(conn, PSEUDONYM_META)
            if stored is None:
                offered = self._seal_meta(secrets.token_hex(32), PSEUDONYM_META)
                stored = meta_once(conn, PSEUDONYM_META, offered)
        return bytes.fromhex(self._open_meta(stored, PSEUDONYM_META))

    def _seal_meta(self, value: str, name: str) -> str:
        if self.cipher is None:
            return value
        return self.cipher.encrypt(value.encode(), _META_SECRETS[name])

    def _open_meta(self, stored: str, name: str) -> str:
        plaintext = crypto.open_value(stored, self.cipher, _META_SECRETS[name])
        return stored if plaintext is None else plaintext.decode()

    # --- encryption at rest ------------------------------------------------------------

    def check_encryption(self, *, rewrite: bool = True) -> None:
        """Refuse a store this process could not read, or would write in the clear; bring a
        store written in the clear or under the old key to the configured key.

        The rewrite is one transaction (a crash leaves the store as it was). On SQLite it
        is followed by ``VACUUM`` and a WAL checkpoint, so the plaintext of the rewritten
        values does not linger in free pages or the WAL. Backups taken before stay as
        they were."""
        cipher = self.cipher
        with self.begin() as conn:
            self._refuse_wrong_key(conn)
            stored = self._stored_key_id(conn)
            if cipher is None or stored == cipher.key_id:
                return
            if not rewrite:
                held = "in the clear" if stored is None else f"under key id {stored}"
                raise EncryptionPendingError(
                    f"state store values are {held}; the next sync or crmtier doctor --fix "
                    f"encrypts them under key id {cipher.key_id}"
                )
            # One process at a time rewrites (the marker row may not exist yet to lock, so
            # the sync schema row is the lock); decide again under it: another may be done.
            conn.execute(
                sa.select(schema.schema_version.c.version)
                .where(schema.schema_version.c.component == "sync")
                .with_for_update()
            )
            stored = self._stored_key_id(conn)
            if stored == cipher.key_id:
                return
            rewritten = self._reencrypt(conn, cipher, from_plaintext=stored is None)
            self.meta_put(conn, ENCRYPTION_META, f"{crypto.FORMAT}:{cipher.key_id}")
        if rewritten and self.engine.dialect.name == "sqlite":
            self._compact()

    def _refuse_wrong_key(self, conn: sa.Connection) -> None:
        """A store this process cannot read: encrypted, and no key or an unknown one."""
        stored = self._stored_key_id(conn)
        cipher = self.cipher
        if stored is None or (cipher is not None and cipher.knows(stored)):
            return
        if cipher is None:
            raise StoreError(
                f"state store is encrypted (key id {stored}); set [state] encryption_key to its key"
            )
        raise StoreError(
            f"state store is encrypted with key id {stored}, but [state] "
            f"encryption_key is key id {cipher.key_id}: wrong key (to change keys, "
            "set the old one as [state] old_encryption_key for one start)"
        )

    def _stored_key_id(self, conn: sa.Connection) -> str | None:
        marker = self.meta_get(conn, ENCRYPTION_META)
        return crypto.key_id_of(marker) if marker else None

    def _reencrypt(self, conn: sa.Connection, cipher: StoreCipher, *, from_plaintext: bool) -> int:
        """Write every encrypted column's values back under the current key, in primary
        key order, a chunk at a time; returns how many rows were rewritten."""
        present = set(sa.inspect(conn).get_table_names())
        count = 0
        for table in schema.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, crypto.ENCRYPTED_TYPES)]
            if not columns or table.name not in present:
                continue
            keys = list(table.primary_key.columns)
            read = [
                sa.type_coerce(c, cast(TypeDecorator[Any], c.type).impl_instance).label(c.name)
                if from_plaintext
                else c
                for c in columns
            ]
            update = (
                table.update()
                .where(*(k == sa.bindparam(f"k_{k.name}") for k in keys))
                .values({c.name: sa.bindparam(f"v_{c.name}", type_=c.type) for c in columns})
            )
            last: tuple[Any, ...] | None = None
            while True:
                query = sa.select(*keys, *read).order_by(*keys).limit(_CHUNK)
                if last is not None:
                    query = query.where(sa.tuple_(*keys) > sa.tuple_(*last))
                rows = conn.execute(query).all()
                if not rows:
                    break
                conn.execute(
                    update,
                    [
                        {f"k_{k.name}": r._mapping[k.name] for k in keys}
                        | {f"v_{c.name}": r._mapping[c.name] for c in columns}
                        for r in rows
                    ],
                )
                count += len(rows)
                last = tuple(rows[-1][: len(keys)])
        for name, where in _META_SECRETS.items():
            stored = self.meta_get(conn, name)
            if stored is None or crypto.key_id_of(stored) == cipher.key_id:
                continue  # none, or sealed under this key already (made during this open)
            plain = (
                cipher.decrypt(stored, where).decode() if crypto.is_ciphertext(stored) else (stored)
            )
            self.meta_put(conn, name, cipher.encrypt(plain.encode(), where))
            count += 1
        return count

    def _compact(self) -> None:
        raw = self.engine.raw_connection()
        try:
            raw.driver_connection.execute("VACUUM")  # type: ignore[union-attr]
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        except Exception as exc:
            raise StoreError(
                f"state store: values are now encrypted, but VACUUM failed "
                f"({type(exc).__name__}); run it while no other crmtier process uses the "
                "store, or the old plaintext stays in free pages"
            ) from None
        finally:
            raw.close()

    # --- leases ---------------------------------------------------------------------

    def acquire_lock(self, name: str, *, ttl: timedelta = timedelta(minutes=1)) -> bool:
        """Take the named lease unless a live holder has it (see ``sync.leases``). While
        held it is renewed every third of ``ttl``; a holder that stops renewing loses it
        ``ttl`` after its last renewal, and a holder on this host whose process is gone or
        a zombie loses it at once."""
        owner = _owner()
        host, pid = socket.gethostname(), os.getpid()
        expires = utc_text(datetime.now(UTC) + ttl)
        try:
            with self.begin() as conn:
                row = conn.execute(
                    sa.select(locks).where(locks.c.name == name).with_for_update()
                ).first()
                if row is None:
                    conn.execute(
                        locks.insert().values(
                            name=name, owner=owner, host=host, pid=pid, expires_at=expires
                        )
                    )
                elif row.owner != owner and not _lease_is_dead(row):
                    return False
                else:
                    conn.execute(
                        locks.update()
                        .where(locks.c.name == name)
                        .values(owner=owner, host=host, pid=pid, expires_at=expires)
                    )
        except sa.exc.IntegrityError:
            return False  # another process inserted the lease first
        if name not in self._heartbeats:  # re-entrant: one heartbeat per lease held
            renew = partial(self.renew_lock, name, ttl=ttl)
            self._heartbeats[name] = Heartbeat(name, renew, ttl / 3)
        return True

    def renew_lock(self, name: str, *, ttl: timedelta = timedelta(minutes=1)) -> bool:
        """Move the lease's expiry ``ttl`` ahead; False if this process no longer holds it."""
        with self.begin() as conn:
            result = conn.execute(
                locks.update()
                .where(locks.c.name == name, locks.c.owner == _owner())
                .values(expires_at=utc_text(datetime.now(UTC) + ttl))
            )
        return bool(result.rowcount)

    def release_lock(self, name: str) -> None:
        heartbeat = self._heartbeats.pop(name, None)
        if heartbeat is not None:
            heartbeat.stop()
        with self.begin() as conn:
            conn.execute(locks.delete().where(locks.c.name == name, locks.c.owner == _owner()))


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _lease_is_dead(row: Any) -> bool:
    """Its holder stopped renewing it, or is on this host and will never run again."""
    if row.expires_at < now_text():
        return True
    return row.host == socket.gethostname() and not process_is_running(int(row.pid))
