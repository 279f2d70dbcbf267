"""The durable webhook inbox: acked change events waiting to be processed, and the dedupe
memory that makes redeliveries harmless.

The receiver acks a notification only after its events are committed here (docs/targets.md W5:
with SQLite ``synchronous=FULL`` or a committed PostgreSQL transaction, an acked event survives a
SIGKILL). Each event has a unique ``event_key`` (the sender's notification id), and an
insert of a key already present is silently ignored, so a notification delivered ten times,
even concurrently, becomes one row (W4). Rows stay after processing, as dedupe memory, for
``dedupe_days`` (≥ 7: Salesforce retries 24 h, Stripe 3 days, Standard Webhooks ≈ 76 h) and
are then purged. The inbox keeps no payload, only which customer changed (S5).

Row life: ``pending`` → ``claimed`` (by one worker, with a lease) → ``done`` with an
outcome, or back to ``pending`` with a backoff after a failure, or ``dead`` after
``max_attempts``. A claim whose worker died (SIGKILL mid-batch) expires and is taken again,
so nothing acked is ever lost, only processed late.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa

from connectors.webhook_events import ChangeEvent
from sync.migration_steps import Migration
from sync.schema import metadata, parse_utc, utc_text
from sync.store import StateStore

webhook_inbox = sa.Table(
    "webhook_inbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_key", sa.String(200), nullable=False, unique=True),
    sa.Column("crm", sa.String(16), nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("operation", sa.String(8), nullable=False),
    sa.Column("version", sa.String(32), nullable=True),
    sa.Column("received_at", sa.String(32), nullable=False),
    sa.Column("status", sa.String(8), nullable=False),  # pending | claimed | done | dead
    sa.Column("available_at", sa.String(32), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("claimed_by", sa.String(120), nullable=True),
    sa.Column("lease_until", sa.String(32), nullable=True),
    sa.Column("processed_at", sa.String(32), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Column("error", sa.String(200), nullable=True),
    sa.Index("webhook_inbox_queue", "status", "available_at", "id"),
    sa.Index("webhook_inbox_received", "received_at"),
)

#: the inbox component's migrations, registered with the state store. Append only.
INBOX_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "webhook inbox with unique event keys",
        lambda conn: metadata.create_all(conn, tables=[webhook_inbox], checkfirst=True),
    ),
)

PENDING, CLAIMED, DONE, DEAD = "pending", "claimed", "done", "dead"


@dataclass(frozen=True)
class InboxItem:
    id: int
    event_key: str
    crm: str
    customer_id: str
    operation: str
    version: datetime | None
    received_at: datetime
    attempts: int


class EventState(NamedTuple):
    status: str
    error: str | None
    attempts: int


@dataclass(frozen=True)
class Added:
    """What one group commit added: new events per request, and the new rows' ids."""

    counts: list[int]
    ids: list[int]


@dataclass(frozen=True)
class InboxStats:
    depth: int  # pending + claimed
    oldest_pending_age_s: float  # 0 when empty
    dead: int


#: The ack path's one statement, as plain SQL (the same on SQLite >= 3.35 and PostgreSQL). It
#: runs for every acked event; the text form spares the commit thread a statement compilation
#: per call, CPU that would otherwise hold the GIL against the event loop answering requests.
_INSERT_IGNORING_DUPLICATES = sa.text(
    "INSERT INTO webhook_inbox (event_key, crm, customer_id, operation, version, received_at,"
    " status, available_at, attempts) VALUES (:event_key, :crm, :customer_id, :operation,"
    " :version, :received_at, :status, :available_at, :attempts)"
    " ON CONFLICT (event_key) DO NOTHING RETURNING id, event_key"
)


