"""The Zoho CRM connector: the ``Connector`` contract over ``ZohoClient``.

Reads: Zoho v2 sorts by ``Modified_Time`` at one-second resolution and promises no order
among records of the same second, and offset paging over a changing sort order can skip a
record that moves. So reads page by *key*, not offset: each request asks for records
modified at or after a window start (``If-Modified-Since`` = start − 1 s, since Zoho means
"after"), sorted ascending. Records strictly older than the newest second of the answer
are complete and are emitted sorted by (modstamp, id); the newest second is held back and
the next window starts there (only when more than a page shares one second does it turn
the page). Records are deduplicated by id, keeping the latest, and filtered to
``>= since``, so pages come out in the Cursor contract's (modstamp, id) order and a resume
from any page's cursor re-reads at most that page.

Writes are ``writes.py``'s, doctor's checks ``checks.py``'s and the notification channel
``channel.py``'s; this module ties them to the ``Connector`` contract.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import SecretStr

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
from connectors.mapping import FieldMapping, WritebackConfig
from connectors.zoho import channel, checks, writes
from connectors.zoho.channel import ChannelStatus
from connectors.zoho.client import ZohoClient
from connectors.zoho.config import ACCESS_TOKENS_PER_REFRESH_TOKEN, ZohoConfig, load_config
from connectors.zoho.households import HouseholdReader
from connectors.zoho.mapping import (
    FieldInfo,
    read_fields,
    record_from_row,
)
from connectors.zoho.task_keys import KEYS_PER_QUERY
from connectors.zoho.writes import CAMPAIGN_MODULE

ONE_SECOND = timedelta(seconds=1)


class ZohoConnector:
    def __init__(
        self,
        config: ZohoConfig,
        mapping: FieldMapping,
        writeback: WritebackConfig,
        *,
        client: ZohoClient | None = None,
    ) -> None:
        self.config = config
        self.mapping = mapping
        self.writeback = writeback
        self.client = client or ZohoClient(config)
        self.module = mapping.object
        self.capabilities = Capabilities(
            crm="zoho",
            page_size=config.page_size,
            max_write_batch=config.write_batch,
            bulk_threshold=None,
            webhook_kind="notification_channel",
            campaign_member_object=CAMPAIGN_MODULE,
            per_customer_kinds=frozenset({"membership"}),
            lookup_batch={"task": KEYS_PER_QUERY},
            modstamp_resolution=ONE_SECOND,
            processes_per_credential=ACCESS_TOKENS_PER_REFRESH_TOKEN,
        )
        self._fields = read_fields(mapping, writeback)
        self._schema: dict[str, dict[str, FieldInfo]] = {}
        #: households (connectors.zoho.households): sync.households's MemberReader
        self.household_links = HouseholdReader(self.client, self.module)

    # --- reads ----------------------------------------------------------------------------

    def _record(self, row: Mapping[str, Any]) -> CrmRecord:
        return record_from_row(
            row,
            self.mapping,
            self.writeback,
            unassigned_owner=self.config.unassigned_owner,
            labels=self.config.picklist_labels,
        )

    def read_changed(self, since: Cursor | None) -> Iterator[Page]:
        window = None if since is None else since.modstamp.replace(microsecond=0)
        page_no = 1
        pending: dict[str, CrmRecord] = {}
        while True:
            answer = self.client.read_page(
                self.module,
                self._fields,
                modified_after=None if window is None else window - ONE_SECOND,
                page=page_no,
                per_page=self.config.page_size,
            )
            records = [self._record(row) for row in answer.rows]
            for record in records:
                known = pending.get(record.profile.id)
                if known is None or known.cursor < record.cursor:
                    pending[record.profile.id] = record
            if not answer.more:
                page = self._take(pending, since, before=None)
                if page.records:
                    yield page
                return
            newest = max(r.modstamp for r in records)
            if window is None or newest > window:
                page = self._take(pending, since, before=newest)
                if page.records:
                    yield page
                window, page_no = newest, 1
            else:  # a whole page within one second: only here does offset paging help
                page_no += 1

    @staticmethod
    def _take(
        pending: dict[str, CrmRecord], since: Cursor | None, *, before: datetime | None
    ) -> Page:
        ready = sorted(
            (r for r in pending.values() if before is None or r.modstamp < before),
            key=lambda r: r.cursor,
        )
        for record in ready:
            del pending[record.profile.id]
        return Page(tuple(r for r in ready if since is None or r.cursor >= since))

    def fetch(self, ids: Sequence[str]) -> list[CrmRecord]:
        found: dict[str, CrmRecord] = {}
        unique = list(dict.fromkeys(str(i) for i in ids))
        for start in range(0, len(unique), 100):
            for row in self.client.fetch(self.module, unique[start : start + 100], self._fields):
                found[str(row["id"])] = self._record(row)
        return [found[i] for i in unique if i in found]

    # --- writes ---------------------------------------------------------------------------

    def schema(self, module: str) -> dict[str, FieldInfo]:
        if module not in self._schema:
            self._schema[module] = self.client.fields(module)
        return self._schema[module]

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        return writes.apply(self, plan)

    def login_secret(self) -> bytes:
        """The refresh token: Zoho's cap of 15 live access tokens is per refresh token
        ("Token Validity"), whatever the client (``contract.SharedLogin``)."""
        return self.config.refresh_token.get_secret_value().encode()

    def change_owners(self, changes: Sequence[OwnerChange]) -> list[WriteResult]:
        return writes.change_owners(self, changes)

    def read_users(self, capacity_field: str) -> list[dict[str, Any]]:
        """The active users whose custom user field ``capacity_field`` holds a value, as
        ``{"id", "active", "capacity"}`` (Users API, ``type=ActiveUsers``, 200 a page)."""
        out: list[dict[str, Any]] = []
        page, more = 1, True
        while more:
            answer = self.client.users_page("ActiveUsers", page, [capacity_field])
            out += [
                {"id": u["id"], "active": u["status"] == "active", "capacity": u[capacity_field]}
                for u in answer.rows
                if u[capacity_field] not in (None, "")
            ]
            page, more = page + 1, answer.more
        return out

    # --- notification channel -------------------------------------------------------------

    def ensure_channel(
        self,
        notify_url: str,
        channel_id: str,
        token: str | SecretStr,
        *,
        now: datetime | None = None,
    ) -> ChannelStatus:
        """Register the change-notification channel, or renew it when due (``channel.py``)."""
        return channel.ensure_channel(self, notify_url, channel_id, token, now=now)

    # --- doctor ---------------------------------------------------------------------------

    def check(self) -> list[SchemaCheck]:
        return checks.run_checks(self)

    def household_check(self) -> SchemaCheck:
        return checks.household_check(self)

    def write_checks(self, kinds: Collection[WriteKind]) -> list[SchemaCheck]:
        return checks.write_checks(self, kinds)

    # --- usage ----------------------------------------------------------------------------

    def api_usage(self) -> ApiUsage:
        return ApiUsage(
            calls=self.client.usage(),
            allowance_used=self.client.budget.used,
            allowance_limit=self.client.budget.limit,
        )

    def close(self) -> None:
        self.client.close()


def build(
    crm: Mapping[str, Any], mapping: FieldMapping, writeback: WritebackConfig
) -> ZohoConnector:
    return ZohoConnector(load_config(crm), mapping, writeback)
