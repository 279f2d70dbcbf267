"""Zoho writes: a ``WritePlan`` in, one ``WriteResult`` per item out, for ``ZohoConnector``.

Field updates go in batches of ``write_batch`` (≤ 100) with ``"trigger": []`` by default, so
crmtier's own writes fire none of the customer's workflows. Tasks are found by their dedupe
key (crmtier's key field on Tasks) with one COQL look-up per 50 keys, shared by the plan's
tasks and closures, before any write: a task the CRM does not hold is inserted, one it holds
is left exactly as it is (no write), and one to close is closed by record id
(``closures.py``, which also says which Status values are closed). Zoho has no upsert for
Tasks ("Insert or Update Records (Upsert)" lists no activity module), and the look-up first
is what keeps a task single when its insert was stored but the answer lost: the re-sent plan
finds it and leaves it. Campaign membership goes
through the Contacts/Leads ``Campaigns`` related list (relation updates and delinks are
idempotent). Every value is checked against the field metadata before the first write call,
so a plan that cannot be written fails whole, with the field named, before any change;
but a text longer than its field (``TextTooLong``: how long depends on the customer) fails
that customer's update only, ``TEXT_TOO_LONG``, not retried (the same text would fail
again), so the sync dead-letters it with its reason while the rest of the plan is written.
A refused row reads as ``refusal_text`` (code, field, module, next step): Zoho's own
message is never copied, since it can quote the record's values.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from connectors.contract import (
    MembershipChange,
    OwnerChange,
    TaskClose,
    WriteKind,
    WritePlan,
    WriteResult,
)
from connectors.errors import ConfigError, refusal_text
from connectors.task_text import report_cuts
from connectors.zoho.client_values import RowResult
from connectors.zoho.closures import close_tasks, require_closed_statuses
from connectors.zoho.errors import RECORD_ADVICE, record_retryable
from connectors.zoho.mapping import TASK_TEXT_LIMITS, TextTooLong, task_row, zoho_value
from connectors.zoho.task_keys import QUOTABLE, TASK_MODULE, HeldTask, look_up, task_key_field

if TYPE_CHECKING:
    from connectors.zoho.connector import ZohoConnector

#: The answer for a task the CRM holds under its key: written, with no call (``_write_tasks``).
_HELD = RowResult(True, "HELD")
_NOTHING_TO_CLOSE = RowResult(True, "NOT_FOUND")
CAMPAIGN_MODULE = "Campaigns"
#: The code of an update refused before the call for a text its field cannot hold.
TEXT_TOO_LONG = "TEXT_TOO_LONG"
MEMBER_MODULES = ("Contacts", "Leads")

log = logging.getLogger(__name__)


def apply(connector: ZohoConnector, plan: WritePlan) -> list[WriteResult]:
    updates = _update_rows(connector, plan)  # validates everything before any write call
    tasks = _task_rows(connector, plan)
    memberships = _membership_groups(connector, plan)
    # the closed statuses, checked against the org's picklist once a plan, before any write
    statuses = require_closed_statuses(connector) if plan.task_closes else ()
    held = _held_tasks(connector, plan)  # a read, before any write call
    results: list[WriteResult] = []
    trigger = list(connector.config.workflow_triggers)
    batch = connector.config.write_batch
    # more than "id", and not refused before the call (``TextTooLong``)
    writes = [i for i, (_, row, refused) in enumerate(updates) if len(row) > 1 and not refused]
    answers: dict[int, RowResult] = {}
    for start in range(0, len(writes), batch):
        chunk = writes[start : start + batch]
        rows = [updates[i][1] for i in chunk]
        answers.update(
            zip(chunk, connector.client.update(connector.module, rows, trigger), strict=True)
        )
    unchanged = RowResult(True, "NO_CHANGE")
    results += [
        _too_long(key, refused)
        if refused
        else _result("field_update", key, answers.get(i, unchanged), connector.module)
        for i, (key, _, refused) in enumerate(updates)
    ]
    results += _write_tasks(connector, tasks, held, trigger)
    results += _apply_memberships(connector, plan.memberships, memberships)
    results += _close_tasks(connector, plan.task_closes, held, statuses, trigger)
    return results


def change_owners(connector: ZohoConnector, changes: Sequence[OwnerChange]) -> list[WriteResult]:
    """The owner lookup (``Owner``, ``{"id": user id}``) set by Update Records in write
    batches, with the configured workflow triggers like every field update."""
    owner_field = connector.mapping.fields.get("owner_id", "Owner")
    trigger = list(connector.config.workflow_triggers)
    batch = connector.config.write_batch
    results: list[WriteResult] = []
    for start in range(0, len(changes), batch):
        chunk = changes[start : start + batch]
        rows = [{"id": c.customer_id, owner_field: {"id": c.owner_id}} for c in chunk]
        answers = connector.client.update(connector.module, rows, trigger)
        results += [
            _result("field_update", c.customer_id, a, connector.module)
            for c, a in zip(chunk, answers, strict=True)
        ]
    return results


def _write_tasks(
    connector: ZohoConnector,
    rows: Sequence[tuple[str, dict[str, Any]]],
    held: Mapping[str, HeldTask],
    trigger: Sequence[str],
) -> list[WriteResult]:
    """The plan's tasks: those the CRM does not hold by Insert Records (``POST
    /crm/v2/Tasks``), a write batch a call. A task the CRM holds under its key is left
    exactly as it is and answers ok with no write, as on Salesforce and FXiaoke
    (docs/operations.md, "Follow-up tasks: what they cost"): it is held only because an
    earlier send of it arrived (its key names the same customer, rule and period, so it
    is the task crmtier decided), and since then every field of it is the relationship
    manager's: the owner and related record, the Status (a completed Task is a record of
    work done), and Subject, Due_Date, Priority and Description too, which the RM
    reschedules and writes the call's notes in. A key twice in one plan is written once,
    as its last row. Cost: ceil(keys / 50) COQL queries (``_held_tasks``) plus
    ceil(absent / batch) inserts; a plan of held tasks writes nothing.

    An insert the key field refuses as ``DUPLICATE_DATA`` met a Task made under that key
    after the look-up (another process, a webhook worker or a scheduled sync, made the same
    task at once): those keys are looked up again, and one found is held like any other,
    so the task is made once and reads as written, not dead-lettered for a human; one not
    found keeps its refusal."""
    latest = dict(rows)
    absent = [k for k in latest if k not in held and QUOTABLE.fullmatch(k)]
    done: dict[str, RowResult] = {k: _HELD for k in latest if k in held}
    batch = connector.config.write_batch
    for start in range(0, len(absent), batch):
        chunk = absent[start : start + batch]
        rows_ = [latest[k] for k in chunk]
        done.update(zip(chunk, connector.client.insert(TASK_MODULE, rows_, trigger), strict=True))
    key_field = connector.config.task_key_field
    raced = [
        k for k in absent if done[k].code == "DUPLICATE_DATA" and done[k].api_name == key_field
    ]
    if raced:
        done.update((k, _HELD) for k in look_up(connector, key_field, raced))
    unquotable = RowResult(False, "INVALID_DATA", api_name=connector.config.task_key_field)
    return [_result("task", key, done.get(key, unquotable), TASK_MODULE) for key, _ in rows]


def _update_rows(
    connector: ZohoConnector, plan: WritePlan
) -> list[tuple[str, dict[str, Any], str | None]]:
    """Each field update as ``(customer id, row, refusal)``: the refusal is the line of a
    text its field cannot hold (``TextTooLong``), whose row is not sent; any other value
    the field cannot take is a ``ConfigError`` for the whole plan."""
    if not plan.field_updates:
        return []
    fields = connector.schema(connector.module)
    rows = []
    for update in plan.field_updates:
        row: dict[str, Any] = {"id": update.customer_id}
        refused: str | None = None
        for output, value in update.fields.items():
            api_name = connector.writeback.fields.get(output)
            if api_name is None:
                raise ConfigError(f"writeback.fields: no Zoho field mapped for {output!r}")
            info = fields.get(api_name)
            if info is None:
                raise ConfigError(
                    f"writeback.fields.{output}: Zoho {connector.module} has no field {api_name!r}"
                )
            try:
                row[api_name] = zoho_value(
                    output,
                    value,
                    info,
                    module=connector.module,
                    labels=connector.config.picklist_labels.get(output),
                )
            except TextTooLong as exc:
                refused = refused or str(exc)
        rows.append((update.customer_id, row, refused))
    return rows


def _held_tasks(connector: ZohoConnector, plan: WritePlan) -> dict[str, HeldTask]:
    """The Tasks, by key, that the plan's tasks and closures name: COQL (``POST
    /crm/v2/coql``, "Get Records through COQL Query"), ``KEYS_PER_QUERY`` keys a query, one
    look-up for both. The key field is unique, so a query answers at most one row a key,
    within a page. Neither is an upsert: Zoho has none for Tasks, and "If no matching
    record is found, a new record is inserted" (Zoho CRM "Insert or Update Records
    (Upsert)") would make a closure create the task it closes."""
    wanted = {t.task.dedupe_key for t in plan.tasks} | {c.dedupe_key for c in plan.task_closes}
    if not wanted:
        return {}
    keys = sorted(k for k in wanted if QUOTABLE.fullmatch(k))
    return look_up(connector, task_key_field(connector), keys)