class Inbox:
    def __init__(self, store: StateStore) -> None:
        self.store = store
        store.migrate("webhook_inbox", INBOX_MIGRATIONS)

    # --- receiver side ------------------------------------------------------------------

    def add(self, groups: Sequence[Sequence[ChangeEvent]], now: datetime) -> list[int]:
        """Commit the events of several requests in one transaction (group commit); return,
        per request, how many of its events were new (the rest were redeliveries)."""
        return self.add_batch(groups, now).counts

    def add_batch(self, groups: Sequence[Sequence[ChangeEvent]], now: datetime) -> Added:
        """``add``, also naming the new events' ids: a task engine is handed them as units
        of work once they are committed (``sync/tasks/webhook_batch.py``)."""
        stamp = utc_text(now)
        rows = [_row(event, stamp) for group in groups for event in group]
        if not rows:
            return Added([0 for _ in groups], [])
        with self.store.begin() as conn:
            new = {
                str(row.event_key): int(row.id)
                for values in rows
                for row in conn.execute(_INSERT_IGNORING_DUPLICATES, values)
            }
        ids = sorted(new.values())
        counts = []
        for group in groups:
            counts.append(sum(1 for e in group if e.event_key in new))
            for e in group:
                new.pop(e.event_key, None)
        return Added(counts, ids)

    # --- worker side --------------------------------------------------------------------

    def ready(self, now: datetime) -> tuple[int, datetime | None]:
        """How many events are claimable now, and when the oldest of them arrived. Claims
        whose lease lapsed count: after a crash they are the only work left, and no new
        event may be needed to have them taken again."""
        with self.store.engine.connect() as conn:
            row = conn.execute(
                sa.select(sa.func.count(), sa.func.min(webhook_inbox.c.received_at)).where(
                    _claimable(utc_text(now))
                )
            ).one()
        return int(row[0]), (parse_utc(row[1]) if row[1] else None)

    def claim(self, owner: str, limit: int, now: datetime, lease: timedelta) -> list[InboxItem]:
        """Take up to ``limit`` claimable events, oldest first, lapsed claims included.

        Two statements: pick and lock the ids, then update exactly those. On PostgreSQL the
        pick skips rows other workers hold (``FOR UPDATE SKIP LOCKED``), so claimers
        neither wait nor overlap. The one-statement form, ``UPDATE ... WHERE id IN (SELECT
        ... LIMIT n FOR UPDATE SKIP LOCKED)``, is not bounded by ``n``: PostgreSQL may
        plan it as a nested loop that runs the sub-select again for every row it checks
        (``EXPLAIN ANALYZE``: loops=2000), each run skipping the rows this very statement
        has just updated and returning the next ``n``, so one claim took 1,000 or all
        2,000 events of the inbox with a limit of 200. On SQLite the store's
        ``BEGIN IMMEDIATE`` lets one claimer in at a time."""
        oldest = (
            sa.select(webhook_inbox.c.id)
            .where(_claimable(utc_text(now)))
            .order_by(webhook_inbox.c.id)
            .limit(limit)
        )
        return self._take(oldest, owner, now, lease)

    def claim_ids(
        self, ids: Sequence[int], owner: str, now: datetime, lease: timedelta
    ) -> list[InboxItem]:
        """Take these events for ``owner`` (a task engine's job), whatever their
        ``available_at``: the engine schedules retries itself. An event is taken when
        pending, already held by ``owner`` (the job runs again after its worker died), or
        held by a claim whose lease lapsed; done, dead and others' live claims are left."""
        stamp = utc_text(now)
        takeable = sa.or_(
            webhook_inbox.c.status == PENDING,
            sa.and_(
                webhook_inbox.c.status == CLAIMED,
                sa.or_(webhook_inbox.c.claimed_by == owner, webhook_inbox.c.lease_until < stamp),
            ),
        )
        pick = (
            sa.select(webhook_inbox.c.id)
            .where(webhook_inbox.c.id.in_(list(ids)), takeable)
            .order_by(webhook_inbox.c.id)
        )
        return self._take(pick, owner, now, lease)

    def _take(
        self, pick: sa.Select[tuple[int]], owner: str, now: datetime, lease: timedelta
    ) -> list[InboxItem]:
        """Claim the events ``pick`` selects for ``owner``, in one transaction: the ids
        picked and locked (others' locked rows skipped on PostgreSQL), then exactly those
        updated (``claim`` says why two statements)."""
        with self.store.begin() as conn:
            if conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            picked = list(conn.execute(pick).scalars())
            if not picked:
                return []
            rows = conn.execute(
                webhook_inbox.update()
                .where(webhook_inbox.c.id.in_(picked))
                .values(
                    status=CLAIMED,
                    claimed_by=owner,
                    lease_until=utc_text(now + lease),
                    attempts=webhook_inbox.c.attempts + 1,
                )
                .returning(*_ITEM_COLUMNS)
            ).all()
        return sorted((_item(row) for row in rows), key=lambda item: item.id)

    def states(self, ids: Sequence[int]) -> dict[int, EventState]:
        """Status, last error and attempts of these events (a job checks what it left)."""
        c = webhook_inbox.c
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(c.id, c.status, c.error, c.attempts).where(c.id.in_(list(ids)))
            ).all()
        return {int(r.id): EventState(str(r.status), r.error, int(r.attempts)) for r in rows}

    def complete(self, outcomes: Mapping[int, str], now: datetime) -> None:
        """Mark claimed events done, each with its outcome (written, unchanged, ...)."""
        done = {"status": DONE, "processed_at": utc_text(now), "lease_until": None, "error": None}
        self._update_each({i: {**done, "outcome": o[:16]} for i, o in outcomes.items()})

    def bury(self, errors: Mapping[int, str], now: datetime) -> None:
        """Events that failed ``max_attempts`` times: kept as ``dead`` with the reason."""
        dead = {"status": DEAD, "processed_at": utc_text(now), "lease_until": None, "outcome": DEAD}
        self._update_each({i: {**dead, "error": e[:200]} for i, e in errors.items()})

    def retry_later(self, errors: Mapping[int, str], at: datetime, *, count: bool = True) -> None:
        """Put failed events back as pending, claimable again from ``at``. ``count=False``
        gives the attempt back: the event was not tried (the stream was busy)."""
        again: dict[str, object] = {
            "status": PENDING,
            "available_at": utc_text(at),
            "claimed_by": None,
            "lease_until": None,
        }
        if not count:
            again["attempts"] = webhook_inbox.c.attempts - 1
        self._update_each({i: {**again, "error": e[:200]} for i, e in errors.items()})

    def release(self, owner: str) -> int:
        """Give back this owner's unfinished claims (clean shutdown): pending again at once,
        with the attempt not counted."""
        with self.store.begin() as conn:
            result = conn.execute(
                webhook_inbox.update()
                .where(webhook_inbox.c.status == CLAIMED, webhook_inbox.c.claimed_by == owner)
                .values(
                    status=PENDING,
                    claimed_by=None,
                    lease_until=None,
                    attempts=webhook_inbox.c.attempts - 1,
                )
            )
        return int(result.rowcount or 0)

    def purge(self, now: datetime, keep: timedelta) -> int:
        """Forget processed events older than the dedupe window; never pending ones."""
        with self.store.begin() as conn:
            result = conn.execute(
                webhook_inbox.delete().where(
                    webhook_inbox.c.status.in_((DONE, DEAD)),
                    webhook_inbox.c.received_at < utc_text(now - keep),
                )
            )
        return int(result.rowcount or 0)

    def stats(self, now: datetime) -> InboxStats:
        with self.store.engine.connect() as conn:
            depth, oldest = conn.execute(
                sa.select(sa.func.count(), sa.func.min(webhook_inbox.c.received_at)).where(
                    webhook_inbox.c.status.in_((PENDING, CLAIMED))
                )
            ).one()
            dead = conn.execute(
                sa.select(sa.func.count()).where(webhook_inbox.c.status == DEAD)
            ).scalar_one()
        age = (now - parse_utc(oldest)).total_seconds() if oldest else 0.0
        return InboxStats(int(depth), max(age, 0.0), int(dead))

    def event_keys(self, statuses: Iterable[str] = (PENDING, CLAIMED, DONE, DEAD)) -> set[str]:
        """Event keys present in these statuses (for operators and tests)."""
        with self.store.engine.connect() as conn:
            return set(
                conn.execute(
                    sa.select(webhook_inbox.c.event_key).where(
                        webhook_inbox.c.status.in_(tuple(statuses))
                    )
                ).scalars()
            )

    def _update_each(self, values: Mapping[int, Mapping[str, object]]) -> None:
        """Set per-event values in one transaction (one statement per distinct value set)."""
        if not values:
            return
        with self.store.begin() as conn:
            for item_id, row in values.items():
                conn.execute(
                    webhook_inbox.update().where(webhook_inbox.c.id == item_id).values(**row)
                )


