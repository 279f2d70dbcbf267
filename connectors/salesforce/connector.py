"""The Salesforce connector: canonical customers in, per-item write results out.

Reads page through ``SystemModstamp`` (inclusive, ``ORDER BY SystemModstamp, Id``),
selecting only the mapped fields, the write-back fields (to fill ``CrmRecord.current``) and
the few system fields the connector itself needs; one Salesforce query batch is one
``Page``. Writes are ``writes.py``'s (the fewest calls; the sync engine collects a run's
field updates into plans of up to ``Capabilities.bulk_threshold``), the org checks
``checks.py``'s; this module ties them to the ``Connector`` contract.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from connectors.contract import (
    ApiUsage,
    Capabilities,
    CrmRecord,
    Cursor,
    OwnerChange,
    Page,
    SchemaCheck,
    WriteKind,
    WritePlan,
    WriteResult,
)
from connectors.mapping import FieldMapping, WritebackConfig, profile_from_crm
from connectors.salesforce import owners
from connectors.salesforce.batches import BATCH, chunks
from connectors.salesforce.checks import household_check, run_checks, write_checks
from connectors.salesforce.client import SalesforceClient, select
from connectors.salesforce.config import SalesforceSettings, load_settings
from connectors.salesforce.households import HouseholdReader
from connectors.salesforce.mapping import decoder
from connectors.salesforce.person_contacts import PersonContacts
from connectors.salesforce.writes import PlanWriter
from tiering_core.models import CustomerProfile, DQIssue

#: Field updates per Bulk API 2.0 job. "Salesforce creates a separate batch for every 10,000
#: records in your job data" (Bulk API 2.0 guide, "Understanding Bulk API 2.0 Ingest",
#: developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_bulk_v2/
#: datafiles_understanding_bulk2_ingest.htm), so jobs of this size use no more of the daily
#: 15,000-batch allocation than one job of the whole run, while the run writes as it reads.
#: Above 2,000 records is where Salesforce recommends Bulk API 2.0 ("Bulk API and Bulk API
#: 2.0 Limits and Allocations"): the default ``bulk_threshold``.
BULK_JOB_RECORDS = 10_000
#: The API returns ``SystemModstamp`` with whole seconds (``...T09:31:02.000+0000``).
SYSTEM_MODSTAMP_RESOLUTION = timedelta(seconds=1)


def build(
    crm: Mapping[str, Any], mapping: FieldMapping, writeback: WritebackConfig
) -> SalesforceConnector:
    return SalesforceConnector(load_settings(crm), mapping, writeback)


def parse_modstamp(text: str) -> datetime:
    """``2025-01-15T09:31:02.000+0000`` → aware UTC datetime. ``fromisoformat`` (a
    thirtieth of ``strptime``'s cost, once per record read) accepts any ISO form, so a
    stamp without an offset is refused rather than read as local time."""
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        raise ValueError(f"SystemModstamp without a UTC offset: {text!r}")
    return stamp.astimezone(UTC)


def soql_datetime(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SalesforceConnector:
    def __init__(
        self,
        settings: SalesforceSettings,
        mapping: FieldMapping,
        writeback: WritebackConfig,
        *,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.settings = settings
        self.mapping = mapping
        self.client = SalesforceClient(settings, sleep=sleep)
        self.capabilities = Capabilities(
            crm="salesforce",
            page_size=settings.page_size,
            max_write_batch=BATCH,
            bulk_threshold=settings.bulk_threshold,
            bulk_batch=BULK_JOB_RECORDS,
            webhook_kind="outbound_message",
            campaign_member_object=settings.campaign_member_object,
            modstamp_resolution=SYSTEM_MODSTAMP_RESOLUTION,
        )
        self._person_contacts = PersonContacts()
        self.writer = PlanWriter(self.client, settings, mapping, writeback, self._person_contacts)
        #: households (connectors.salesforce.households): sync.households's MemberReader
        self.household_links = HouseholdReader(self.client)

    @property
    def writeback(self) -> WritebackConfig:
        """The write-back configuration; the writer holds it, so a change reaches both."""
        return self.writer.writeback

    @writeback.setter
    def writeback(self, value: WritebackConfig) -> None:
        self.writer.writeback = value

    def __repr__(self) -> str:
        s = self.settings
        return f"SalesforceConnector(base_url={s.base_url!r}, object={self.mapping.object!r})"

    # --- reading -----------------------------------------------------------------------------

    def _select(self) -> list[str]:
        fields = {
            "Id",
            "SystemModstamp",
            "OwnerId",
            *self.mapping.crm_fields(),
            *self.writeback.fields.values(),
        }
        if self.settings.person_accounts:
            fields |= {"IsPersonAccount", "PersonContactId"}
        return ["Id", "SystemModstamp", *sorted(fields - {"Id", "SystemModstamp"})]

    def read_changed(self, since: Cursor | None) -> Iterator[Page]:
        query = select(self._select(), self.mapping.object)
        if since is not None:
            # Second precision and >=: same-second rows are re-read and skipped below, so a
            # tie at a page boundary is never lost (the classic strict-">" bug).
            query += f" WHERE SystemModstamp >= {soql_datetime(since.modstamp)}"
        query += " ORDER BY SystemModstamp, Id"
        page = self.client.query(query)
        while True:
            records = [
                r for r in self._records(page["records"]) if since is None or r.cursor >= since
            ]
            if records:
                yield Page(tuple(records))
            if page.get("done", True):
                return
            page = self.client.query_more(page["nextRecordsUrl"])

    def fetch(self, ids: Sequence[str]) -> list[CrmRecord]:
        out: list[CrmRecord] = []
        for chunk in chunks(list(dict.fromkeys(ids))):
            query = select(
                self._select(),
                self.mapping.object,
                "WHERE Id IN {}",
                list(chunk),
            )
            out += self._records(self.client.query_all(query))
        return out

    def read_context(self, ids: Sequence[str]) -> dict[str, Any]:
        """``contract.ReadContext``: the Person Contact (or None) of these records, for a
        membership write in another process (each known one saves it a look-up)."""
        known = self._person_contacts
        return {"person_contacts": {i: known.get(i) for i in ids if i in known}}

    def adopt_read_context(self, context: Mapping[str, Any]) -> None:
        for rid, contact in (context.get("person_contacts") or {}).items():
            self._person_contacts[str(rid)] = contact

    def _records(self, raws: Sequence[Mapping[str, Any]]) -> list[CrmRecord]:
        """A page of raw records as ``CrmRecord``s, in order. What is the same for every
        record (the settings, the mapping's and write-back's fields) is looked up once a
        page, and the Person Contacts go to their cache in one locked update: this runs
        for every record read."""
        mapping = self.mapping
        owner_from_system = "owner_id" not in mapping.fields
        writeback = tuple((o, f, decoder(o)) for o, f in self.writeback.fields.items())
        records = []
        for raw in raws:
            rid = str(raw["Id"])
            modstamp = parse_modstamp(str(raw["SystemModstamp"]))
            get = raw.get
            extra: dict[str, Any] = {"modified_at": modstamp}
            if owner_from_system and get("OwnerId"):
                extra["owner_id"] = raw["OwnerId"]
            try:
                profile, issues = profile_from_crm(rid, raw, mapping, **extra)
            except ValidationError as exc:  # something the mapping cannot even drop: keep the id
                profile = CustomerProfile(id=rid, modified_at=modstamp)
                issues = (
                    DQIssue(
                        code="DQ_BAD_TYPE",
                        field="*",
                        problem=f"unreadable record: {exc.error_count()} errors",
                    ),
                )
            current = {  # an empty field is None without a call (all of them on a first sync)
                output: None if (value := get(crm_field)) is None else read(value)
                for output, crm_field, read in writeback
            }
            records.append(CrmRecord(profile, modstamp, current, issues))
        if self.settings.person_accounts:
            self._person_contacts.update(
                (str(raw["Id"]), raw.get("PersonContactId") if raw.get("IsPersonAccount") else None)
                for raw in raws
            )
        return records

    # --- writing -----------------------------------------------------------------------------

    # --- writing (connectors/salesforce/writes.py) -------------------------------------------

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        return self.writer.apply(plan)

    # --- advisor coverage (connectors/salesforce/owners.py) ----------------------------------

    def change_owners(self, changes: Sequence[OwnerChange]) -> list[WriteResult]:
        return owners.change_owners(self.client, self.mapping, changes)

    def read_users(self, capacity_field: str) -> list[dict[str, Any]]:
        return owners.read_users(self.client, capacity_field)

    # --- the rest of the contract ----------------------------------------------------------------

    def check(self) -> list[SchemaCheck]:
        return run_checks(self.client, self.settings, self.mapping, self.writeback)

    def household_check(self) -> SchemaCheck:
        return household_check(self.client)

    def write_checks(self, kinds: Collection[WriteKind]) -> list[SchemaCheck]:
        return write_checks(self.client, self.settings, kinds)

    def api_usage(self) -> ApiUsage:
        used, limit = self.client.allowance or (None, None)
        return ApiUsage(self.client.calls.counts(), used, limit)

    def close(self) -> None:
        self.client.close()
