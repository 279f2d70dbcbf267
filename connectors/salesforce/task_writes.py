"""Salesforce follow-up Tasks: made, made again, closed, each keyed by crmtier's external id.

A task sent for the first time is upserted by its key field (``PATCH
composite/sobjects/Task/{key field}``, "Upsert Records Using sObject Collections"): one call
for 200 tasks, and a rerun that meets the task finds it instead of making a second one.

A task sent again (``TaskUpsert.resend``: an earlier call of it may have reached the org
unanswered, so the org may hold it and a relationship manager may have worked it since) is
never upserted: "If the external ID matches one existing record, then the existing record is
updated according to the request body" ("Upsert Records Using sObject Rows by External ID",
REST API Developer Guide), and the body carries ``OwnerId`` and ``WhatId``, so a
reassignment would be undone. Its key is looked up first (one SOQL query per 200 keys,
``task_rows``); a task the org does not hold goes out in the upsert with the first sends (it
creates it). One the org holds is left exactly as it is and answered as written, with no
call: finding it is the answer the lost call did not give, and its key names the same
customer, rule and period, so it is the task crmtier decided. Every field of it is the
relationship manager's since: the owner and related record, the Status (a completed Task is
a record of work done and is not reopened), and Subject, ActivityDate, Priority and
Description too: the RM reschedules it, and Description is where the RM notes the call
(the Task's free text). Writing crmtier's text back over them would erase the RM's notes
and rewrite a closed activity's record.

"Holds" counts two Tasks the SOQL ``query`` resource does not return, so the look-up asks
the ``queryAll`` resource: "Unlike the Query resource, QueryAll returns records that are soft
deleted due to a merge or delete ... QueryAll also returns information about archived task
and event records" ("QueryAll", REST API Developer Guide, developer.salesforce.com/docs/
platform/api-rest/guide/resources-queryall.html). One the RM deleted (in the Recycle Bin,
``IsDeleted``: "Indicates whether the record has been moved to the Recycle Bin", Object
Reference, "System Fields") is held as the RM left it, deleted: not made again. One
Salesforce archived ("Tasks with an IsClosed value of true and an ActivityDate value greater
than or equal to 365 days old"; "You cannot use query() as it automatically filters out all
records where isArchived is set to true. You can update or delete archived records": SOAP API
Developer Guide, "Archived Activities", developer.salesforce.com/docs/atlas.en-us.api.meta/
api/sforce_api_guidelines_archive.htm) is closed work: a very late resend unseen by
``query`` would be upserted over it, the upsert matching its key as any record's. A Task
the look-up could not see (its making landed after it) and the RM deleted before the upsert
still holds its Unique key: the upsert is refused
``DUPLICATE_VALUE`` on the key, which for a task sent again is the same answer, held
(``_key_taken``); a first send refused so stays refused. The Recycle Bin keeps a deleted
record 15 days, less when it is full ("Recycle Bin", Salesforce CRM - The Definitive Admin
Handbook; no Salesforce page read says): a task sent again after that is made again, the
org no longer knowing the key.

Closing looks the keys up the same way and sets only the Status (``close_tasks``): a
deleted Task is left deleted, an archived one is closed already.

A Task's Subject holds 255 characters and its Description 32,000 (Object Reference,
"Task"): longer text is cut to fit, so the task still reaches its owner rather than being
refused whole (STRING_TOO_LONG), and never silently: each batch that cut logs one warning
a field, with how many tasks and which rules (``TASK_TEXT_LIMITS``, ``connectors.task_text``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from connectors.contract import TaskClose, TaskUpsert, WriteResult
from connectors.salesforce.batches import chunks, result_of
from connectors.salesforce.client import SalesforceClient, select
from connectors.task_text import fitted, report_cuts

log = logging.getLogger(__name__)

_PRIORITY = {"high": "High", "normal": "Normal", "low": "Low"}
#: How much text each Task field crmtier writes text to holds (Object Reference, "Task").
TASK_TEXT_LIMITS = {"subject": ("Subject", 255), "description": ("Description", 32_000)}
#: The standard Task Status value that closes a task (see ``close_tasks``).
TASK_CLOSED = "Completed"


def task_record(upsert: TaskUpsert, key_field: str, queues: Mapping[str, str]) -> dict[str, Any]:
    """The Task as crmtier's rule makes it, its key in ``key_field``."""
    task = upsert.task
    record: dict[str, Any] = {
        "attributes": {"type": "Task"},
        key_field: task.dedupe_key,
        "Subject": fitted(task.subject, TASK_TEXT_LIMITS["subject"][1]),
        "ActivityDate": task.due.isoformat(),
        "Priority": _PRIORITY[task.priority],
        "WhatId": upsert.customer_id,
        "Description": fitted(task.description, TASK_TEXT_LIMITS["description"][1]),
    }
    # Status is left out on purpose: it defaults on create, and a rerun must not reopen
    # a task the relationship manager has completed.
    owner = task.owner_id or (queues.get(task.queue) if task.queue else None)
    if owner:
        record["OwnerId"] = owner
    return record


