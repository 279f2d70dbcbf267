"""Salesforce writes: one ``WritePlan`` in, one ``WriteResult`` per item out, in the fewest calls.

Field updates go in sObject Collections of ≤ 200 records, or one Bulk API 2.0 job for a plan
of more than ``bulk_threshold`` updates; Tasks are upserted by crmtier's external id (a
rerun finds the same Task), or looked up by it when sent again (``task_writes.py``);
CampaignMembers carry a deterministic external id, so adds need no look-up and removals one
query. A refused record reads as ``errors.refusal`` (code, field, object, next step), never
as Salesforce's own message, which can quote its values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connectors.contract import (
    FieldUpdate,
    MembershipChange,
    TaskUpsert,
    WritePlan,
    WriteResult,
)
from connectors.mapping import FieldMapping, WritebackConfig
from connectors.salesforce.batches import chunks, result_of
from connectors.salesforce.bulkcsv import cell, csv_bodies
from connectors.salesforce.client import SalesforceClient, select
from connectors.salesforce.config import SalesforceSettings
from connectors.salesforce.errors import leading_code, record_retryable, refusal
from connectors.salesforce.mapping import encoder
from connectors.salesforce.person_contacts import PersonContacts
from connectors.salesforce.task_writes import close_tasks, write_tasks

#: The Status a campaign membership is created with; doctor checks each campaign defines it
#: (``checks._member_status_check``).
MEMBER_STATUS = "Sent"


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
            results += close_tasks(self.client, self.settings.external_id_field, plan.task_closes)
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
        return write_tasks(
            self.client, self.settings.external_id_field, tasks, self.writeback.queues
        )

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
        # Only removals need the member's record id: by crmtier's key, else by the pair
        # (``_members_by_pair``).
        leaving = sorted({keys[i] for i in keys if not chunk[i].member})
        existing = self._member_ids(leaving) if leaving else {}
        unkeyed = [i for i in keys if not chunk[i].member and keys[i] not in existing]
        if unkeyed:
            existing.update(self._members_by_pair(chunk, unkeyed, keys))
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

    def _members_by_pair(
        self, chunk: Sequence[MembershipChange], unkeyed: list[int], keys: Mapping[int, str]
    ) -> dict[str, str]:
        """Record ids, by crmtier's key, of the leaving members that have no such key: one
        added by hand before crmtier's add met it (``DUPLICATE_VALUE``, taken as made), or
        whose key someone cleared. Salesforce keeps a contact (or account) a member of a
        campaign once, so the campaign and the customer's Person Contact (a business
        Account: the Account) name the member. Without this a sanctions hit would count
        such a removal as done and leave the customer in the campaign (docs/policy.md).
        One query for the chunk, only when a removal's key finds no member."""
        self._resolve_contacts([chunk[i].customer_id for i in unkeyed])
        wanted: dict[tuple[str, str], str] = {}  # (campaign id, member id) -> crmtier's key
        by_field: dict[str, set[str]] = {}  # ContactId / AccountId -> member ids
        for i in unkeyed:
            ref = self._member_ref(chunk[i].customer_id)
            if ref is not None:
                wanted[(self.writeback.campaigns[chunk[i].campaign], ref[1])] = keys[i]
                by_field.setdefault(ref[0], set()).add(ref[1])
        if not wanted:
            return {}
        fields = sorted(by_field)
        # an account's own member has no contact: ``AccountId`` is "the account related to
        # the campaign", which the Object Reference does not say stays empty on a contact's
        # member (a business account's employee put in the campaign is not the account)
        shown = fields if "AccountId" not in fields else sorted({*fields, "ContactId"})
        query = select(
            ["Id", "CampaignId", *shown],
            self.settings.campaign_member_object,
            "WHERE CampaignId IN {} AND (" + " OR ".join(f"{f} IN {{}}" for f in fields) + ")",
            sorted({c for c, _ in wanted}),
            *(sorted(by_field[f]) for f in fields),
        )
        found: dict[str, str] = {}
        for r in self.client.query_all(query):
            for field in fields:
                if field == "AccountId" and r.get("ContactId"):
                    continue
                key = wanted.get((str(r["CampaignId"]), str(r.get(field))))
                if key is not None:
                    found[key] = str(r["Id"])
        return found

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
