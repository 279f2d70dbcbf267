"""A Salesforce task whose upsert was made but never answered, reassigned by its relationship
manager before crmtier sends it again, keeps the RM's owner: in a run's own retry, and when
the next run plans the dead-lettered task again. The sync engine marks such a task as sent
again (``Dispatcher.maybe_made``), and the connector looks its key up and leaves the Task it
finds as it is instead of upserting crmtier's owner over the RM's
(connectors/salesforce/task_writes.py).
Real Salesforce sandbox over HTTPS, real SQLite store, the engine in this process so the CRM
can change during the run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.sandbox.salesforce_wire import make_id
from crmtier.commands.sync import open_engine
from crmtier.config import load_config
from sync import schema
from sync.engine import RunOptions, RunReport
from tests.sync.conftest import Harness, available_crms, start_sandbox

pytestmark = pytest.mark.skipif(
    "salesforce" not in available_crms(), reason="Salesforce sandbox/connector not in tree"
)
CUSTOMERS = 60
AS_OF = date(2026, 6, 30)
#: The relationship manager the tasks are handed to in the CRM.
RM = make_id("User", 777)


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """One attempt a call (a lost answer fails the call at once) and two a write, so a run
    retries an unanswered task once and dead-letters it after the second."""
    sandbox = start_sandbox("salesforce", tmp_path, CUSTOMERS)
    sandbox.add_users([RM])  # type: ignore[attr-defined]
    harness = Harness(sandbox, tmp_path, crm_extra={"max_attempts": 1})
    text = harness.config.read_text("utf-8").replace(
        "[sync]\n", "[sync]\nrecord_retry_attempts = 2\n"
    )
    harness.config.write_text(text, "utf-8")
    for key, value in harness.env.items():
        if key.startswith("CRMTIER_"):
            monkeypatch.setenv(key, value)
    try:
        yield harness
    finally:
        sandbox.stop()


def _run(h: Harness, on_progress: Callable[..., None] | None = None) -> RunReport:
    with open_engine(load_config(h.config), as_of=AS_OF, on_progress=on_progress) as engine:
        return engine.run(RunOptions(as_of=AS_OF))


def _reassign_once(h: Harness) -> tuple[Callable[..., None], dict[str, Any]]:
    """An ``on_progress`` that, once the CRM holds tasks, hands them all to ``RM``: after
    a call's answers are recorded and before any retry of them goes out."""
    reassigned: dict[str, Any] = {}

    def reassign(*_: Any) -> None:
        if reassigned:
            return
        for t in h.sandbox.tasks():
            reassigned[t.external_id] = t.owner
            h.sandbox.edit_task(t.external_id, OwnerId=RM)  # type: ignore[attr-defined]

    return reassign, reassigned


def _attempts(h: Harness) -> dict[str, tuple[str, int]]:
    engine = sa.create_engine(h.state_url())
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.outbox.c.key, schema.outbox.c.status, schema.outbox.c.attempts).where(
                schema.outbox.c.kind == "task"
            )
        ).all()
    engine.dispose()
    return {str(key): (str(status), int(n)) for key, status, n in rows}


def test_a_run_retrying_an_unanswered_task_keeps_the_rms_owner(harness: Harness) -> None:
    sandbox = harness.sandbox
    sandbox.server.inject("collections_upsert", answer_lost=True, times=1)
    reassign, reassigned = _reassign_once(harness)
    report = _run(harness, reassign)
    assert report.status == "succeeded", report.counts.as_json()
    retried = {k for k, (status, n) in _attempts(harness).items() if n == 1 and status == "done"}
    assert retried and retried <= set(reassigned)
    assert any(reassigned[k] not in (None, RM) for k in retried)  # crmtier gave an owner
    tasks = sandbox.tasks()
    assert len({t.external_id for t in tasks}) == len(tasks)  # each made once
    assert {t.external_id: t.owner for t in tasks if t.external_id in retried} == dict.fromkeys(
        retried, RM
    )


def test_a_dead_lettered_unanswered_task_planned_again_keeps_the_rms_owner(
    harness: Harness,
) -> None:
    """Every task write made and never answered: the upsert, then the retries' look-ups of
    the keys, so the run dead-letters the tasks as unanswered."""
    sandbox = harness.sandbox
    sandbox.server.inject("collections_upsert", answer_lost=True, times=None)
    sandbox.server.inject(
        "query", answer_lost=True, times=None, match=lambda r: "FROM Task" in (r.arg("q") or "")
    )
    first = _run(harness)
    assert first.status == "completed_with_errors" and first.counts.dead_lettered
    lettered = {k for k, (status, _) in _attempts(harness).items() if status == "dead"}
    made = {t.external_id: t.owner for t in sandbox.tasks()}
    assert lettered and lettered <= set(made)  # made in the CRM, never answered
    for key in lettered:
        sandbox.edit_task(key, OwnerId=RM)  # type: ignore[attr-defined]
    sandbox.server.faults.clear()

    again = _run(harness)

    assert again.status == "succeeded", again.counts.as_json()
    assert again.dead_letters_open == 0
    tasks = sandbox.tasks()
    assert len({t.external_id for t in tasks}) == len(tasks)
    assert {t.external_id: t.owner for t in tasks if t.external_id in lettered} == dict.fromkeys(
        lettered, RM
    )
