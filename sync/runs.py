"""Run records: every sync run leaves one, with counts that must add up (docs/targets.md R7).

``read = unchanged + written + dead_lettered + skipped`` for the records this run read;
a run whose counts do not reconcile is ``failed``, never ``succeeded``. A run that dies
leaves its record ``running``; the next run marks it ``failed`` ("interrupted") and, if it
then reads nothing although the bookmark record itself must be re-read, fails too: a
silent "succeeded, 0 records" after a crash is exactly the failure R7 forbids.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa

from sync.schema import now_text, runs

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


def start(conn: sa.Connection, run_id: str, stream: str, *, trigger: str, dry_run: bool) -> None:
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
        )
    )


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


def mark_interrupted(conn: sa.Connection, stream: str, current_run: str) -> int:
    """Runs of ``stream`` still ``running`` (their process died): mark them failed. Called
    by the stream's reader, which holds its lease, so no other reading run is alive; the
    webhook worker's passes (``trigger=webhook``) run beside it and are left be."""
    result = conn.execute(
        runs.update()
        .where(
            runs.c.stream == stream,
            runs.c.status == "running",
            runs.c.id != current_run,
            runs.c.trigger != "webhook",
        )
        .values(status="failed", finished_at=now_text(), error="interrupted: the process died")
    )
    return int(result.rowcount)


def recent(conn: sa.Connection, stream: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    query = sa.select(runs).order_by(runs.c.started_at.desc()).limit(limit)
    if stream is not None:
        query = query.where(runs.c.stream == stream)
    return [dict(r._mapping) for r in conn.execute(query)]
