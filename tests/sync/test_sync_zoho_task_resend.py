"""A Zoho task insert stored by the CRM whose answer is lost, in a real ``crmtier sync``
process: Zoho has no upsert for Tasks and Insert Records no idempotency key, so the run
must not repeat the insert but send the batch again through the key look-up, which finds the
stored tasks. Compared with the same run on an identical sandbox where nothing was lost:
the same tasks (key, customer, subject, due date, owner, state), each once, the same outbox
items in the same states, the same counts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.zoho.task_keys import KEYS_PER_QUERY
from sync import schema
from tests.sync.conftest import Harness, available_crms, start_sandbox

pytestmark = pytest.mark.skipif("zoho" not in available_crms(), reason="Zoho not in tree")
CUSTOMERS = 300


def _sync(tmp_path: Path, name: str, *, lose_first_insert: bool) -> dict[str, Any]:
    sandbox = start_sandbox("zoho", tmp_path / name, CUSTOMERS)
    try:
        harness = Harness(sandbox, tmp_path / name)
        if lose_first_insert:
            sandbox.server.inject("insert", answer_lost=True, times=1)
        run = harness.run()
        assert run.returncode == 0 and run.report is not None, run.stderr[-2000:]
        engine = sa.create_engine(harness.state_url())
        with engine.connect() as conn:
            items = conn.execute(
                sa.select(
                    schema.outbox.c.customer_id,
                    schema.outbox.c.kind,
                    schema.outbox.c.key,
                    schema.outbox.c.status,
                    schema.outbox.c.attempts,
                )
            ).all()
        engine.dispose()
        tasks = [
            (t.external_id, t.customer_id, t.subject, t.due, t.owner, t.open)
            for t in sandbox.tasks()
        ]
        return {
            "report": run.report,
            "tasks": tasks,
            "items": sorted(tuple(i) for i in items),
            "served": sandbox.server.calls.counts(),
        }
    finally:
        sandbox.stop()


@pytest.mark.slow
def test_a_lost_insert_answer_makes_no_second_task(tmp_path: Path) -> None:
    clean = _sync(tmp_path, "clean", lose_first_insert=False)
    lost = _sync(tmp_path, "lost", lose_first_insert=True)
    assert clean["tasks"] and len({t[0] for t in lost["tasks"]}) == len(lost["tasks"])
    assert sorted(lost["tasks"]) == sorted(clean["tasks"])
    assert (lost["report"]["status"], lost["report"]["counts"]) == (
        clean["report"]["status"],
        clean["report"]["counts"],
    )
    # the same items, all done; only the lost batch's tasks were sent twice
    assert [i[:4] for i in lost["items"]] == [i[:4] for i in clean["items"]]
    retried = [i for i in lost["items"] if i[4]]
    assert retried and {i[1] for i in retried} == {"task"}
    assert not any(i[4] for i in clean["items"])
    # the insert was not repeated, and the re-sent batch's look-up found its tasks, which
    # are held and not written again: no update beyond the clean run's field updates
    assert lost["served"]["insert"] == clean["served"]["insert"]
    assert lost["served"]["update"] == clean["served"]["update"]
    # the re-sent batch's look-up: a query per 50 of its keys. Which insert lost its answer
    # (the first to reach the CRM) is the threads' race: the 12-task plan's or the 100-task
    # plan's, one query or two more
    resent = math.ceil(len(retried) / KEYS_PER_QUERY)
    assert lost["served"]["coql"] == clean["served"]["coql"] + resent
