"""SIGKILL one of two ``crmtier worker`` processes while it holds a page unit of a spread
full re-tier (issue 22): the other finishes the run, with nothing lost, duplicated or
stale, and no new traffic after the kill.

Real processes on the Salesforce sandbox and a PostgreSQL store (``retier_sandbox``). w1
SIGKILLs itself at a kill point of its first unit (``sync.killpoints``: after tiering it,
still queued, or right after committing it, its writes not sent), so the moment is the
same on a quiet box and a loaded one; after it nothing reaches the CRM or the queue but
what the run itself does. The killed run is compared with the same book
re-tiered in one process, on everything the CRM and the store end with: every customer's
write-back fields (reason texts included), the tasks (closed ones too), the memberships,
the audit rows, the outbox's items, the run's counts, and every unit done.

How the engine recovered is read from a trail of the queue's job rows (a trigger the test
puts on ``procrastinate_jobs``: a job that succeeds is deleted, its history with it):
the killed worker's job went back to the queue only once the worker had been silent for
``stalled_after`` (the visibility timeout), and the surviving worker then ran it to
success. No wall-clock bound is asserted (a loaded 2-core box is slow); the seconds from
the kill to the job's retry and to the last unit done are printed.

The unit killed while queued has successors waiting their turn behind it: this is the
case in which the survivor, before the stalled-job sweep was fetched first
(``sync.tasks.engine.RETRY_STALLED_PRIORITY``), cycled through those successors forever
and never freed the dead worker's unit. The other case kills the worker once its unit is
committed, its writes under way: those may have reached the CRM, so they are held as a
dead run's (tests/sync/test_retier_died_writing.py), and the run's counts differ from one
process's by the coordinator's re-read of the customers of the unit's sales tasks.
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sync.killpoints import ENV
from sync.planner import SALES_TASK_RULES
from tests.sync.retier_sandbox import run_side
from tests.webhooks.wh_workers import Cluster, wait_until

# Real processes and a visibility timeout: about a minute a case on a quiet box, so both
# cases are behind ``slow`` and .ci/run runs them after the crash soak; the default run keeps
# the fast check that the stalled-job retry is fetched first (tests/webhooks/test_webhook_tasks.py).
pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CUSTOMERS, PAGE = 800, 200  # four units (a page is at least 200 customers)
UNITS = -(-CUSTOMERS // PAGE)
#: the killed unit has two successors or more: a single survivor cycles them, each
#: waiting its turn behind the dead unit and retried a second later
KILLED_AT_MOST = UNITS - 2
LATENCY = 0.2  # seconds a CRM call: a unit's writes take long enough to be caught
STALLED_AFTER = 6  # the visibility timeout of the test's workers, in seconds
GUARD = 240.0  # a hang guard, not a performance limit

#: every change of a job row, kept by the store itself (transitions a poll could miss)
TRAIL = """
CREATE TABLE job_trail (
    n bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    job_id bigint NOT NULL,
    task_name text NOT NULL,
    args jsonb NOT NULL,
    status text NOT NULL,
    worker_id bigint
);
CREATE FUNCTION job_trail_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO job_trail (job_id, task_name, args, status, worker_id)
        VALUES (OLD.id, OLD.task_name, OLD.args, 'deleted', OLD.worker_id);
        RETURN OLD;
    END IF;
    INSERT INTO job_trail (job_id, task_name, args, status, worker_id)
    VALUES (NEW.id, NEW.task_name, NEW.args, NEW.status::text, NEW.worker_id);
    RETURN NEW;
END $$;
CREATE TRIGGER job_trail AFTER INSERT OR UPDATE OR DELETE ON procrastinate_jobs
    FOR EACH ROW EXECUTE FUNCTION job_trail_note();
