"""Run records: every sync run leaves one, with counts that must add up (docs/targets.md R7).

``read = unchanged + written + dead_lettered + skipped`` for the records this run read;
a run whose counts do not reconcile is ``failed``, never ``succeeded``. A run that dies
leaves its record ``running``; the next run marks it ``failed`` ("interrupted") and, if it
then reads nothing although the bookmark record itself must be re-read, fails too: a
silent "succeeded, 0 records" after a crash is exactly the failure R7 forbids.

Whether a ``running`` record's run is alive: the stream's reader holds the stream's lease,
so when a reader starts, no other reading run is alive. Webhook passes run beside readers
and beside each other (per-customer claims), so their records carry their own liveness:
an owner (``sync.claims.owner_id``: host, pid, thread) and an expiry on the database's
clock that a heartbeat moves forward every third of its time to live while the run runs
(as a lease's, ``sync.leases``). Every run and pass that writes, as it starts, marks
failed ("interrupted") the records whose owner stopped renewing them, or whose owner is a
process of this host that is gone, and only those.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa

from sync.claims import db_now, died_here
from sync.leases import Heartbeat
from sync.schema import now_text, runs
from sync.store import StateStore

RunStatus = Literal["running", "succeeded", "completed_with_errors", "paused_quota", "failed"]


@dataclass
class RunCounts:
    read: int = 0
    tiered: int = 0
    unchanged: int = 0
    written: int = 0
    dead_lettered: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    pages: int = 0
    recovered: int = 0  # decisions of earlier runs completed from the outbox
    dq_issues: Counter[str] = field(default_factory=Counter)
    tiers: Counter[str] = field(default_factory=Counter)  # value tier distribution
    changes: Counter[str] = field(default_factory=Counter)  # "wealth -> private"
    writes: Counter[str] = field(default_factory=Counter)  # items written, by kind
    write_failures: Counter[str] = field(default_factory=Counter)
    # tasks beyond their rule's budget or an owner's cap: deferred by this run, and all
    # waiting for a later run when it ended (by rule; sync.taskbudget)
    tasks_deferred: Counter[str] = field(default_factory=Counter)
    tasks_waiting: Counter[str] = field(default_factory=Counter)
    # tasks, closures and memberships by rule or campaign (``side_effect_label``): planned
    # by this run's pages, and written (the CRM acknowledged them), so a run can show that
    # nothing it planned was left unwritten
    planned: Counter[str] = field(default_factory=Counter)
    effects: Counter[str] = field(default_factory=Counter)

    def reconciles(self) -> bool:
        return self.read == (
            self.unchanged + self.written + self.dead_lettered + sum(self.skipped.values())
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "tiered": self.tiered,
            "unchanged": self.unchanged,
            "written": self.written,
            "dead_lettered": self.dead_lettered,
            "skipped": dict(self.skipped),
            "pages": self.pages,
            "recovered": self.recovered,
            "dq_issues": dict(self.dq_issues),
            "tiers": dict(self.tiers),
            "changes": dict(self.changes),
            "writes": dict(self.writes),
            "write_failures": dict(self.write_failures),
            "tasks_deferred": dict(self.tasks_deferred),
            "tasks_waiting": dict(self.tasks_waiting),
            "planned": dict(self.planned),
            "effects": dict(self.effects),
        }


def side_effect_label(kind: str, name: str, member: bool = True) -> str:
    """How a task, a closure or a membership is counted: ``task upgrade_call``, ``close
    upgrade_call``, ``join vip_events``, ``leave vip_events``."""
    if kind == "membership":
        return f"{'join' if member else 'leave'} {name}"
    return f"{'close' if kind == 'task_close' else 'task'} {name}"


def new_run_id() -> str:
    return uuid.uuid4().hex


def start(
    conn: sa.Connection,
    run_id: str,
    stream: str,
    *,
    trigger: str,
    dry_run: bool,
    owner: str,
    ttl: timedelta,
) -> None:
    """Record the run as ``running``, held by ``owner`` for ``ttl`` (``keep_alive`` renews)."""
    conn.execute(
        runs.insert().values(
            id=run_id,
            stream=stream,
            trigger=trigger,
            status="running",
            dry_run=dry_run,
            started_at=now_text(),
            counts={},
            api_calls={},
            owner=owner,
            expires_at=db_now(conn.dialect.name) + ttl.total_seconds(),
        )
    )


def keep_alive(store: StateStore, run_id: str, owner: str, ttl: timedelta) -> Heartbeat:
    """The run's heartbeat: its record's expiry moves ``ttl`` ahead every third of ``ttl``
    until stopped (once the record is finished; a beat after that changes nothing that is
    read). A run frozen for a whole ``ttl`` may be marked interrupted meanwhile; its own
    final status, written when it ends, replaces the mark."""

    def renew() -> bool:
        with store.begin() as conn:
            result = conn.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.owner == owner)
                .values(expires_at=db_now(conn.dialect.name) + ttl.total_seconds())
            )
        return bool(result.rowcount)

    return Heartbeat(f"run:{run_id}", renew, ttl / 3)


def checkpoint(
    conn: sa.Connection, run_id: str, counts: RunCounts, api_calls: dict[str, Any]
) -> None:
    conn.execute(
        runs.update()
        .where(runs.c.id == run_id)
        .values(counts=counts.as_json(), api_calls=api_calls)
    )


def finish(
    conn: sa.Connection,
    run_id: str,
    status: RunStatus,
    counts: RunCounts,
    api_calls: dict[str, Any],
    error: str | None = None,
    *,
    min_calls: dict[str, int] | None = None,
) -> None:
    conn.execute(
        runs.update()
        .where(runs.c.id == run_id)
        .values(
            status=status,
            finished_at=now_text(),
            counts=counts.as_json(),
            api_calls=api_calls,
            min_calls=min_calls,
            error=None if error is None else error[:500],
        )
    )


class Interrupted(NamedTuple):
    """Records marked interrupted: of reading runs, and of the others (webhook passes)."""

    readers: int = 0
    passes: int = 0


INTERRUPTED = "interrupted: the process died"


def mark_interrupted(
    conn: sa.Connection, stream: str, current_run: str, *, reader: bool
) -> Interrupted:
    """Mark failed the records of ``stream`` still ``running`` whose run is dead: with
    ``reader`` (the caller holds the stream's lease), every other reading run's; and, for
    any caller, every webhook pass's whose owner stopped renewing it or is a process of
    this host that is gone. A record without an owner (written before records had one)
    has no liveness signal and is taken as dead. A dead reading run is left to the next
    reader: it must know that it follows one (``sync.run``: a read of 0 records then
    fails)."""
    others = sa.and_(runs.c.stream == stream, runs.c.status == "running", runs.c.id != current_run)
    owners = conn.execute(
        sa.select(runs.c.owner).distinct().where(others, runs.c.owner.is_not(None))
    ).scalars()
    dead = sa.or_(
        runs.c.expires_at.is_(None),
        runs.c.expires_at <= db_now(conn.dialect.name),
        runs.c.owner.in_([o for o in owners if died_here(o)]),
    )
    is_reader = runs.c.trigger != "webhook"

    def mark(*where: sa.ColumnElement[bool]) -> int:
        result = conn.execute(
            runs.update()
            .where(others, *where)
            .values(status="failed", finished_at=now_text(), error=INTERRUPTED)
        )
        return int(result.rowcount)

    return Interrupted(readers=mark(is_reader) if reader else 0, passes=mark(~is_reader, dead))


def died(conn: sa.Connection, run_ids: Collection[str]) -> set[str]:
    """Which of these runs may have died: a write they left pending may have reached the
    CRM, its answer lost with the process. Only a run whose record says it finished, and
    not as ``mark_interrupted`` marks a dead one, stopped: it waited for the answers of the
    calls it made (``WritePool.shutdown``) and recorded them, so what it left pending never
    went out, or failed and was counted (``attempts``). A record still ``running`` is a
    dead run's too when its writes could be claimed: a webhook pass leaves a dead reading
    run's record to the next reader (``mark_interrupted``), and a pass that meets its
    writes first must not re-send them blindly. No record at all: taken as dead."""
    if not run_ids:
        return set()
    stopped = sa.select(runs.c.id).where(
        runs.c.id.in_(sorted(run_ids)),
        runs.c.status != "running",
        sa.or_(runs.c.error.is_(None), runs.c.error != INTERRUPTED),
    )
    return set(run_ids) - set(conn.execute(stopped).scalars())


def recent(conn: sa.Connection, stream: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    query = sa.select(runs).order_by(runs.c.started_at.desc()).limit(limit)
    if stream is not None:
        query = query.where(runs.c.stream == stream)
    return [dict(r._mapping) for r in conn.execute(query)]