def write_tasks(
    client: SalesforceClient,
    key_field: str,
    tasks: Sequence[TaskUpsert],
    queues: Mapping[str, str],
) -> list[WriteResult]:
    """One result per task, in order. Cost: ceil(first sends and sent-again tasks the org
    does not hold / 200) upserts, plus ceil(keys sent again / 200) queries. A task sent
    again that the org holds costs no write (see the module docstring). A run without a
    lost answer sends no task again, and makes one call per 200 tasks."""
    records = [(t.task.dedupe_key, task_record(t, key_field, queues)) for t in tasks]
    report_cuts(log, tasks, TASK_TEXT_LIMITS)
    again = sorted({t.task.dedupe_key for t in tasks if t.resend})
    held = task_rows(client, key_field, again) if again else {}
    done = {i: WriteResult("task", key, True) for i, (key, _) in enumerate(records) if key in held}
    upserts = [i for i in range(len(records)) if i not in done]
    for chunk in chunks(upserts):
        saved = client.collection(
            "PATCH",
            f"composite/sobjects/Task/{key_field}",
            {"allOrNone": False, "records": [records[i][1] for i in chunk]},
        )
        for i, r in zip(chunk, saved, strict=True):
            key = records[i][0]
            held_deleted = tasks[i].resend and _key_taken(r, key_field)
            done[i] = (
                WriteResult("task", key, True)
                if held_deleted
                else result_of("task", key, r, "Task")
            )
    return [done[i] for i in range(len(records))]


def _key_taken(saved: Mapping[str, Any], key_field: str) -> bool:
    """Whether a save was refused ``DUPLICATE_VALUE`` on the task key: a Task the look-up
    did not see holds it, one a relationship manager deleted since (the Recycle Bin's,
    which a Unique field counts: "Duplicate value found when building unique index",
    Salesforce Help 000385434; an upsert does not match it). For a task sent again that is the task
    crmtier made, held as the RM left it: ok, as Zoho's ``DUPLICATE_DATA`` on its key is.
    Salesforce names the field in ``fields`` or, when that is empty, in the message
    ("duplicate value found: <field> duplicates value on record with id: <id>")."""
    errors = saved.get("errors") or [{}]
    code = errors[0].get("statusCode") or errors[0].get("errorCode")
    named = key_field in (errors[0].get("fields") or ()) or key_field in str(
        errors[0].get("message") or ""
    )
    return code == "DUPLICATE_VALUE" and named


