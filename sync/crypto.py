"""Encryption at rest of the state store's customer-data columns (docs/targets.md S4).

Application-level AES-256-GCM on the few columns that can hold customer data (the written
field values and reasons text, which quote amounts; the pending decision; the outbox
payloads; the CRM's dead-letter messages, which can quote a rejected value), rather than
SQLCipher: it works the same on SQLite and PostgreSQL, needs no native build, and protects
the SQLite file, its WAL and every backup copy alike, because the values are encrypted
before SQLite sees them. What must be queried by stays clear: CRM record ids, pseudonyms,
dedupe keys, statuses, timestamps, and the pseudonymised audit trail (tier and reason
codes), which ``crmtier audit verify`` checks without the key.

An encrypted value is text, so no column type changes: ``enc1:<key id>:<base64url(nonce ‖
ciphertext ‖ tag)>``. ``enc1`` is AES-256-GCM with a random 96-bit nonce per value. The key
id is derived from the key (HMAC-SHA256, 8 hex characters), names the key without revealing
it, and lets a store hold values of an old key while it is re-encrypted under a new one.
The associated data is the value's header and its ``table.column``, so a ciphertext moved
to another column fails authentication instead of decrypting into the wrong place.

The cipher is attached to the engine's dialect (one dialect object per engine), which the
column types receive on every value: two stores in one process keep their own keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from sync import jsontext

FORMAT = "enc1"
_NONCE_BYTES = 12
_KEY_BYTES = 32
_ATTR = "crmtier_store_cipher"
_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")
#: base64 to its URL-safe alphabet, as ``base64.urlsafe_b64encode`` translates it
_URLSAFE = bytes.maketrans(b"+/", b"-_")


class StoreError(RuntimeError):
    """The state store cannot be opened or used as configured (one-line message).

    Defined here, below ``sync.store``, because the column types raise it while reading;
    ``sync.store`` re-exports it."""


def key_id(key: bytes) -> str:
    """A short public name of ``key``: which key wrote a value, without revealing it."""
    return hmac.new(key, b"crmtier state store key id", hashlib.sha256).hexdigest()[:8]


def parse_key(text: str, *, name: str) -> bytes:
    """32 random bytes written as 64 hex characters or as base64; the error names the
    setting, never the value."""
    text = text.strip()
    if _HEX_KEY.match(text):
        return bytes.fromhex(text)
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != _KEY_BYTES:
        raise ValueError(
            f"{name}: must be 32 random bytes as 64 hex characters or base64 "
            "(make one with: python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return raw


class StoreCipher:
    """AES-256-GCM under the current key; also decrypts values of the previous key."""

    def __init__(self, key: bytes, previous: Sequence[bytes] = ()) -> None:
        if any(len(k) != _KEY_BYTES for k in (key, *previous)):
            raise ValueError("state store keys must be 32 bytes")
        self.key_id = key_id(key)
        self._current = AESGCM(key)
        self._keys = {key_id(k): AESGCM(k) for k in previous}
        self._keys[self.key_id] = self._current
        self._header = f"{FORMAT}:{self.key_id}:"
        self._sealing_ad: dict[str, bytes] = {}  # column -> its values' associated data

    def knows(self, kid: str) -> bool:
        return kid in self._keys

    def encrypt(self, plaintext: bytes, where: str) -> str:
        # every customer's state, inputs and outbox rows pass here: the header and the
        # column's associated data are made once, the base64 in binascii's one call
        ad = self._sealing_ad.get(where)
        if ad is None:
            ad = self._sealing_ad[where] = _associated(self._header, where)
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._current.encrypt(nonce, plaintext, ad)
        text = binascii.b2a_base64(nonce + sealed, newline=False).translate(_URLSAFE)
        return self._header + text.decode("ascii")

    def decrypt(self, token: str, where: str) -> bytes:
        fmt, kid, body = _split(token)
        if fmt != FORMAT or not body:
            raise StoreError(f"state store: a value in {where} is not a crmtier ciphertext")
        aead = self._keys.get(kid)
        if aead is None:
            raise StoreError(
                f"state store: a value in {where} is encrypted with key id {kid}, which is "
                "neither [state] encryption_key nor old_encryption_key"
            )
        try:
            raw = base64.urlsafe_b64decode(body.encode("ascii"))
            return aead.decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _associated(f"{fmt}:{kid}:", where)
            )
        except (InvalidTag, binascii.Error, ValueError):
            raise StoreError(
                f"state store: a value in {where} failed authentication: it was altered, "
                "moved from another column or truncated"
            ) from None


def is_ciphertext(value: object) -> bool:
    return isinstance(value, str) and value.startswith(FORMAT + ":")


def key_id_of(token: str) -> str:
    return _split(token)[1]


def _split(token: str) -> tuple[str, str, str]:
    fmt, _, rest = token.partition(":")
    kid, _, body = rest.partition(":")
    return fmt, kid, body


def _associated(header: str, where: str) -> bytes:
    return f"{header}{where}".encode("ascii")


def install(engine: sa.Engine, cipher: StoreCipher | None) -> None:
    """Make the encrypted columns of this engine's statements use ``cipher``."""
    setattr(engine.dialect, _ATTR, cipher)


def cipher_of(dialect: Dialect) -> StoreCipher | None:
    cipher: StoreCipher | None = getattr(dialect, _ATTR, None)
    return cipher


def open_value(value: str, cipher: StoreCipher | None, where: str) -> bytes | None:
    """The plaintext of a stored value; ``None`` when the store is not encrypted (the value
    is used as stored). An encrypted store holds ciphertexts only: anything else is an
    error, not data."""
    if cipher is None:
        if is_ciphertext(value):
            raise StoreError(f"state store: {where} is encrypted; set [state] encryption_key")
        return None
    if not is_ciphertext(value):
        raise StoreError(
            f"state store: {where} holds an unencrypted value in an encrypted store "
            "(written without the key, or altered)"
        )
    return cipher.decrypt(value, where)


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON column, encrypted when the engine has a cipher (the JSON of a ciphertext is a
    JSON string, valid on every backend), stored as before when it has none."""

    impl = sa.JSON
    cache_ok = True

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where  # table.column, bound into every ciphertext

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return self.seal(value, cipher_of(dialect))

    def seal(self, value: Any, cipher: StoreCipher | None) -> Any:
        """What the JSON column below stores of ``value``: the value itself without a
        cipher (and None), else the ciphertext of its JSON. ``sync.bulkwrite`` calls it
        straight, without SQLAlchemy's per-value wrapping around it."""
        if value is None or cipher is None:
            return value
        return cipher.encrypt(jsontext.dumps(value).encode("utf-8"), self.where)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        plaintext = open_value(value, cipher_of(dialect), self.where)
        return value if plaintext is None else jsontext.loads(plaintext)


class EncryptedText(TypeDecorator[str]):
    """A text column, encrypted when the engine has a cipher."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        cipher = cipher_of(dialect)
        if value is None or cipher is None:
            return value
        return cipher.encrypt(value.encode("utf-8"), self.where)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        plaintext = open_value(value, cipher_of(dialect), self.where)
        return str(value) if plaintext is None else plaintext.decode("utf-8")


#: the column types that encrypt, for the store's re-encryption walk
ENCRYPTED_TYPES = (EncryptedJSON, EncryptedText)
