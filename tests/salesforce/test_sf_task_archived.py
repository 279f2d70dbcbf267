"""Task look-ups see what the SOQL ``query`` resource leaves out: Tasks a relationship manager
deleted (the Recycle Bin) and Tasks Salesforce archived. "Unlike the Query resource, QueryAll
returns records that are soft deleted due to a merge or delete ... QueryAll also returns
information about archived task and event records" ("QueryAll", REST API Developer Guide);
closed Tasks a year past due are archived, and "You cannot use query() as it automatically
filters out all records where isArchived is set to true. You can update or delete archived
records" ("Archived Activities", SOAP API Developer Guide). A key one of them holds is held:
a task sent again is not made again nor upserted over it, and a closure writes nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sf_helpers import FAST_RETRY, task

from connectors.contract import TaskClose, TaskUpsert, WritePlan
from connectors.errors import TransientError
from connectors.salesforce.task_writes import task_record
from connectors.sandbox.salesforce_schema import EXTERNAL_KEY_FIELD
from connectors.sandbox.salesforce_wire import make_id

FIRST, RM = make_id("User", 786), make_id("User", 787)
#: a day the org's archival process archives a Task completed and due on ``task()``'s date
A_YEAR_ON = timedelta(days=365)


@pytest.fixture
def sandbox(sandbox_factory):
    sandbox = sandbox_factory("salesforce", customers=2)
    sandbox.add_users([FIRST, RM])
    return sandbox


def _again(upsert: TaskUpsert) -> TaskUpsert:
    return replace(upsert, resend=True)


def _writes(sandbox) -> dict[str, int]:
    kinds = ("collections_upsert", "collections_update", "collections_create")
    return {k: sandbox.server.calls.count(k) for k in kinds}


def _unanswered(connector, sandbox, made: TaskUpsert) -> None:
    """The task is made in the org and its answer lost: the plan's next run sends it again."""
    sandbox.lose_responses("collections_upsert", times=FAST_RETRY["max_attempts"])
    with pytest.raises(TransientError):
        connector.apply(WritePlan(tasks=(made,)))


def test_a_task_sent_again_long_after_salesforce_archived_it_is_not_upserted_over(sandbox, connect):
    """A very late resend of a Task the RM completed and Salesforce archived: ``query``
    does not return it, and the upsert would match its key and write crmtier's subject,
    owner and related record over the closed activity."""
    connector = connect(sandbox, **FAST_RETRY)
    made = task(sandbox.customer_id(0), "rm_call:archived", owner_id=FIRST)
    _unanswered(connector, sandbox, made)
    key = made.task.dedupe_key
    sandbox.edit_task(key, Status="Completed", Subject="Called: moved to a competitor")
    sandbox.edit_task(key, OwnerId=RM, WhatId=sandbox.customer_id(1))
    assert sandbox.org.archive_activities(made.task.due + A_YEAR_ON) == 1
    before = sandbox.tasks()
    sandbox.server.calls.reset()

    (again,) = connector.apply(WritePlan(tasks=(_again(made),)))

    assert (again.ok, again.error_code) == (True, None)
    assert sandbox.tasks() == before
    (held,) = before
    assert (held.subject, held.owner, held.open) == ("Called: moved to a competitor", RM, False)
    assert sandbox.server.calls.count("query") == 1
    assert _writes(sandbox) == dict.fromkeys(_writes(sandbox), 0)


def test_a_task_landing_late_and_deleted_after_the_look_up_is_still_held(sandbox, connect):
    """The look-up cannot see what is not there yet: the unanswered making lands after it and
    the RM deletes that Task before the resend's upsert arrives. The upsert does not match
    the Recycle Bin's Task and is refused ``DUPLICATE_VALUE`` on the Unique key, which for a
    task sent again is the same answer, held (``task_writes._key_taken``)."""
    connector = connect(sandbox)
    made = task(sandbox.customer_id(0), "rm_call:landed-late", owner_id=FIRST)
    key = made.task.dedupe_key

    def lands_then_deleted(_request) -> bool:  # as the resend's upsert arrives; no fault
        record = task_record(made, EXTERNAL_KEY_FIELD, {})
        assert sandbox.org.upsert("Task", EXTERNAL_KEY_FIELD, [record], True)[0].success
        sandbox.delete_task(key)
        return False

    sandbox.server.inject("collections_upsert", times=1, match=lands_then_deleted)
    (again,) = connector.apply(WritePlan(tasks=(_again(made),)))

    assert (again.ok, again.error_code) == (True, None)
    assert sandbox.tasks() == []


def test_a_closure_leaves_a_deleted_task_deleted_and_answers_it_found(sandbox, connect):
    """The RM deleted the Task: nothing to close, no write, and the key is not ``absent``
    (the task reached the org), so a making in doubt is settled rather than looked for
    again by every later closure."""
    connector = connect(sandbox)
    customer, key = sandbox.customer_id(0), "rm_call:deleted-then-closed"
    assert all(r.ok for r in connector.apply(WritePlan(tasks=(task(customer, key),))))
    sandbox.delete_task(key)
    sandbox.server.calls.reset()

    (closed,) = connector.apply(WritePlan(task_closes=(TaskClose(customer, key, "rm_call"),)))

    assert (closed.kind, closed.ok, closed.absent) == ("task_close", True, False)
    assert sandbox.tasks() == []
    assert _writes(sandbox) == dict.fromkeys(_writes(sandbox), 0)


def test_a_closure_of_an_archived_task_writes_nothing_and_finds_it(sandbox, connect):
    connector = connect(sandbox)
    made = task(sandbox.customer_id(0), "rm_call:archived-then-closed")
    key = made.task.dedupe_key
    assert all(r.ok for r in connector.apply(WritePlan(tasks=(made,))))
    sandbox.set_task_status(key, "Completed")
    sandbox.org.archive_activities(made.task.due + A_YEAR_ON)
    sandbox.server.calls.reset()

    closes = (TaskClose(made.customer_id, key, "rm_call"),)
    (closed,) = connector.apply(WritePlan(task_closes=closes))

    assert (closed.ok, closed.absent) == (True, False)
    assert _writes(sandbox) == dict.fromkeys(_writes(sandbox), 0)
