"""The audit trail: an append-only, keyed hash chain of every tier change and every task
or campaign side effect (docs/targets.md S3).

Each row's ``hash`` is HMAC-SHA256, under the audit key named by the row's ``key_id``, over
the previous row's hash and the row's own canonical JSON (``key_id`` included); the newest
``(seq, hash)`` is kept as the chain head in ``meta``. Editing a row breaks its hash;
deleting or reordering rows breaks the next row's ``prev_hash`` or the sequence; deleting
the newest rows no longer matches the head. Because the hash is keyed, whoever can write the
database but does not hold the key cannot recompute the chain after an edit: ``verify``
fails. (An unkeyed SHA-256 chain, as before schema version 5, anyone can recompute.)

Keys: ``[state] audit_key`` (a secret reference, held outside the database) signs new rows,
``[state] old_audit_keys`` keep rows of earlier keys verifiable after a rotation; without a
configured key the store generates one and keeps it in ``meta`` (encrypted under ``[state]
encryption_key`` when there is one) -- weaker, since a reader of the database then holds
it. Rows written before keyed chaining (``key_id`` NULL) are the unkeyed prefix that the
upgrade recorded, sealed with the key (``BOUNDARY_KEY``), so no later row can be passed off
as an old unkeyed one; the first keyed row's ``prev_hash`` then also pins that prefix.

Rows are appended inside the caller's transaction (the one that changes the customer's
state), with the head locked, so concurrent writers (scheduled sync, webhook worker) extend
one chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from _json import make_encoder
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from json.encoder import encode_basestring
from typing import Any, Literal

import sqlalchemy as sa

from sync.bulkwrite import insert_rows
from sync.meta_facts import meta_once
from sync.schema import AUDIT_UNKEYED_UPTO, audit, meta, now_text

GENESIS = "0" * 64
HEAD_KEY = "audit_head"
_COLUMNS = tuple(c.name for c in audit.columns)
#: ``meta`` key of the last unkeyed row's seq, sealed: ``<seq>:<key id>:<HMAC>``
BOUNDARY_KEY = AUDIT_UNKEYED_UPTO
Trigger = Literal["sync", "webhook", "manual", "backfill"]
AuditEvent = Literal["tier_change", "task", "task_closed", "campaign", "override", "owner_change"]


@dataclass(frozen=True)
class AuditEntry:
    stream: str
    customer_ref: str  # pseudonym, never the CRM id or a name
    event: AuditEvent
    old: Any
    new: Any
    reason_codes: list[str]
    policy_version: str
    input_hash: str
    trigger: Trigger
    actor: str
    run_id: str
    source_event_id: str | None = None


# ``append`` stores a row as ``(seq, at, *the entry's values, key_id, prev_hash, hash)``,
# by position: a field added to or moved in one of the two and not the other would put
# values under the wrong columns (SQLite takes any text anywhere), so it fails here, when
# the module is imported, instead.
if ("seq", "at", *(f.name for f in fields(AuditEntry)), "key_id", "prev_hash", "hash") != _COLUMNS:
    raise RuntimeError("sync.audit: AuditEntry's fields are not the audit table's columns")


def audit_key_id(key: bytes) -> str:
    """A short public name of an audit key, kept in each row it signs."""
    return hmac.new(key, b"crmtier audit key id", hashlib.sha256).hexdigest()[:8]


@dataclass(frozen=True)
class AuditKeys:
    """The key new rows are signed with, and every key rows may be verified with."""

    current: bytes
    previous: tuple[bytes, ...] = ()

    @property
    def key_id(self) -> str:
        return audit_key_id(self.current)

    def by_id(self) -> Mapping[str, bytes]:
        return {audit_key_id(k): k for k in (*self.previous, self.current)}


#: the json module's settings of the canonical text the stored hashes cover
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
#: the C encoder ``_CANONICAL.encode`` builds anew for every call, made once (and without
#: the circular-reference check, which a row of plain values never needs): the encoder's
#: construction was a quarter of each row's canonical text
_encode = make_encoder(
    None, _CANONICAL.default, encode_basestring, None, ":", ",", True, False, True
)


def _canonical(row: Mapping[str, Any]) -> str:
    """``json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``, the
    same text byte for byte (``tests/sync/test_audit_canonical.py``)."""
    return "".join(_encode(row, 0))


def row_hash(prev_hash: str, row: dict[str, Any], key: bytes | None) -> str:
    """HMAC-SHA256 under ``key`` of the previous hash and the row's canonical JSON; plain
    SHA-256 for an unkeyed row of before schema version 5 (``key`` None)."""
    body = {k: v for k, v in row.items() if k != "hash" and (k != "key_id" or v is not None)}
    message = (prev_hash + _canonical(body)).encode("utf-8")
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.digest(key, message, "sha256").hex()


def _boundary_tag(key: bytes, upto: int) -> str:
    return hmac.new(key, f"crmtier audit unkeyed upto {upto}".encode(), hashlib.sha256).hexdigest()


def seal_boundary(conn: sa.Connection, keys: AuditKeys) -> None:
    """Seal the unkeyed-prefix marker the schema upgrade just wrote (``<seq>``) with the
    current key. Called once, right after that upgrade: a marker found unsealed later is
    not trusted (``verify`` reports it), never sealed after the fact."""
    value = conn.execute(
        sa.select(meta.c.value).where(meta.c.key == BOUNDARY_KEY).with_for_update()
    ).scalar()
    if value is None or ":" in str(value):
        return
    upto = int(str(value))
    sealed = f"{upto}:{keys.key_id}:{_boundary_tag(keys.current, upto)}"
    conn.execute(meta.update().where(meta.c.key == BOUNDARY_KEY).values(value=sealed))


def append(conn: sa.Connection, entries: list[AuditEntry], keys: AuditKeys) -> None:
    """Append ``entries`` to the chain inside the caller's transaction, signed with
    ``keys.current``."""
    if not entries:
        return
    lock_head = sa.select(meta.c.value).where(meta.c.key == HEAD_KEY).with_for_update()
    head = conn.execute(lock_head).scalar()
    if head is None:  # the first rows: create the head (once) so that it can be locked
        meta_once(conn, HEAD_KEY, f"0:{GENESIS}")
        head = conn.execute(lock_head).scalar_one()
    seq, prev = _parse_head(str(head))
    kid, at = keys.key_id, now_text()
    # the key's HMAC state made once and copied for each row: ``hmac.digest`` keyed it
    # anew and looked SHA-256 up by name every row (1.5-2 µs of a row's ~15)
    signer = hmac.new(keys.current, digestmod=hashlib.sha256)
    rows = []
    # The chain in one tight loop: each row's canonical text (every row here is keyed, so
    # ``key_id`` is always in it) hashed straight after the previous row's. The text's
    # dict is built in its keys' sorted order, which the encoder then sorts in one pass;
    # the stored row is the entry's values, in field order, between the chain's own
    # (``_COLUMNS`` order, checked at import; a field missing from the text fails ``verify``,
    # which hashes every stored column; tests/sync/test_sync_bulk_rows.py holds both to the
    # old rows). The HMAC state is this call's own: concurrent calls share nothing.
    for e in entries:
        seq += 1
        body = {
            "actor": e.actor,
            "at": at,
            "customer_ref": e.customer_ref,
            "event": e.event,
            "input_hash": e.input_hash,
            "key_id": kid,
            "new": e.new,
            "old": e.old,
            "policy_version": e.policy_version,
            "prev_hash": prev,
            "reason_codes": e.reason_codes,
            "run_id": e.run_id,
            "seq": seq,
            "source_event_id": e.source_event_id,
            "stream": e.stream,
            "trigger": e.trigger,
        }
        mac = signer.copy()
        mac.update((prev + _canonical(body)).encode("utf-8"))
        digest = mac.hexdigest()
        rows.append((seq, at, *vars(e).values(), kid, prev, digest))
        prev = digest
    insert_rows(conn, audit, _COLUMNS, rows)
    conn.execute(meta.update().where(meta.c.key == HEAD_KEY).values(value=f"{seq}:{prev}"))


def _parse_head(value: str) -> tuple[int, str]:
    seq, _, digest = value.partition(":")
    return int(seq), digest


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    rows: int
    first_bad_seq: int | None = None
    problem: str = ""


def _rows(conn: sa.Connection) -> Iterator[dict[str, Any]]:
    result = conn.execute(sa.select(audit).order_by(audit.c.seq).execution_options(yield_per=2000))
    for row in result:
        yield dict(row._mapping)


def verify(conn: sa.Connection, keys: AuditKeys) -> VerifyResult:
    """Walk the chain; report the first row that was edited, removed or moved, or that is
    signed with a key ``keys`` does not hold."""
    known = keys.by_id()
    unkeyed_upto, problem = _unkeyed_upto(conn, known)
    if problem:
        return VerifyResult(False, 0, unkeyed_upto + 1, problem)
    prev, expected_seq, count = GENESIS, 1, 0
    for row in _rows(conn):
        count += 1
        seq = int(row["seq"])
        if seq != expected_seq:
            return VerifyResult(False, count, seq, f"expected row {expected_seq}, found {seq}")
        if row["prev_hash"] != prev:
            return VerifyResult(False, count, seq, "prev_hash does not match the row before")
        kid = row["key_id"]
        if kid is None and seq > unkeyed_upto:
            return VerifyResult(
                False, count, seq, "unkeyed, but rows after the upgrade are all keyed"
            )
        if kid is not None and kid not in known:
            return VerifyResult(False, count, seq, f"signed with {_unknown(kid)}")
        if row_hash(prev, row, None if kid is None else known[kid]) != row["hash"]:
            return VerifyResult(False, count, seq, "content does not match its hash")
        prev, expected_seq = row["hash"], seq + 1
    head = conn.execute(sa.select(meta.c.value).where(meta.c.key == HEAD_KEY)).scalar()
    head_seq, head_hash = (0, GENESIS) if head is None else _parse_head(str(head))
    if (head_seq, head_hash) != (expected_seq - 1, prev):
        return VerifyResult(
            False, count, expected_seq, f"chain ends at row {expected_seq - 1}, head is {head_seq}"
        )
    return VerifyResult(True, count)


def _unkeyed_upto(conn: sa.Connection, known: Mapping[str, bytes]) -> tuple[int, str]:
    """The last row allowed to be unkeyed, from the sealed marker; a problem when the
    marker is missing, unsealed or its seal does not verify."""
    value = conn.execute(sa.select(meta.c.value).where(meta.c.key == BOUNDARY_KEY)).scalar()
    if value is None:
        return 0, "the sealed marker of the unkeyed rows is missing from meta"
    upto_text, _, sealed = str(value).partition(":")
    kid, _, tag = sealed.partition(":")
    upto = int(upto_text) if upto_text.isdecimal() else 0
    key = known.get(kid)
    if key is None and kid:
        return upto, f"the marker of the unkeyed rows is sealed with {_unknown(kid)}"
    if key is None or not hmac.compare_digest(tag, _boundary_tag(key, upto)):
        return upto, "the marker of the unkeyed rows was altered (its seal does not verify)"
    return upto, ""


def _unknown(kid: str) -> str:
    return f"audit key id {kid}, which is neither [state] audit_key nor one of old_audit_keys"
