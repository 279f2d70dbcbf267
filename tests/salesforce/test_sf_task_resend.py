"""A task sent again keeps what a relationship manager changed in the org.

A Task upsert that meets its external key updates the Task "according to the request body"
("Upsert Records Using sObject Rows by External ID", REST API Developer Guide), owner and
related record included. So a task whose call went unanswered, then reassigned by its RM,
would be handed back to crmtier's owner if it were simply upserted again. Sent again
(``TaskUpsert.resend``), its key is looked up, and a Task the org holds is left as the RM left
it: owner, related record, Status, subject, due date and comments. First sends stay one upsert
per 200 tasks, with no look-up."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sf_helpers import FAST_RETRY, task

from connectors.contract import TaskUpsert, WritePlan
from connectors.errors import TransientError
from connectors.sandbox.salesforce_wire import make_id

#: The owner crmtier gives the task, and the RM it is handed to in the CRM.
FIRST, RM = make_id("User", 776), make_id("User", 777)


@pytest.fixture
def sandbox(sandbox_factory):
    sandbox = sandbox_factory("salesforce", customers=3)
    sandbox.add_users([FIRST, RM])
    return sandbox


def _again(upsert: TaskUpsert, **task_fields) -> TaskUpsert:
    return replace(upsert, task=upsert.task.model_copy(update=task_fields), resend=True)


def _calls(sandbox) -> dict[str, int]:
    kinds = ("query", "collections_upsert", "collections_update", "collections_create")
    return {k: sandbox.server.calls.count(k) for k in kinds}


def test_a_task_sent_again_after_a_lost_answer_keeps_the_rms_reassignment(sandbox, connect):
    connector = connect(sandbox, **FAST_RETRY)
    customer, other = sandbox.customer_id(0), sandbox.customer_id(1)
    made = task(customer, "rm_call:resend", owner_id=FIRST)
    sandbox.lose_responses("collections_upsert", times=FAST_RETRY["max_attempts"])
    with pytest.raises(TransientError):
        connector.apply(WritePlan(tasks=(made,)))  # made in the org, never answered
    assert [t.owner for t in sandbox.tasks()] == [FIRST]
    sandbox.edit_task("rm_call:resend", OwnerId=RM, WhatId=other)
    sandbox.server.calls.reset()

    assert [r.ok for r in connector.apply(WritePlan(tasks=(_again(made),)))] == [True]

    (held,) = sandbox.tasks()
    assert (held.external_id, held.owner, held.customer_id) == ("rm_call:resend", RM, other)
    assert held.open
    assert _calls(sandbox) == {
        "query": 1,
        "collections_upsert": 0,
        "collections_update": 0,
        "collections_create": 0,
    }


def test_a_task_sent_again_keeps_the_rms_subject_due_date_and_comments(sandbox, connect):
    """Subject, ActivityDate, Priority and Description are the RM's once the Task is in the
    org: the RM reschedules it and writes the call's notes in Description.
    A task sent again, even one planned anew with other text, writes none of them back."""
    connector = connect(sandbox)
    made = task(sandbox.customer_id(0), "rm_call:worked")
    connector.apply(WritePlan(tasks=(made,)))
    later = made.task.due + timedelta(days=9)
    notes = "Called 3 Dec: wants the term deposit rates first"
    sandbox.edit_task(
        "rm_call:worked", Subject="Call back after the rates", ActivityDate=later.isoformat()
    )
    sandbox.edit_task("rm_call:worked", Description=notes, Priority="Low")
    sandbox.server.calls.reset()

    again = _again(made, subject="Call about the upgrade", description="crmtier's text")
    assert [r.ok for r in connector.apply(WritePlan(tasks=(again,)))] == [True]

    (held,) = sandbox.tasks()
    assert (held.subject, held.due) == ("Call back after the rates", later.isoformat())
    (row,) = connector.client.query_all("SELECT Description, Priority FROM Task")
    assert (row["Description"], row["Priority"]) == (notes, "Low")
    assert _calls(sandbox)["collections_update"] == 0


def test_a_task_sent_again_changes_nothing_in_one_the_rm_closed(sandbox, connect):
    """A completed Task is the record of work done: a task sent again neither reopens it
    nor rewrites its subject or date."""
    connector = connect(sandbox)
    made = task(sandbox.customer_id(0), "rm_call:closed")
    connector.apply(WritePlan(tasks=(made,)))
    sandbox.edit_task("rm_call:closed", Status="Completed", Subject="Called: not interested")
    before = sandbox.tasks()
    again = _again(made, subject="Call about the upgrade", due=made.task.due + timedelta(days=1))
    assert [r.ok for r in connector.apply(WritePlan(tasks=(again,)))] == [True]
    assert sandbox.tasks() == before
    assert [(t.open, t.subject) for t in before] == [(False, "Called: not interested")]


def test_one_look_up_for_a_batch_sent_again_and_one_upsert_with_the_first_sends(sandbox, connect):
    """A plan of first sends and tasks sent again: one query for the keys sent again;
    those the org lacks go out in the first sends' upsert, those it holds are not written."""
    connector = connect(sandbox)
    ids = [sandbox.customer_id(i) for i in range(3)]
    held = task(ids[0], "rm_call:held")
    connector.apply(WritePlan(tasks=(held,)))
    sandbox.edit_task("rm_call:held", OwnerId=RM)
    sandbox.server.calls.reset()
    plan = WritePlan(
        tasks=(
            task(ids[1], "rm_call:first"),
            _again(held),
            _again(task(ids[2], "rm_call:never-arrived")),
        )
    )
    assert [(r.key, r.ok) for r in connector.apply(plan)] == [
        ("rm_call:first", True),
        ("rm_call:held", True),
        ("rm_call:never-arrived", True),
    ]
    owners = {t.external_id: t.owner for t in sandbox.tasks()}
    assert sorted(owners) == ["rm_call:first", "rm_call:held", "rm_call:never-arrived"]
    assert owners["rm_call:held"] == RM
    assert _calls(sandbox) == {
        "query": 1,
        "collections_upsert": 1,
        "collections_update": 0,
        "collections_create": 0,
    }


