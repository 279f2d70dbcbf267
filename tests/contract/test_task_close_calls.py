"""What a task closure costs in each CRM's sandbox, by call kind: its keys looked up in
batches of the CRM's look-up size, then one write per batch of tasks still open; nothing
written for a key the CRM does not hold or a task already closed, never an upsert (which
would create the absent ones). Zoho looks the absent keys up once more after its writes
(connectors/zoho/closures.py: an insert under way when the first look-up ran), and FXiaoke
asks once more for the keys with no live record whether they were withdrawn (invalidated)
or are absent, so only keys the CRM does not hold (FXiaoke: hold live) cost more; a key
the CRM does not hold answers ``absent``. docs/operations.md, "Task closures: what they
cost"."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import pytest

from connectors.contract import TaskClose, TaskUpsert, WritePlan
from connectors.registry import kinds
from tiering_core.models import TaskAction


@dataclass(frozen=True)
class Costs:
    """The sandbox's call kind of a look-up and of a closing write, and keys (tasks) each
    one takes."""

    lookup: str
    keys_per_lookup: int
    write: str
    tasks_per_write: int
    #: absent keys looked up again after the writes, in batches of ``keys_per_lookup``
    recheck_absent: bool = False
    #: keys with no live record (withdrawn or absent) asked again, as for ``recheck_absent``
    recheck_not_live: bool = False


COSTS = {
    "salesforce": Costs("query", 200, "collections_update", 200),
    "zoho": Costs("coql", 50, "update", 100, recheck_absent=True),
    "fxiaoke": Costs("custom_query", 50, "custom_invalid", 1, recheck_not_live=True),
}
#: Calls that are no closure's own: a token, and Zoho's Tasks field metadata (read once a
#: connector, for the key field's check).
OVERHEAD = {"token", "oauth_token", "oauth2_token", "fields"}
#: (open, completed, absent) tasks among the closed keys, per CRM: each crosses the CRM's
#: batch sizes (FXiaoke, at 100 calls per 20 s, is kept small).
CASES = {
    "salesforce": [(1, 1, 1), (0, 0, 3), (150, 10, 41), (201, 0, 0)],
    "zoho": [(1, 1, 1), (0, 0, 3), (60, 0, 45), (101, 2, 0)],
    "fxiaoke": [(1, 1, 1), (0, 0, 3), (3, 1, 48)],
}
PARAMS = [
    pytest.param(crm, *case, id=f"{crm}-{'-'.join(map(str, case))}")
    for crm, cases in CASES.items()
    if crm in kinds()
    for case in cases
]


def _made(customer: str, key: str) -> TaskUpsert:
    action = TaskAction(
        rule="upgrade_call", subject="Call", priority="normal", due=date(2027, 2, 1), dedupe_key=key
    )
    return TaskUpsert(customer, action)


@pytest.mark.parametrize(("crm", "open_", "completed", "absent"), PARAMS)
def test_a_closure_costs_its_look_ups_and_one_write_per_batch_of_open_tasks(
    sandbox_factory, connect, crm, open_, completed, absent
):
    cost = COSTS[crm]
    sandbox = sandbox_factory(crm, customers=open_ + completed + absent)
    connector = connect(sandbox)
    ids = sorted(r.profile.id for page in connector.read_changed(None) for r in page.records)
    keys = [f"upgrade_call:{i}:2027Q1" for i in ids]
    made = open_ + completed
    closes = tuple(TaskClose(i, k, "upgrade_call") for i, k in zip(ids, keys, strict=True))
    if made:
        tasks = tuple(map(_made, ids[:made], keys[:made]))
        assert all(r.ok for r in connector.apply(WritePlan(tasks=tasks)))
    if completed:
        assert all(r.ok for r in connector.apply(WritePlan(task_closes=closes[open_:made])))
    before = sandbox.server.calls.counts()
    results = connector.apply(WritePlan(task_closes=closes))
    assert [(r.kind, r.key, r.ok, r.absent) for r in results] == [
        ("task_close", k, True, n >= made) for n, k in enumerate(keys)
    ]
    after = sandbox.server.calls.counts()
    calls = {k: n - before.get(k, 0) for k, n in after.items() if k not in OVERHEAD}
    asked_again = absent if cost.recheck_absent else completed + absent
    rechecks = (
        math.ceil(asked_again / cost.keys_per_lookup)
        if cost.recheck_absent or cost.recheck_not_live
        else 0
    )
    assert {k: n for k, n in calls.items() if n} == {
        cost.lookup: math.ceil(len(keys) / cost.keys_per_lookup) + rechecks,
        **({cost.write: math.ceil(open_ / cost.tasks_per_write)} if open_ else {}),
    }
    listed = sandbox.tasks()  # FXiaoke lists an invalidated follow-up no more
    assert {t.external_id for t in listed} <= set(keys[:made])
    assert not any(t.open for t in listed)
