"""Salesforce writes: one ``WritePlan`` in, one ``WriteResult`` per item out, in the fewest calls.

Field updates go in sObject Collections of ≤ 200 records, or one Bulk API 2.0 job for a plan
of more than ``bulk_threshold`` updates; Tasks are upserted by crmtier's external id (a
rerun finds the same Task); CampaignMembers carry a deterministic external id, so adds need
no look-up and removals one query. A refused record reads as ``errors.refusal`` (code,
field, object, next step), never as Salesforce's own message, which can quote its values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from connectors.contract import (
    FieldUpdate,
    MembershipChange,
    TaskClose,
    TaskUpsert,
    WritePlan,
    WriteResult,
)
from connectors.mapping import FieldMapping, WritebackConfig
from connectors.salesforce.bulkcsv import cell, csv_bodies
from connectors.salesforce.client import SalesforceClient, select
from connectors.salesforce.config import SalesforceSettings
from connectors.salesforce.errors import leading_code, record_retryable, refusal
from connectors.salesforce.mapping import encoder
from connectors.salesforce.person_contacts import PersonContacts

#: Records (or ids) per sObject Collections call, and ids per ``IN`` look-up.
BATCH = 200
_PRIORITY = {"high": "High", "normal": "Normal", "low": "Low"}
#: The standard Task Status value that closes a task (see ``_close_tasks``).
TASK_CLOSED = "Completed"
#: The Status a campaign membership is created with; doctor checks each campaign defines it
#: (``checks._member_status_check``).
MEMBER_STATUS = "Sent"


def chunks(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class PlanWriter:
    """Applies write plans for one connector: its client, settings, mapping and write-back
    configuration, and the Person Contact ids its reader has seen (for memberships)."""

    def __init__(
        self,
        client: SalesforceClient,
        settings: SalesforceSettings,
        mapping: FieldMapping,
        writeback: WritebackConfig,
        person_contacts: PersonContacts,
    ) -> None:
        self.client = client
        self.settings = settings
        self.mapping = mapping
        self.writeback = writeback
        self._person_contacts = person_contacts

    @property
    def writeback(self) -> WritebackConfig:
        return self._writeback

    @writeback.setter
    def writeback(self, value: WritebackConfig) -> None:
        """A new configuration brings its outputs' encoders with it: an output mapped
        later is encoded as its own type, never looked up among the old outputs."""
        self._writeback = value
        # each mapped output's write encoding, chosen once for this configuration
        self._encoders = {output: encoder(output) for output in value.fields}

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        results: list[WriteResult] = []
        if plan.field_updates:
            results += self._write_fields(plan.field_updates)
        if plan.tasks:
            results += self._write_tasks(plan.tasks)
        if plan.memberships:
            results += self._write_memberships(plan.memberships)
        if plan.task_closes:
            results += self._close_tasks(plan.task_closes)
        return results

    def _crm_fields(self, update: FieldUpdate) -> dict[str, Any]:
        """The update's mapped outputs by CRM field, each by its output's encoder (an empty
        value stays empty: ``None`` clears the field)."""
        targets, encoders = self.writeback.fields, self._encoders
        return {
            targets[output]: None if value is None else encoders[output](value)
            for output, value in update.fields.items()
            if output in targets
        }

    def _write_fields(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        """Collections of ≤ 200, or one bulk job above the threshold. An update whose
        outputs are all unmapped has nothing to send and costs no call."""
        pending = [(i, u, f) for i, u in enumerate(updates) if (f := self._crm_fields(u))]
        if len(pending) > self.settings.bulk_threshold:
            sent = self._write_fields_bulk(pending)
        else:
            sent = {}
            for chunk in chunks(pending):
                records = [
                    {"attributes": {"type": self.mapping.object}, "id": u.customer_id, **fields}
                    for _, u, fields in chunk
                ]
                saved = self.client.collection(
                    "PATCH", "composite/sobjects", {"allOrNone": False, "records": records}
                )
                for (i, u, _), r in zip(chunk, saved, strict=True):
                    sent[i] = result_of("field_update", u.customer_id, r, self.mapping.object)
        return [
            sent.get(i) or WriteResult("field_update", u.customer_id, True)
            for i, u in enumerate(updates)
        ]

    def _write_fields_bulk(
        self, pending: Sequence[tuple[int, FieldUpdate, dict[str, Any]]]
    ) -> dict[int, WriteResult]:
        """One bulk job (more only past the upload limit): the rows as CSV in the
        write-back's column order, a field this update does not set left empty (an empty
        cell leaves the CRM's value as it is; ``#N/A`` clears it)."""
        present = set().union(*(fields for _, _, fields in pending))
        columns = [c for c in dict.fromkeys(self.writeback.fields.values()) if c in present]
        rows = [
            (u.customer_id, *[cell(fields.get(c, "")) for c in columns]) for _, u, fields in pending
        ]
        failed = {
            row.get("sf__Id") or row.get("Id"): row.get("sf__Error", "")
            for body, records in csv_bodies(["Id", *columns], rows)
            for row in self.client.bulk_update(self.mapping.object, body, records)
        }
        out = {}
        for i, u, _ in pending:
            error = failed.get(u.customer_id)
            if error is None:
                out[i] = WriteResult("field_update", u.customer_id, True)
            else:
                code = leading_code(error)
                text = refusal(code, error, sobject=self.mapping.object)
                out[i] = WriteResult(
                    "field_update", u.customer_id, False, code, text, record_retryable(code)
                )
        return out

    def _write_tasks(self, tasks: Sequence[TaskUpsert]) -> list[WriteResult]:
        return self._upsert_tasks([(t.task.dedupe_key, self._task_record(t)) for t in tasks])

    def _close_tasks(self, closes: Sequence[TaskClose]) -> list[WriteResult]:
        """Set crmtier's open tasks to the standard closed Status ``Completed`` (the Task
        object's Status picklist: Not Started, In Progress, Completed, Waiting on someone
        else, Deferred; "Completed" is the value whose TaskStatus.IsClosed is true in a
        standard org: Salesforce Object Reference, "Task" and "TaskStatus").

        Only a Task the org holds is closed: its keys are looked up first (one SOQL query
        per 200), then the open ones are updated by record id (sObject Collections update,
        ``PATCH composite/sobjects``, 200 a call: "Update Records Using sObject
        Collections"). Never an upsert by external id: "If the external ID isn't matched,
        then a new record is created" ("Insert or Update (Upsert) a Record Using an
        External ID", REST API Developer Guide), and a closure of a task that never arrived,
        or that a relationship manager deleted, would make a bare completed Task. A key the
        org does not hold, or whose Task is already closed, has nothing to close: it
        answers ok with no write, as does a Task deleted between look-up and update
        (``ENTITY_IS_DELETED``). "Closed" is the Task's ``IsClosed``, not its Status
        being ``Completed``: an org may add closed statuses of its own ("Multiple task
        status values can represent a closed task", TaskStatus.IsClosed, Object Reference
        "TaskStatus", developer.salesforce.com/docs/atlas.en-us.object_reference.meta/
        object_reference/sforce_api_objects_taskstatus.htm; Task's ``IsClosed``, label
        "Closed", Salesforce Field Reference "Task"), and a task a relationship manager
        put in one of them keeps that Status rather than being reset to Completed.
        Nothing else changes: the subject, owner and notes stay as the relationship
        manager left them. Cost: ceil(keys / 200) queries plus ceil(open tasks / 200)
        updates."""
        found = self._task_rows(sorted({c.dedupe_key for c in closes}))
        pending = [k for k, row in found.items() if not row.get("IsClosed")]
        done: dict[str, WriteResult] = {}
        for chunk in chunks(pending):
            records = [
                {"attributes": {"type": "Task"}, "id": found[k]["Id"], "Status": TASK_CLOSED}
                for k in chunk
            ]
            saved = self.client.collection(
                "PATCH", "composite/sobjects", {"allOrNone": False, "records": records}
            )
            for key, r in zip(chunk, saved, strict=True):
                done[key] = result_of("task_close", key, r, "Task", ok_codes=("ENTITY_IS_DELETED",))
        return [
            done.get(c.dedupe_key) or WriteResult("task_close", c.dedupe_key, True) for c in closes
        ]

    def _task_rows(self, keys: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        """The Tasks the org holds with these external keys (``Id``, key, ``IsClosed``),
        by key, 200 keys a query."""
        key_field = self.settings.external_id_field
        found: dict[str, Mapping[str, Any]] = {}
        for chunk in chunks(keys):
            query = select(
                ["Id", key_field, "IsClosed"], "Task", f"WHERE {key_field} IN {{}}", list(chunk)
            )
            found.update((str(r[key_field]), r) for r in self.client.query_all(query))
        return found

    def _upsert_tasks(self, records: Sequence[tuple[str, dict[str, Any]]]) -> list[WriteResult]:
        key_field = self.settings.external_id_field
        results: list[WriteResult] = []
        for chunk in chunks(records):
            saved = self.client.collection(
                "PATCH",
                f"composite/sobjects/Task/{key_field}",
                {"allOrNone": False, "records": [record for _, record in chunk]},
            )
            results += [
                result_of("task", key, r, "Task") for (key, _), r in zip(chunk, saved, strict=True)
            ]
        return results

    def _task_record(self, upsert: TaskUpsert) -> dict[str, Any]:
        task = upsert.task
        record: dict[str, Any] = {
            "attributes": {"type": "Task"},
            self.settings.external_id_field: task.dedupe_key,
            "Subject": task.subject[:255],
            "ActivityDate": task.due.isoformat(),
            "Priority": _PRIORITY[task.priority],
            "WhatId": upsert.customer_id,
            "Description": task.description[:32000],
        }
        # Status is left out on purpose: it defaults on create, and a rerun must not reopen
        # a task the relationship manager has completed.
        owner = task.owner_id or (self.writeback.queues.get(task.queue) if task.queue else None)
        if owner:
            record["OwnerId"] = owner
        return record

    def _member_key(self, change: MembershipChange, campaign_id: str) -> str:
        """Deterministic from (campaign, customer): an add and a later remove find the same
        member whatever the planner's dedupe key looked like."""
        return f"crmtier:{campaign_id}:{change.customer_id}"

    def _write_memberships(self, changes: Sequence[MembershipChange]) -> list[WriteResult]:
        results: list[WriteResult] = []
        for chunk in chunks(changes):
            results += self._membership_chunk(chunk)
        return results

    def _membership_chunk(self, chunk: Sequence[MembershipChange]) -> list[WriteResult]:
        out: dict[int, WriteResult] = {}
        keys: dict[int, str] = {}
        for i, change in enumerate(chunk):
            campaign_id = self.writeback.campaigns.get(change.campaign)
            if campaign_id is None:
                out[i] = WriteResult(
                    "membership",
                    change.dedupe_key,
                    False,
                    "CAMPAIGN_NOT_MAPPED",
                    f"campaign {change.campaign!r} has no [writeback.campaigns] id",
                )
            else:
                keys[i] = self._member_key(change, campaign_id)
        # Adds need no look-up: a create that meets an existing member answers
        # DUPLICATE_VALUE (external id or campaign/contact pair), which is the goal state.
        # Only removals need the member's record id.
        leaving = sorted({keys[i] for i in keys if not chunk[i].member})
        existing = self._member_ids(leaving) if leaving else {}
        adds = [i for i in keys if chunk[i].member]
        removes = [i for i in keys if not chunk[i].member and keys[i] in existing]
        for i in keys:
            if i not in adds and i not in removes:  # not a member, as wanted
                out[i] = WriteResult("membership", chunk[i].dedupe_key, True)
        self._add_members(chunk, adds, keys, out)
        if removes:
            saved = self.client.collection(
                "DELETE",
                "composite/sobjects",
                None,
                ids=",".join(existing[keys[i]] for i in removes),
                allOrNone="false",
            )
            for i, r in zip(removes, saved, strict=True):
                out[i] = result_of(
                    "membership",
                    chunk[i].dedupe_key,
                    r,
                    self.settings.campaign_member_object,
                    ok_codes=("ENTITY_IS_DELETED",),
                )
        return [out[i] for i in range(len(chunk))]

    def _member_ids(self, keys: Sequence[str]) -> dict[str, str]:
        """Record ids of the members with these external keys (the ones that exist)."""
        key_field = self.settings.external_id_field
        query = select(
            ["Id", key_field],
            self.settings.campaign_member_object,
            f"WHERE {key_field} IN {{}}",
            list(keys),
        )
        return {str(r[key_field]): str(r["Id"]) for r in self.client.query_all(query)}

    def _add_members(
        self,
        chunk: Sequence[MembershipChange],
        adds: list[int],
        keys: Mapping[int, str],
        out: dict[int, WriteResult],
    ) -> None:
        self._resolve_contacts([chunk[i].customer_id for i in adds])
        records, sent = [], []
        for i in adds:
            ref = self._member_ref(chunk[i].customer_id)
            if ref is None:
                out[i] = WriteResult(
                    "membership",
                    chunk[i].dedupe_key,
                    False,
                    "MEMBER_NOT_SUPPORTED",
                    "business accounts need 'Accounts as Campaign Members' enabled",
                )
                continue
            records.append(
                {
                    "attributes": {"type": self.settings.campaign_member_object},
                    "CampaignId": self.writeback.campaigns[chunk[i].campaign],
                    ref[0]: ref[1],
                    self.settings.external_id_field: keys[i],
                    "Status": MEMBER_STATUS,
                }
            )
            sent.append(i)
        if records:
            saved = self.client.collection(
                "POST", "composite/sobjects", {"allOrNone": False, "records": records}
            )
            for i, r in zip(sent, saved, strict=True):
                # DUPLICATE_VALUE: someone already added this customer; the goal state holds.
                out[i] = result_of(
                    "membership",
                    chunk[i].dedupe_key,
                    r,
                    self.settings.campaign_member_object,
                    ok_codes=("DUPLICATE_VALUE",),
                )

    def _member_ref(self, customer_id: str) -> tuple[str, str] | None:
        contact = self._person_contacts.get(customer_id)
        if contact:
            return "ContactId", contact
        if self.settings.accounts_as_campaign_members:
            return "AccountId", customer_id
        return None

    def _resolve_contacts(self, ids: Sequence[str]) -> None:
        missing = [i for i in ids if i not in self._person_contacts]
        if not missing or not self.settings.person_accounts:
            return
        for chunk in chunks(missing):
            query = select(
                ["Id", "IsPersonAccount", "PersonContactId"],
                self.mapping.object,
                "WHERE Id IN {}",
                list(chunk),
            )
            for r in self.client.query_all(query):
                self._person_contacts[str(r["Id"])] = (
                    r.get("PersonContactId") if r.get("IsPersonAccount") else None
                )


def result_of(
    kind: Any,
    key: str,
    saved: Mapping[str, Any],
    sobject: str,
    ok_codes: tuple[str, ...] = (),
) -> WriteResult:
    if saved.get("success"):
        return WriteResult(kind, key, True)
    errors = saved.get("errors") or [{}]
    code = errors[0].get("statusCode") or errors[0].get("errorCode")
    if code in ok_codes:
        return WriteResult(kind, key, True)
    message = refusal(
        code,
        str(errors[0].get("message") or ""),
        fields=errors[0].get("fields") or (),
        sobject=sobject,
    )
    return WriteResult(kind, key, False, code, message, record_retryable(code))
