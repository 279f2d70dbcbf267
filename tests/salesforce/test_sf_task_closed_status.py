"""A task closure leaves a Task the org already counts as closed alone, whatever closed Status
it is in: an org may add closed Task statuses of its own ("Multiple task status values can
represent a closed task", TaskStatus.IsClosed, Salesforce Object Reference "TaskStatus"), and
a relationship manager's choice of one must not be overwritten with Completed. Open is what
the Task's ``IsClosed`` says, as the sandbox derives it from the Status."""

from __future__ import annotations

import pytest
from sf_helpers import task

from connectors.contract import TaskClose, WritePlan

#: The org's own Status values for this test: one closed, one open.
CUSTOM = {"Declined by client": True, "Awaiting documents": False}

#: (Status the RM left the Task in, Status after the closure, collection updates it costs)
CASES = [
    pytest.param("Declined by client", "Declined by client", 0, id="custom-closed-kept"),
    pytest.param("Completed", "Completed", 0, id="completed-kept"),
    pytest.param("Awaiting documents", "Completed", 1, id="custom-open-closed"),
    pytest.param("Deferred", "Completed", 1, id="standard-open-closed"),
    pytest.param(None, "Completed", 1, id="untouched-closed"),
]


@pytest.fixture
def sandbox(sandbox_factory):
    sandbox = sandbox_factory("salesforce", customers=1)
    for label, closed in CUSTOM.items():
        sandbox.org.add_task_status(label, closed=closed)
    return sandbox


def _status(sandbox, key: str) -> str:
    rid = sandbox.org.index.ext()["Task"][key]
    return str(sandbox.org.get("Task", rid)["Status"])


@pytest.mark.parametrize(("left_in", "after", "updates"), CASES)
def test_a_closure_keeps_a_status_the_org_counts_as_closed(
    sandbox, connect, left_in, after, updates
):
    connector = connect(sandbox)
    customer, key = sandbox.customer_id(0), "rm_call:closed-status"
    assert all(r.ok for r in connector.apply(WritePlan(tasks=(task(customer, key),))))
    if left_in is not None:
        sandbox.set_task_status(key, left_in)
    before = sandbox.server.calls.count("collections_update")

    results = connector.apply(WritePlan(task_closes=(TaskClose(customer, key, "rm_call"),)))

    assert [(r.kind, r.key, r.ok) for r in results] == [("task_close", key, True)]
    assert _status(sandbox, key) == after
    assert sandbox.server.calls.count("collections_update") - before == updates
    assert [t.open for t in sandbox.tasks()] == [False]


@pytest.mark.parametrize(("status", "closed"), [*CUSTOM.items(), ("Completed", True)])
def test_the_sandbox_task_is_closed_as_its_status_is(sandbox, connect, status, closed):
    """The API reads ``IsClosed`` from the Status's TaskStatus row; a client cannot set it."""
    connector = connect(sandbox)
    key = "rm_call:is-closed"
    assert all(r.ok for r in connector.apply(WritePlan(tasks=(task(sandbox.customer_id(0), key),))))
    sandbox.set_task_status(key, status)
    rows = connector.client.query_all(
        f"SELECT Id, IsClosed FROM Task WHERE Crmtier_Key__c = '{key}'"
    )
    assert [r["IsClosed"] for r in rows] == [closed]
    (saved,) = sandbox.org.update(
        [{"attributes": {"type": "Task"}, "id": rows[0]["Id"], "IsClosed": not closed}], True
    )
    assert not saved.success
