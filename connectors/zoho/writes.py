"""Zoho writes: a ``WritePlan`` in, one ``WriteResult`` per item out, for ``ZohoConnector``.

Field updates go in batches of ``write_batch`` (≤ 100) with ``"trigger": []`` by default, so
crmtier's own writes fire none of the customer's workflows; tasks are upserted by their
dedupe key (a unique Tasks field), so reruns never duplicate them; campaign membership goes
through the Contacts/Leads ``Campaigns`` related list (relation updates and delinks are
idempotent). Every value is checked against the field metadata before the first write call,
so a plan that cannot be written fails whole, with the field named, before any change.
A refused row reads as ``refusal_text`` (code, field, module, next step): Zoho's own
message is never copied, since it can quote the record's values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from connectors.contract import (
    MembershipChange,
    OwnerChange,
    WriteKind,
    WritePlan,
    WriteResult,
)
from connectors.errors import ConfigError, refusal_text
from connectors.zoho.client_values import RowResult
from connectors.zoho.errors import RECORD_ADVICE, record_retryable
from connectors.zoho.mapping import close_row, task_row, zoho_value

if TYPE_CHECKING:
    from connectors.zoho.connector import ZohoConnector

TASK_MODULE = "Tasks"
CAMPAIGN_MODULE = "Campaigns"
MEMBER_MODULES = ("Contacts", "Leads")


def apply(connector: ZohoConnector, plan: WritePlan) -> list[WriteResult]:
    updates = _update_rows(connector, plan)  # validates everything before any write call
    tasks = _task_rows(connector, plan)
    memberships = _membership_groups(connector, plan)
    closes = _close_rows(connector, plan)
    results: list[WriteResult] = []
    trigger = list(connector.config.workflow_triggers)
    batch = connector.config.write_batch
    writes = [i for i, (_, row) in enumerate(updates) if len(row) > 1]  # more than "id"
    answers: dict[int, RowResult] = {}
    for start in range(0, len(writes), batch):
        chunk = writes[start : start + batch]
        rows = [updates[i][1] for i in chunk]
        answers.update(
            zip(chunk, connector.client.update(connector.module, rows, trigger), strict=True)
        )
    unchanged = RowResult(True, "NO_CHANGE")
    results += [
        _result("field_update", key, answers.get(i, unchanged), connector.module)
        for i, (key, _) in enumerate(updates)
    ]
    results += _upsert_tasks(connector, "task", tasks, trigger)
    results += _apply_memberships(connector, plan.memberships, memberships)
    results += _upsert_tasks(connector, "task_close", closes, trigger)
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


def _upsert_tasks(
    connector: ZohoConnector,
    kind: Literal["task", "task_close"],
    rows: Sequence[tuple[str, dict[str, Any]]],
    trigger: Sequence[str],
) -> list[WriteResult]:
    """Tasks rows upserted by crmtier's key field, up to a write batch per call."""
    results: list[WriteResult] = []
    batch = connector.config.write_batch
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        outcomes = connector.client.upsert(
            TASK_MODULE, [row for _, row in chunk], [connector.config.task_key_field], trigger
        )
        results += [
            _result(kind, key, o, TASK_MODULE) for (key, _), o in zip(chunk, outcomes, strict=True)
        ]
    return results


def _update_rows(connector: ZohoConnector, plan: WritePlan) -> list[tuple[str, dict[str, Any]]]:
    if not plan.field_updates:
        return []
    fields = connector.schema(connector.module)
    rows = []
    for update in plan.field_updates:
        row: dict[str, Any] = {"id": update.customer_id}
        for output, value in update.fields.items():
            api_name = connector.writeback.fields.get(output)
            if api_name is None:
                raise ConfigError(f"writeback.fields: no Zoho field mapped for {output!r}")
            info = fields.get(api_name)
            if info is None:
                raise ConfigError(
                    f"writeback.fields.{output}: Zoho {connector.module} has no field {api_name!r}"
                )
            row[api_name] = zoho_value(
                output,
                value,
                info,
                module=connector.module,
                labels=connector.config.picklist_labels.get(output),
            )
        rows.append((update.customer_id, row))
    return rows


def _task_key_field(connector: ZohoConnector) -> str:
    key_field = connector.config.task_key_field
    if key_field not in connector.schema(TASK_MODULE):
        raise ConfigError(
            f"crm.task_key_field: Zoho Tasks has no field {key_field!r}; create a unique "
            "single-line field for crmtier's task keys (see crmtier doctor)"
        )
    return key_field


def _close_rows(connector: ZohoConnector, plan: WritePlan) -> list[tuple[str, dict[str, Any]]]:
    if not plan.task_closes:
        return []
    key_field = _task_key_field(connector)
    return [(c.dedupe_key, close_row(c, key_field=key_field)) for c in plan.task_closes]


def _task_rows(connector: ZohoConnector, plan: WritePlan) -> list[tuple[str, dict[str, Any]]]:
    if not plan.tasks:
        return []
    key_field = _task_key_field(connector)
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