"""


#: where w1 kills itself in its first unit, by the unit's status at that moment
KILL_POINT = {"queued": "after_tier", "committed": "after_commit"}


class KillRun:
    """The hooks of the killed side (``run_side``) and what they saw, on the database's
    clock: w1 dies at ``KILL_POINT[stage]`` of its first page job, whose unit must be one
    of the first ``KILLED_AT_MOST`` (w1 is idle when the first units are deferred, and a
    unit takes longer than the coordinator's next read, so its first is unit 1 or 2)."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.w1 = self.w2 = self.job = self.seq = 0
        self.status = ""  # the unit's status as w1 died
        self.at = self.last_heartbeat = datetime.min.replace(tzinfo=UTC)
        self.trail: list[Any] = []
        self.last_done = ""  # when the last unit was marked done (``updated_at``)
        self.jobs_done: dict[str, int] = {}  # page jobs finished, by worker name
        #: customers whose sales tasks the killed unit left pending, held as a dead run's
        #: (``sync.retier_died``) and read again by the coordinator
        self.held = 0

    def before(self, c: Cluster) -> None:
        self.w1, self.w2 = (
            int(r.id) for r in c.rows("SELECT id FROM procrastinate_workers ORDER BY id")
        )
        engine = sa.create_engine(c.url)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(TRAIL)
        finally:
            engine.dispose()

    def during(self, c: Cluster, coordinator: subprocess.Popen[str]) -> None:
        def w1_died() -> bool:
            assert coordinator.poll() is None, "the run ended before w1 died"
            return c.workers["w1"].poll() is not None

        wait_until(w1_died, GUARD, f"w1 to die at {KILL_POINT[self.stage]}")
        assert c.workers["w1"].returncode == -signal.SIGKILL, c.workers["w1"].returncode
        (row,) = c.rows(
            "SELECT clock_timestamp() AS at,"
            f" (SELECT last_heartbeat FROM procrastinate_workers WHERE id = {self.w1}) AS beat"
        )
        self.at, self.last_heartbeat = row.at, row.beat
        (held,) = c.rows(
            "SELECT DISTINCT job_id, (args->>'seq')::int AS seq FROM job_trail"
            " WHERE task_name = 'crmtier.retier_page' AND status = 'doing'"
            f" AND worker_id = {self.w1}"
        )
        self.job, self.seq = int(held.job_id), int(held.seq)
        self.status = str(c.scalar(f"SELECT status FROM retier_units WHERE seq = {self.seq}"))

    def after(self, c: Cluster) -> None:
        self.trail = c.rows(
            "SELECT job_id, at, status, worker_id, (args->>'seq')::int AS seq FROM job_trail"
            " WHERE task_name = 'crmtier.retier_page' ORDER BY n"
        )
        self.last_done = str(c.scalar("SELECT max(updated_at) FROM retier_units"))
        rules = ", ".join(f"'{rule}'" for rule in sorted(SALES_TASK_RULES))
        self.held = int(
            c.scalar(
                "SELECT count(DISTINCT customer_id) FROM outbox WHERE kind = 'task'"
                f" AND run_id LIKE '%\\:u{self.seq}' AND payload->>'rule' IN ({rules})"
            )
        )
        self.jobs_done = {
            str(r.worker): int(r.jobs)
            for r in c.rows(
                "SELECT worker, jobs FROM task_worker_stats WHERE kind = 'crmtier.retier_page'"
            )
        }

    def of_killed_job(self) -> list[tuple[str, int | None, datetime]]:
        """The killed job's changes after the kill: (status, worker, at)."""
        return [
            (r.status, r.worker_id, r.at)
            for r in self.trail
            if r.job_id == self.job and r.at > self.at
        ]


@pytest.mark.parametrize(
    "stage",
    [
        # planning or waiting its turn: the survivor runs the whole unit again
        "queued",
        # committed, its writes under way: the survivor marks it done and its writes not
        # answered as a dead run's; the coordinator sends them at the end of the run, the
        # customers of its sales tasks read again by id and planned first
        "committed",
    ],
)
def test_sigkill_of_a_worker_holding_a_unit_loses_duplicates_and_stales_nothing(
    tmp_path: Path, stage: str
) -> None:
    one = run_side(tmp_path / "one", CUSTOMERS, None, latency=LATENCY, page_size=PAGE)
    kill = KillRun(stage)
    killed = run_side(
        tmp_path / "killed",
        CUSTOMERS,
        2,
        latency=LATENCY,
        page_size=PAGE,
        workers_section=f"stalled_after_seconds = {STALLED_AFTER}\n",
        worker_env={"w1": {ENV: f"{KILL_POINT[stage]}:1"}},
        before=kill.before,
        during=kill.during,
        after=kill.after,
    )
    # w1 died holding the unit at the wanted stage, with successors waiting behind it
    assert kill.status == stage, (kill.seq, kill.status)
    assert kill.seq <= KILLED_AT_MOST, kill.seq
    # the CRM and the store end exactly where one process leaves them
    assert killed.report["status"] == one.report["status"] == "succeeded", killed.report
    counts = _less_the_re_read(killed.report["counts"], one.report["counts"], kill.held)
    assert counts == one.report["counts"]
    # committed, the unit's writes may have reached the CRM: its sales tasks are held as a
    # dead run's, their customers read again; not yet committed, it is simply run again
    assert (kill.held > 0) == (stage == "committed"), kill.held
    assert killed.state[0] == one.state[0]  # every customer's fields, reason texts included
    assert killed.state[1] == one.state[1]  # every task, closed ones too, none twice
    assert killed.state[2] == one.state[2]  # memberships
    assert killed.audit == one.audit
    assert killed.outbox == one.outbox
    assert killed.units == [(n, "done") for n in range(1, UNITS + 1)]
    # one job per unit, none given up; each finished once (the killed one not by w1)
    jobs = {(r.seq, r.job_id) for r in kill.trail}
    assert sorted(seq for seq, _ in jobs) == list(range(1, UNITS + 1))
    assert not [r for r in kill.trail if r.status == "failed"]
    assert sum(kill.jobs_done.values()) == UNITS, kill.jobs_done
    # the engine's visibility timeout: the killed job went back to the queue only after
    # w1 had been silent for stalled_after, then w2 took it and it succeeded
    moves = [(s, w, at) for s, w, at in kill.of_killed_job() if (s, w) != ("doing", None)]
    assert [s for s, _, _ in moves[:1]] == ["todo"], moves  # w1's pruning aside
    assert [(s, w) for s, w, _ in moves[-2:]] == [("doing", kill.w2), ("deleted", kill.w2)]
    retried = moves[0][2]
    assert retried - kill.last_heartbeat > timedelta(seconds=STALLED_AFTER)
    last = datetime.fromisoformat(kill.last_done.replace("Z", "+00:00"))
    print(
        f"\n{stage}: unit {kill.seq} killed; retried {(retried - kill.at).total_seconds():.1f} s"
        f" after the kill ({(retried - kill.last_heartbeat).total_seconds():.1f} s after w1's"
        f" last heartbeat; stalled_after {STALLED_AFTER} s); last unit done"
        f" {(last - kill.at).total_seconds():.1f} s after the kill; calls one process"
        f" {one.calls}, killed {killed.calls}"
    )


def _less_the_re_read(counts: dict[str, Any], one: dict[str, Any], held: int) -> dict[str, Any]:
    """The run's ``counts`` less the coordinator's re-read of ``held`` customers by id (one
    fetch, counted a page): each read again and settled by the dead unit's decision,
    counted unchanged and at its tier once more, as one process counts a customer it reads
    twice; ``one``: the same run in one process, for the tiers."""
    if not held:
        return counts
    more = Counter(counts["tiers"])
    more.subtract(one["tiers"])
    assert min(more.values()) >= 0 and sum(more.values()) == held, (more, held)
    less = {"read": held, "unchanged": held, "pages": 1}
    return {**counts, **{k: counts[k] - n for k, n in less.items()}, "tiers": one["tiers"]}
