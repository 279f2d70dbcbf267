"""The audit trail: an append-only, hash-chained record of every tier change and every
task or campaign side effect (reference S3).

Each row's ``hash`` is SHA-256 over the previous row's hash and the row's own canonical
JSON, and the newest ``(seq, hash)`` is kept as the chain head in ``meta``. Editing a row
breaks its hash; deleting or reordering rows breaks the next row's ``prev_hash`` or the
sequence; deleting the newest rows no longer matches the head. Rows are appended inside the
caller's transaction (the one that changes the customer's state), with the head locked, so
concurrent writers (scheduled sync, webhook worker) extend one chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from sync.schema import audit, meta, now_text

GENESIS = "0" * 64
HEAD_KEY = "audit_head"
Trigger = Literal["sync", "webhook", "manual", "backfill"]
AuditEvent = Literal["tier_change", "task", "campaign"]


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


def row_hash(prev_hash: str, row: dict[str, Any]) -> str:
    body = {k: v for k, v in row.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def append(conn: sa.Connection, entries: list[AuditEntry]) -> None:
    """Append ``entries`` to the chain inside the caller's transaction."""
    if not entries:
        return
    head = conn.execute(
        sa.select(meta.c.value).where(meta.c.key == HEAD_KEY).with_for_update()
    ).scalar()
    seq, prev = (0, GENESIS) if head is None else _parse_head(str(head))
    rows = []
    at = now_text()
    for entry in entries:
        seq += 1
        row = {"seq": seq, "at": at, **vars(entry), "prev_hash": prev}
        row["hash"] = prev = row_hash(prev, row)
        rows.append(row)
    conn.execute(audit.insert(), rows)
    value = f"{seq}:{prev}"
    if head is None:
        conn.execute(meta.insert().values(key=HEAD_KEY, value=value))
    else:
        conn.execute(meta.update().where(meta.c.key == HEAD_KEY).values(value=value))


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


def verify(conn: sa.Connection) -> VerifyResult:
    """Walk the chain; report the first row that was edited, removed or moved."""
    prev, expected_seq, count = GENESIS, 1, 0
    for row in _rows(conn):
        count += 1
        seq = int(row["seq"])
        if seq != expected_seq:
            return VerifyResult(False, count, seq, f"expected row {expected_seq}, found {seq}")
        if row["prev_hash"] != prev:
            return VerifyResult(False, count, seq, "prev_hash does not match the row before")
        if row_hash(prev, row) != row["hash"]:
            return VerifyResult(False, count, seq, "content does not match its hash")
        prev, expected_seq = row["hash"], seq + 1
    head = conn.execute(sa.select(meta.c.value).where(meta.c.key == HEAD_KEY)).scalar()
    head_seq, head_hash = (0, GENESIS) if head is None else _parse_head(str(head))
    if (head_seq, head_hash) != (expected_seq - 1, prev):
        return VerifyResult(
            False, count, expected_seq, f"chain ends at row {expected_seq - 1}, head is {head_seq}"
        )
    return VerifyResult(True, count)
