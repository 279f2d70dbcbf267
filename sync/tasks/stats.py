"""What ``/metrics`` shows of the task engine: the queue, each worker's throughput, and,
when full syncs are spread over the workers, how many are alive.

The queue figures are read from Procrastinate's tables at scrape time, so any process on
the store (the receiver, a worker) shows the same truth across restarts. Throughput is
counted by the jobs themselves into ``task_worker_stats`` (one upsert per finished job),
because Procrastinate forgets a successful job once it is done. The live workers are
counted as ``crmtier sync --full`` and ``crmtier doctor`` count them
(``sync.tasks.liveness``): an operator's alert on zero fires before a spread full sync
refuses to start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from sync.schema import metadata, now_text
from sync.store import StateStore
from sync.tasks.liveness import live_workers

#: each worker's throughput, per job kind, for ``/metrics`` (``stats.py``)
task_worker_stats = sa.Table(
    "task_worker_stats",
    metadata,
    sa.Column("worker", sa.String(120), primary_key=True),
    sa.Column("kind", sa.String(64), primary_key=True),
    sa.Column("jobs", sa.BigInteger, nullable=False),
    sa.Column("customers", sa.BigInteger, nullable=False),
    sa.Column("failed", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
)


@dataclass(frozen=True)
class WorkerThroughput:
    worker: str
    kind: str
    jobs: int
    customers: int
    failed: int


@dataclass(frozen=True)
class QueueStats:
    #: jobs waiting (``todo``), by task name
    waiting: dict[str, int] = field(default_factory=dict)
    #: jobs being run now
    running: int = 0
    #: seconds since the oldest waiting job was first deferred (0 when none waits)
    oldest_waiting_age_s: float = 0.0
    #: dead letters: jobs out of attempts
    failed: int = 0
    workers: list[WorkerThroughput] = field(default_factory=list)
    #: workers with a heartbeat within ``stalled_after``; None unless full syncs are spread
    live_workers: int | None = None


def record_job(store: StateStore, worker: str, kind: str, customers: int, outcome: str) -> None:
    """Add a job run to ``worker``'s counts: the customers it finished, and the job itself
    once it is finished (``done``, or ``dead``: failed); a ``retry`` run adds customers
    only, so a job retried three times counts once."""
    finished, failed = int(outcome != "retry"), int(outcome == "dead")
    insert = postgresql.insert(task_worker_stats)
    row = {
        "worker": worker[:120],
        "kind": kind[:64],
        "jobs": finished,
        "customers": customers,
        "failed": failed,
        "updated_at": now_text(),
    }
    t = task_worker_stats.c
    with store.begin() as conn:
        conn.execute(
            insert.values(**row).on_conflict_do_update(
                index_elements=["worker", "kind"],
                set_={
                    "jobs": t.jobs + finished,
                    "customers": t.customers + customers,
                    "failed": t.failed + failed,
                    "updated_at": row["updated_at"],
                },
            )
        )


_WAITING = sa.text(
    "SELECT task_name, count(*) FROM procrastinate_jobs WHERE status = 'todo' GROUP BY task_name"
)
_COUNT = sa.text("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY status")
_OLDEST = sa.text(
    "SELECT min(e.at) FROM procrastinate_jobs j JOIN procrastinate_events e"
    " ON e.job_id = j.id AND e.type = 'deferred' WHERE j.status = 'todo'"
)


def queue_stats(
    store: StateStore, now: datetime, alive_within: timedelta | None = None
) -> QueueStats:
    """The queue as of ``now``; with ``alive_within`` (``stalled_after``, when full syncs are
    spread over the workers), how many workers are alive too: those whose heartbeat is at
    most that old (``sync.tasks.liveness``)."""
    with store.engine.connect() as conn:
        waiting = {str(name): int(n) for name, n in conn.execute(_WAITING)}
        by_status = {str(status): int(n) for status, n in conn.execute(_COUNT)}
        oldest = conn.execute(_OLDEST).scalar()
        workers = [
            WorkerThroughput(r.worker, r.kind, int(r.jobs), int(r.customers), int(r.failed))
            for r in conn.execute(
                sa.select(task_worker_stats).order_by(
                    task_worker_stats.c.worker, task_worker_stats.c.kind
                )
            )
        ]
    age = (now - oldest).total_seconds() if isinstance(oldest, datetime) else 0.0
    return QueueStats(
        waiting=waiting,
        running=by_status.get("doing", 0),
        oldest_waiting_age_s=max(age, 0.0),
        failed=by_status.get("failed", 0),
        workers=workers,
        live_workers=None if alive_within is None else live_workers(store.engine, alive_within),
    )
