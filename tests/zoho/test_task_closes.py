"""Zoho tasks and their closures look their keys up by COQL (test_task_writes.py and
tests/contract/test_task_close_calls.py count the calls): the look-up's scope
``ZohoCRM.coql.READ`` is checked by ``doctor``, and a grant without it refuses a task or
closure plan before any write."""

from __future__ import annotations

from datetime import date

import pytest

from connectors.contract import TaskClose, TaskUpsert, WritePlan
from connectors.errors import ConfigError
from tiering_core.models import TaskAction

LOOKUP = "tasks: key look-up"


def _made(customer: str, key: str) -> TaskUpsert:
    action = TaskAction(
        rule="upgrade_call", subject="Call", priority="normal", due=date(2027, 2, 1), dedupe_key=key
    )
    return TaskUpsert(customer, action)


def _closes(customers: list[str], keys: list[str]) -> WritePlan:
    return WritePlan(
        task_closes=tuple(
            TaskClose(c, k, "upgrade_call") for c, k in zip(customers, keys, strict=True)
        )
    )


def test_doctor_names_the_coql_scope_closures_need(sandbox_factory, zconnect):
    for scope, ok in ((True, True), (False, False)):
        connector = zconnect(sandbox_factory("zoho", customers=1, coql_scope=scope))
        [line] = [c for c in connector.check() if c.name == LOOKUP]
        assert (line.ok, line.severity) == (ok, "error")
        assert ("ZohoCRM.coql.READ" in line.fix) is not ok


@pytest.mark.parametrize("kinds", [("tasks",), ("task_closes",), ("tasks", "task_closes")])
def test_without_the_coql_scope_a_task_plan_fails_before_any_write(
    sandbox_factory, zconnect, kinds
):
    """Tasks are looked up too (Zoho has no upsert for Tasks): a grant without the scope
    writes neither tasks nor closures, and makes nothing else of the plan first."""
    zoho = sandbox_factory("zoho", customers=2, coql_scope=False)
    connector = zconnect(zoho)
    ids = zoho.customer_ids()
    parts = {
        "tasks": (_made(ids[0], "k-made"),),
        "task_closes": _closes(ids, ["k-0", "k-1"]).task_closes,
    }
    with pytest.raises(ConfigError):
        connector.apply(WritePlan(**{k: parts[k] for k in kinds}))
    assert zoho.write_calls() == 0 and zoho.tasks() == []