def _close_tasks(
    connector: ZohoConnector,
    closes: Sequence[TaskClose],
    held: Mapping[str, HeldTask],
    statuses: tuple[str, ...],
    trigger: Sequence[str],
) -> list[WriteResult]:
    """The plan's closures (``closures.close_tasks``), one result each: a key the CRM does
    not hold (``absent``, at the re-check too), or whose Task is already closed, answers
    ok with no write call."""
    done, absent = close_tasks(connector, closes, held, statuses, trigger)
    unquotable = RowResult(False, "INVALID_DATA", api_name=connector.config.task_key_field)
    return [
        replace(
            _result(
                "task_close",
                c.dedupe_key,
                done.get(c.dedupe_key, _NOTHING_TO_CLOSE)
                if QUOTABLE.fullmatch(c.dedupe_key)
                else unquotable,
                TASK_MODULE,
            ),
            absent=c.dedupe_key in absent,
        )
        for c in closes
    ]


def _task_rows(connector: ZohoConnector, plan: WritePlan) -> list[tuple[str, dict[str, Any]]]:
    if not plan.tasks:
        return []
    key_field = task_key_field(connector)
    report_cuts(log, plan.tasks, TASK_TEXT_LIMITS)
    rows = []
    for upsert in plan.tasks:
        task = upsert.task
        owner = task.owner_id or (
            connector.writeback.queues.get(task.queue) if task.queue else None
        )
        rows.append(
            (
                task.dedupe_key,
                task_row(upsert, module=connector.module, key_field=key_field, owner_id=owner),
            )
        )
    return rows


