"""Which runs that left pending writes may have died (``runs.died``): recovery holds a
dead run's pending sales tasks until their customers are planned again
(``sync.run_outbox.recover``), and re-sends a stopped run's as they are. Only a run whose
record says it finished, not as a dead one, stopped: a webhook pass meets a dead reading
run's writes while its record still says ``running`` (``mark_interrupted`` leaves that
record to the next reader), and must not re-send its sales task blindly to a customer
that may have been sanctioned since.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from sync import runs
from sync.store import StateStore

STREAM = "indoubt:Customer"

#: run id -> (final status and error, or None: never finished), and whether it may have died
RUNS: dict[str, tuple[tuple[runs.RunStatus, str | None] | None, bool]] = {
    "succeeded": (("succeeded", None), False),
    "paused": (("paused_quota", "CRM quota or rate limit: 429"), False),
    "failed": (("failed", "write call failed: 500"), False),
    "marked_dead": (("failed", runs.INTERRUPTED), True),
    # a reading run killed, its record left to the next reader, met first by a webhook pass
    "still_running": (None, True),
}


def _record(conn: sa.Connection) -> None:
    for run_id, (end, _) in RUNS.items():
        runs.start(
            conn, run_id, STREAM, trigger="sync", dry_run=False, owner="h:1:1:x",
            ttl=timedelta(days=1),
        )  # fmt: skip
        if end is not None:
            runs.finish(conn, run_id, end[0], runs.RunCounts(), {}, end[1])


@pytest.mark.parametrize("asked", [*RUNS, "no_record"])
def test_only_a_run_that_finished_alive_left_writes_that_never_went_out(
    store: StateStore, asked: str
) -> None:
    with store.begin() as conn:
        _record(conn)
        died = runs.died(conn, {asked})
    expected = RUNS[asked][1] if asked in RUNS else True  # no record: no proof it stopped
    assert died == ({asked} if expected else set())


def test_every_run_asked_about_is_answered_together(store: StateStore) -> None:
    with store.begin() as conn:
        _record(conn)
        assert runs.died(conn, set(RUNS)) == {r for r, (_, dead) in RUNS.items() if dead}
        assert runs.died(conn, set()) == set()
