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
from types import SimpleNamespace
from typing import cast

import pytest
import sqlalchemy as sa

from sync import outbox, runs
from sync.outbox import OutboxItem
from sync.run_outbox import _adopt, _died, _sales_tasks_in_doubt
from sync.run_parts import RunParts
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


#: a pending item left by an earlier run: (kind, rule, the run, attempts, whether a call of
#: it went unanswered) -> held for re-planning
HELD = [
    ("task", "upgrade_call", "marked_dead", 0, False, True),  # the dead run may have sent it
    ("task", "upgrade_call", "still_running", 0, False, True),
    ("task", "upgrade_call", "paused", 0, False, False),  # never sent: re-sent as it is
    ("task", "upgrade_call", "paused", 1, True, True),  # sent, unanswered: it may have landed
    # sent, refused retryably (a locked record: the CRM answered and made nothing)
    ("task", "upgrade_call", "paused", 1, False, False),
    ("task", "service_recovery", "failed", 2, True, True),  # unanswered, then refused
    ("task", "service_recovery", "failed", 2, False, False),
    ("task", "credit_limit_review", "marked_dead", 1, True, False),  # not sales: it stays
    ("membership", None, "marked_dead", 0, False, False),  # planned again anyway (``in_doubt``)
    # the recovering run's own (a re-tier's, left by its page units): retried as planned
    ("task", "upgrade_call", "this_run", 1, True, False),
]


@pytest.mark.parametrize(("kind", "rule", "run_id", "attempts", "unanswered", "held"), HELD)
def test_recovery_holds_a_sales_task_that_may_have_reached_the_crm(
    store: StateStore,
    kind: str,
    rule: str | None,
    run_id: str,
    attempts: int,
    unanswered: bool,
    held: bool,
) -> None:
    with store.begin() as conn:
        _record(conn)
    payload = {"rule": rule} if rule else {"campaign": "vip", "member": True}
    item = OutboxItem(1, "C1", kind, "k", payload, attempts, run_id, "sync", unanswered=unanswered)  # type: ignore[arg-type]
    parts = cast(RunParts, SimpleNamespace(e=SimpleNamespace(store=store), run_id="this_run"))
    died = _died(parts, [item])
    assert _sales_tasks_in_doubt(parts, [item], died) == ({"C1"} if held else set())


def _pending_task(conn: sa.Connection, run_id: str, customer: str) -> None:
    outbox.enqueue(
        conn,
        STREAM,
        run_id,
        [outbox.NewItem(customer, "task", f"k-{customer}", {"rule": "upgrade_call"})],
        trigger="sync",
    )


def test_a_run_that_dies_sending_a_stopped_runs_task_leaves_it_in_doubt(store: StateStore) -> None:
    """A stopped run's sales task never went out; the run that adopts it may send it and
    die before the answer. The next run must hold it, not take it for never sent: adopting
    labels it with the adopter, whose record still says running. A dead run's task keeps
    its own run (in doubt already)."""
    with store.begin() as conn:
        _record(conn)
        runs.start(
            conn, "adopter", STREAM, trigger="sync", dry_run=False, owner="h:1:1:y",
            ttl=timedelta(days=1),
        )  # fmt: skip
        _pending_task(conn, "paused", "C1")
        _pending_task(conn, "marked_dead", "C2")
        items = outbox.pending(conn, STREAM)
    adopted: list[OutboxItem] = []
    adopter = cast(
        RunParts,
        SimpleNamespace(
            e=SimpleNamespace(store=store, stream=STREAM),
            run_id="adopter",
            dispatcher=SimpleNamespace(recover=lambda got, _states, _died: adopted.extend(got)),
        ),
    )
    _adopt(adopter, items, _died(adopter, items))
    assert [i.customer_id for i in adopted] == ["C1", "C2"]
    with store.begin() as conn:  # the adopter is killed while sending: the next run
        left = outbox.pending(conn, STREAM)
    assert {i.customer_id: i.run_id for i in left} == {"C1": "adopter", "C2": "marked_dead"}
    later = cast(RunParts, SimpleNamespace(e=SimpleNamespace(store=store), run_id="later"))
    assert _sales_tasks_in_doubt(later, left, _died(later, left)) == {"C1", "C2"}