def close_tasks(
    client: SalesforceClient, key_field: str, closes: Sequence[TaskClose]
) -> list[WriteResult]:
    """Set crmtier's open tasks to the standard closed Status ``Completed`` (the Task
    object's Status picklist: Not Started, In Progress, Completed, Waiting on someone
    else, Deferred; "Completed" is the value whose TaskStatus.IsClosed is true in a
    standard org: Salesforce Object Reference, "Task" and "TaskStatus").

    Only a Task the org holds is closed: its keys are looked up first (one ``queryAll``
    per 200, ``task_rows``), then the open ones are updated by record id (sObject
    Collections update, ``PATCH composite/sobjects``, 200 a call: "Update Records Using
    sObject Collections"). Never an upsert by external id: "If the external ID isn't
    matched, then a new record is created" ("Insert or Update (Upsert) a Record Using an
    External ID", REST API Developer Guide), and a closure of a task that never arrived,
    or that a relationship manager deleted, would make a bare completed Task. A key the
    org does not hold (answered ``absent``), or whose Task is already closed (an archived
    one is), or deleted (in the Recycle Bin: the task reached the org, and the RM took it
    away), has nothing to close: it answers ok with no write, as does a Task deleted
    between look-up and update (``ENTITY_IS_DELETED``). "Closed" is the Task's
    ``IsClosed``, not its Status being ``Completed``: an org may add closed statuses of
    its own ("Multiple task status values can represent a closed task",
    TaskStatus.IsClosed, Object Reference
    "TaskStatus", developer.salesforce.com/docs/atlas.en-us.object_reference.meta/
    object_reference/sforce_api_objects_taskstatus.htm; Task's ``IsClosed``, label
    "Closed", Salesforce Field Reference "Task"), and a task a relationship manager
    put in one of them keeps that Status rather than being reset to Completed.
    Nothing else changes: the subject, owner and notes stay as the relationship
    manager left them. Cost: ceil(keys / 200) queries plus ceil(open tasks / 200)
    updates.

    Every open Task under a key is closed, and the key answers ok only when each of them
    closed: the start-up gate requires the key field Unique, but one made non-unique
    later (or an org where Unique was off when Tasks were cloned) can hold two, and a
    closure is what takes a restricted customer's sales task away from its RM."""
    found = task_rows(client, key_field, sorted({c.dedupe_key for c in closes}))
    pending = [
        (k, row["Id"])
        for k, rows in found.items()
        for row in rows
        if not row["IsClosed"] and not row["IsDeleted"]
    ]
    done: dict[str, WriteResult] = {}
    for chunk in chunks(pending):
        records = [
            {"attributes": {"type": "Task"}, "id": rid, "Status": TASK_CLOSED} for _, rid in chunk
        ]
        saved = client.collection(
            "PATCH", "composite/sobjects", {"allOrNone": False, "records": records}
        )
        for (key, _), r in zip(chunk, saved, strict=True):
            result = result_of("task_close", key, r, "Task", ok_codes=("ENTITY_IS_DELETED",))
            if key not in done or done[key].ok:  # a Task of the key left open stands
                done[key] = result
    return [
        done.get(c.dedupe_key)
        or WriteResult("task_close", c.dedupe_key, True, absent=c.dedupe_key not in found)
        for c in closes
    ]


def task_rows(
    client: SalesforceClient, key_field: str, keys: Sequence[str]
) -> dict[str, list[Mapping[str, Any]]]:
    """The Tasks the org holds with these external keys (``Id``, key, ``IsClosed``,
    ``IsDeleted``), by key, 200 keys a ``queryAll`` (deleted and archived ones too: the
    module docstring): every one of them, as a key field that is not Unique can hold
    several. 200 of crmtier's 32-character keys make a query of about 7,100 characters,
    8,300 bytes URL-encoded: within SOQL's 100,000 characters ("SOQL and SOSL Limits")
    and the 16,384 bytes a REST request's URI and headers may take (Salesforce Help
    000386264, "Maximum number of rows returned by SOQL queries over the REST API")."""
    found: dict[str, list[Mapping[str, Any]]] = {}
    for chunk in chunks(keys):
        query = select(
            ["Id", key_field, "IsClosed", "IsDeleted"],
            "Task",
            f"WHERE {key_field} IN {{}}",
            list(chunk),
        )
        for row in client.query_all(query, include_deleted=True):
            found.setdefault(str(row[key_field]), []).append(row)
    return found