def test_first_sends_are_one_upsert_per_200_without_a_look_up(sandbox, connect):
    connector = connect(sandbox)
    tasks = tuple(task(sandbox.customer_id(i % 3), f"rm_call:{i}") for i in range(201))
    assert all(r.ok for r in connector.apply(WritePlan(tasks=tasks)))
    assert _calls(sandbox) == {
        "query": 0,
        "collections_upsert": 2,
        "collections_update": 0,
        "collections_create": 0,
    }


def test_a_task_sent_again_that_the_rm_deleted_is_held_not_a_dead_letter(sandbox, connect):
    """A Task the RM deleted sits in the Recycle Bin, where the ``queryAll`` look-up sees it
    (``IsDeleted``): the task crmtier made, held (deleted) as the RM left it: ok, no upsert
    sent, nothing made. The ``query`` resource did not see it, and the upsert sent then was
    refused ``DUPLICATE_VALUE`` on the Unique key: a call for nothing, and in an org whose
    key lost Unique a Task made again. A first send is not looked up: refused so, it stays
    a refusal."""
    connector = connect(sandbox, **FAST_RETRY)
    made = task(sandbox.customer_id(0), "rm_call:binned", owner_id=FIRST)
    sandbox.lose_responses("collections_upsert", times=FAST_RETRY["max_attempts"])
    with pytest.raises(TransientError):
        connector.apply(WritePlan(tasks=(made,)))  # made in the org, never answered
    sandbox.delete_task("rm_call:binned")
    sandbox.server.calls.reset()

    (again,) = connector.apply(WritePlan(tasks=(_again(made),)))

    assert (again.ok, again.error_code) == (True, None)
    assert sandbox.tasks() == []
    assert _calls(sandbox) == {
        "query": 1,
        "collections_upsert": 0,
        "collections_update": 0,
        "collections_create": 0,
    }
    (first,) = connector.apply(WritePlan(tasks=(made,)))
    assert (first.ok, first.error_code) == (False, "DUPLICATE_VALUE")


def test_the_sandbox_upsert_updates_a_matched_task_as_its_body_says(sandbox, connect):
    """Why a task sent again is not upserted: on a key match Salesforce updates the record
    "according to the request body", ``OwnerId`` and ``WhatId`` too (REST API Developer
    Guide, "Upsert Records Using sObject Rows by External ID"); the sandbox does the same."""
    connector = connect(sandbox)
    made = task(sandbox.customer_id(0), "rm_call:overwritten", owner_id=FIRST)
    connector.apply(WritePlan(tasks=(made,)))
    sandbox.edit_task("rm_call:overwritten", OwnerId=RM, WhatId=sandbox.customer_id(1))
    connector.apply(WritePlan(tasks=(made,)))  # a first send: a plain upsert
    (overwritten,) = sandbox.tasks()
    assert (overwritten.owner, overwritten.customer_id) == (FIRST, sandbox.customer_id(0))