def _membership_groups(
    connector: ZohoConnector, plan: WritePlan
) -> dict[tuple[str, bool], list[str]]:
    groups: dict[tuple[str, bool], list[str]] = {}
    if not plan.memberships:
        return groups
    if connector.module not in MEMBER_MODULES:
        raise ConfigError(
            f"mapping.object: Zoho relates only Contacts and Leads to Campaigns, not "
            f"{connector.module}; set writeback.campaign_memberships = false"
        )
    for change in plan.memberships:
        campaign_id = connector.writeback.campaigns.get(change.campaign)
        if campaign_id is None:
            raise ConfigError(f"writeback.campaigns: no Zoho campaign id for {change.campaign!r}")
        group = groups.setdefault((change.customer_id, change.member), [])
        if campaign_id not in group:
            group.append(campaign_id)
    return groups


def _apply_memberships(
    connector: ZohoConnector,
    changes: Sequence[MembershipChange],
    groups: Mapping[tuple[str, bool], list[str]],
) -> list[WriteResult]:
    outcome: dict[tuple[str, bool, str], RowResult] = {}
    for (customer, member), campaign_ids in groups.items():
        for start in range(0, len(campaign_ids), 100):
            chunk = campaign_ids[start : start + 100]
            answers = (
                connector.client.relate(
                    connector.module, customer, chunk, connector.config.member_status
                )
                if member
                else connector.client.delink(connector.module, customer, chunk)
            )
            for campaign_id, answer in zip(chunk, answers, strict=True):
                outcome[(customer, member, campaign_id)] = answer
    return [
        _result(
            "membership",
            change.dedupe_key,
            outcome[
                (change.customer_id, change.member, connector.writeback.campaigns[change.campaign])
            ],
            "Campaigns",
        )
        for change in changes
    ]


def _too_long(customer_id: str, refusal: str) -> WriteResult:
    """A customer's update refused before the call: a text its field cannot hold. Not
    retryable: the same decision makes the same text."""
    return WriteResult(
        "field_update", customer_id, False, error_code=TEXT_TOO_LONG, message=refusal
    )


def _result(kind: WriteKind, key: str, outcome: RowResult, module: str) -> WriteResult:
    if outcome.ok:
        return WriteResult(kind, key, True)
    return WriteResult(
        kind,
        key,
        False,
        error_code=outcome.code,
        message=refusal_text(
            "Zoho",
            outcome.code,
            field=outcome.api_name,
            obj=module,
            advice=RECORD_ADVICE.get(outcome.code),
        ),
        retryable=record_retryable(outcome.code),
    )