_ITEM_COLUMNS = (
    webhook_inbox.c.id,
    webhook_inbox.c.event_key,
    webhook_inbox.c.crm,
    webhook_inbox.c.customer_id,
    webhook_inbox.c.operation,
    webhook_inbox.c.version,
    webhook_inbox.c.received_at,
    webhook_inbox.c.attempts,
)


def _claimable(stamp: str) -> sa.ColumnElement[bool]:
    """Events a worker may take at ``stamp``: pending and due, or claimed by a worker whose
    lease lapsed (it died mid-batch)."""
    return sa.or_(
        sa.and_(webhook_inbox.c.status == PENDING, webhook_inbox.c.available_at <= stamp),
        sa.and_(webhook_inbox.c.status == CLAIMED, webhook_inbox.c.lease_until < stamp),
    )


def _row(event: ChangeEvent, stamp: str) -> dict[str, object]:
    return {
        "event_key": event.event_key,
        "crm": event.crm,
        "customer_id": event.customer_id,
        "operation": event.operation,
        "version": utc_text(event.version) if event.version else None,
        "received_at": stamp,
        "status": PENDING,
        "available_at": stamp,
        "attempts": 0,
    }


def _item(row: sa.Row[tuple[object, ...]]) -> InboxItem:
    m = row._mapping
    return InboxItem(
        id=int(m["id"]),
        event_key=str(m["event_key"]),
        crm=str(m["crm"]),
        customer_id=str(m["customer_id"]),
        operation=str(m["operation"]),
        version=parse_utc(str(m["version"])) if m["version"] else None,
        received_at=parse_utc(str(m["received_at"])),
        attempts=int(m["attempts"]),
    )
