"""Zoho task closures: keys looked up by COQL (50 a query), open Tasks updated by record
id (a write batch a call), nothing written for a key the CRM does not hold or a Task
already Completed; the look-up's scope ``ZohoCRM.coql.READ`` checked by ``doctor``, and a
grant without it refusing a closure plan before any write."""

from __future__ import annotations

import math
from datetime import date

import pytest

from connectors.contract import TaskClose, TaskUpsert, WritePlan
from connectors.errors import ConfigError
from tiering_core.models import TaskAction

LOOKUP = "tasks: closure look-up"


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


@pytest.mark.parametrize(
    ("open_", "completed", "absent"),
    [(1, 1, 1), (0, 0, 3), (60, 0, 45), (101, 2, 0)],
    ids=["one-each", "all-absent", "three-queries", "two-updates"],
)
def test_a_closure_costs_its_look_ups_and_updates_of_open_tasks_only(
    sandbox_factory, zconnect, open_, completed, absent
):
    zoho = sandbox_factory("zoho", customers=open_ + completed + absent)
    connector = zconnect(zoho)
    ids = zoho.customer_ids()
    keys = [f"upgrade_call:{i}:2027Q1" for i in ids]
    made = open_ + completed
    if made:
        assert all(
            r.ok for r in connector.apply(WritePlan(tasks=tuple(map(_made, ids, keys))[:made]))
        )
    if completed:
        done = _closes(ids[open_:made], keys[open_:made])
        assert all(r.ok for r in connector.apply(done))
    before = zoho.server.calls.counts()
    results = connector.apply(_closes(ids, keys))
    assert [(r.kind, r.key, r.ok) for r in results] == [("task_close", k, True) for k in keys]
    calls = {k: n - before.get(k, 0) for k, n in zoho.server.calls.counts().items()}
    # besides the token and, once a connector, the Tasks field metadata (the key field's check)
    assert {k: n for k, n in calls.items() if n and k not in ("token", "fields")} == {
        "coql": math.ceil(len(keys) / 50),
        **({"update": math.ceil(open_ / 100)} if open_ else {}),
    }
    assert sorted(t.external_id for t in zoho.tasks()) == sorted(keys[:made])
    assert not any(t.open for t in zoho.tasks())


def test_doctor_names_the_coql_scope_closures_need(sandbox_factory, zconnect):
    for scope, ok in ((True, True), (False, False)):
        connector = zconnect(sandbox_factory("zoho", customers=1, coql_scope=scope))
        [line] = [c for c in connector.check() if c.name == LOOKUP]
        assert (line.ok, line.severity) == (ok, "error")
        assert ("ZohoCRM.coql.READ" in line.fix) is not ok


def test_without_the_coql_scope_a_closure_plan_fails_before_any_write(sandbox_factory, zconnect):
    zoho = sandbox_factory("zoho", customers=2, coql_scope=False)
    connector = zconnect(zoho)
    ids = zoho.customer_ids()
    plan = WritePlan(
        tasks=(_made(ids[0], "k-made"),), task_closes=_closes(ids, ["k-0", "k-1"]).task_closes
    )
    with pytest.raises(ConfigError):
        connector.apply(plan)
    assert zoho.write_calls() == 0 and zoho.tasks() == []
