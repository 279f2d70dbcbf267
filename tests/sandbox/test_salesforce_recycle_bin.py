"""The sandbox's ``query`` and ``queryAll`` resources, as the REST API Developer Guide's
"QueryAll" page has them: "Unlike the Query resource, QueryAll returns records that are soft
deleted due to a merge or delete ... QueryAll also returns information about archived task and
event records". A deleted Task waits in the Recycle Bin with ``IsDeleted`` true; the org's
archival ("Archived Activities", SOAP API Developer Guide) archives closed Tasks whose
ActivityDate, or when it is blank their creation, is 365 days old or more. Checked through
crmtier's own client over HTTPS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.contract import WritePlan
from connectors.sandbox.salesforce_schema import EXTERNAL_KEY_FIELD
from tests.salesforce.sf_helpers import task

KEYS = ("rm_call:live", "rm_call:deleted", "rm_call:archived", "rm_call:done-lately")
LOOK_UP = (
    f"SELECT {EXTERNAL_KEY_FIELD}, IsDeleted, IsArchived FROM Task ORDER BY {EXTERNAL_KEY_FIELD}"
)


@pytest.fixture
def sandbox(sandbox_factory):
    return sandbox_factory("salesforce", customers=1)


def _rows(connector, *, include_deleted: bool) -> list[tuple[str, bool, bool]]:
    rows = connector.client.query_all(LOOK_UP, include_deleted=include_deleted)
    return [(r[EXTERNAL_KEY_FIELD], r["IsDeleted"], r["IsArchived"]) for r in rows]


def test_query_leaves_out_deleted_and_archived_tasks_and_query_all_returns_them(sandbox, connect):
    connector = connect(sandbox)
    customer = sandbox.customer_id(0)
    made = [task(customer, key) for key in KEYS]
    assert all(r.ok for r in connector.apply(WritePlan(tasks=tuple(made))))
    sandbox.delete_task("rm_call:deleted")
    sandbox.set_task_status("rm_call:archived", "Completed")
    recently = made[0].task.due + timedelta(days=30)
    sandbox.reschedule_task("rm_call:done-lately", "Called", recently)
    sandbox.set_task_status("rm_call:done-lately", "Completed")
    a_year_on = made[0].task.due + timedelta(days=365)

    # the open Task and the one closed under a year ago stay as they are
    assert sandbox.org.archive_activities(a_year_on) == 1

    assert _rows(connector, include_deleted=False) == [
        ("rm_call:done-lately", False, False),
        ("rm_call:live", False, False),
    ]
    assert _rows(connector, include_deleted=True) == [
        ("rm_call:archived", False, True),
        ("rm_call:deleted", True, False),
        ("rm_call:done-lately", False, False),
        ("rm_call:live", False, False),
    ]
    by_key = f"SELECT Id FROM Task WHERE {EXTERNAL_KEY_FIELD} IN ('rm_call:deleted')"
    assert connector.client.query_all(by_key) == []
    (binned,) = connector.client.query_all(by_key, include_deleted=True)
    assert binned["Id"].startswith("00T")


def test_a_closed_task_without_a_due_date_is_archived_a_year_after_its_creation(sandbox, connect):
    connector = connect(sandbox)
    made = task(sandbox.customer_id(0), "rm_call:undated")
    assert all(r.ok for r in connector.apply(WritePlan(tasks=(made,))))
    sandbox.edit_task("rm_call:undated", ActivityDate=None, Status="Completed")
    today = datetime.now(UTC).date()
    assert sandbox.org.archive_activities(today + timedelta(days=364)) == 0
    assert sandbox.org.archive_activities(today + timedelta(days=365)) == 1
    assert _rows(connector, include_deleted=False) == []
    assert _rows(connector, include_deleted=True) == [("rm_call:undated", False, True)]


def test_an_archived_task_can_still_be_updated_and_an_upsert_by_its_key_matches_it(
    sandbox, connect
):
    """ "You can update or delete archived records" (same page): the sandbox's upsert by
    the key updates an archived Task as it does any other, which is why crmtier's look-up
    before a resend must see it."""
    connector = connect(sandbox)
    made = task(sandbox.customer_id(0), "rm_call:old")
    assert all(r.ok for r in connector.apply(WritePlan(tasks=(made,))))
    sandbox.set_task_status("rm_call:old", "Completed")
    sandbox.org.archive_activities(made.task.due + timedelta(days=400))
    again = task(sandbox.customer_id(0), "rm_call:old", subject="Overwritten")
    assert [r.ok for r in connector.apply(WritePlan(tasks=(again,)))] == [True]
    (archived,) = sandbox.tasks()
    assert archived.subject == "Overwritten"
    assert _rows(connector, include_deleted=True) == [("rm_call:old", False, True)]


def test_a_bulk_query_all_job_returns_the_recycle_bin_too(sandbox, connect):
    """Bulk API 2.0's ``queryAll`` operation, through simple-salesforce's ``query_all``."""
    connector = connect(sandbox)
    made = [task(sandbox.customer_id(0), key) for key in ("rm_call:kept", "rm_call:binned")]
    assert all(r.ok for r in connector.apply(WritePlan(tasks=tuple(made))))
    sandbox.delete_task("rm_call:binned")
    jobs = connector.client.auth.current().bulk2.Task
    soql = f"SELECT {EXTERNAL_KEY_FIELD}, IsDeleted FROM Task ORDER BY {EXTERNAL_KEY_FIELD}"

    def rows(chunks) -> list[str]:
        return [line for chunk in chunks for line in chunk.splitlines()[1:]]

    assert rows(jobs.query(soql, wait=0)) == ['"rm_call:kept","false"']
    assert rows(jobs.query_all(soql, wait=0)) == [
        '"rm_call:binned","true"',
        '"rm_call:kept","false"',
    ]
