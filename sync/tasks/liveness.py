"""Whether any ``crmtier worker`` is alive to take the task engine's jobs.

A spread full sync (``sync.retier``) only stores pages and waits for workers to process
them: with none running, no page unit moves on and the run fails after its stall time.
``crmtier sync --full`` asks here first and refuses at once; ``crmtier doctor`` and
``/metrics`` (``crmtier_workers_alive``) show the same count. The figure comes from
Procrastinate's own table of workers (``procrastinate_workers``: one row per running
worker, its ``last_heartbeat`` beaten every ``stalled_after / 3``; a worker that stops
cleanly deletes its row, a killed one leaves it to go stale). A worker is alive while its
heartbeat is younger than ``stalled_after``, the same visibility timeout after which its
jobs are handed to another worker (``sync.tasks.engine``), judged by the database's
clock, so hosts' clocks do not matter. No Procrastinate import: the receiver's and the
doctor's processes need only the store.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

#: what an operator does when no worker is alive, for the doctor's line and sync's refusal
START_A_WORKER = (
    "start crmtier worker (on this or any host), or set [workers] spread_full_sync = false "
    "to run full syncs in one process"
)

_TABLE = sa.text("SELECT to_regclass('procrastinate_workers') IS NOT NULL")
_ALIVE = sa.text(
    "SELECT count(*) FROM procrastinate_workers"
    " WHERE last_heartbeat > now() - make_interval(secs => :seconds)"
)


def live_workers(engine: sa.Engine, stalled_after: timedelta) -> int:
    """How many workers beat a heartbeat within ``stalled_after``; 0 on a store where no
    worker ever started (the queue's tables are not there yet)."""
    with engine.connect() as conn:
        if not conn.execute(_TABLE).scalar():
            return 0
        seconds = stalled_after.total_seconds()
        return int(conn.execute(_ALIVE, {"seconds": seconds}).scalar() or 0)
