"""The FXiaoke (纷享销客) connector: the Connector contract over the Open API v2.

``build()`` is what ``connectors.registry`` calls with the ``[crm]`` table. Reads page by
keyset (query.py), writes go one record per call (writes.py), doctor's checks are
checks.py's, and everything crosses the wire through ``FxiaokeClient`` (token cache,
limiter, error table).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

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
from connectors.fxiaoke import checks
from connectors.fxiaoke.client import FxiaokeClient, data_path
from connectors.fxiaoke.config import FxiaokeConfig, load_config
from connectors.fxiaoke.households import HouseholdReader
from connectors.fxiaoke.mapping import projection, record_from_raw, to_epoch_ms
from connectors.fxiaoke.query import (
    ID,
    KEYS_PER_LOOKUP,
    MAX_OFFSET,
    PAGE_LIMIT,
    Row,
    changed_since,
    flt,
    rows_of,
    search_query_info,
)
from connectors.fxiaoke.writes import PlanWriter
from connectors.mapping import FieldMapping, WritebackConfig


class FxiaokeConnector:
    def __init__(
        self,
        config: FxiaokeConfig,
        mapping: FieldMapping,
        writeback: WritebackConfig,
        *,
        client: FxiaokeClient | None = None,
    ) -> None:
        self.config = config
        self.mapping = mapping
        self.writeback = writeback
        self.client = client or FxiaokeClient(config)
        self.capabilities = Capabilities(
            crm="fxiaoke",
            page_size=PAGE_LIMIT,
            max_write_batch=1,
            webhook_kind="workflow_push",
            campaign_member_object=config.campaign_member_object,
            max_query_offset=MAX_OFFSET,
            plan_batch=KEYS_PER_LOOKUP,
        )
        self._projection = projection(mapping, writeback)
        self._writer = PlanWriter(self.client, config, mapping, writeback)
        #: households (connectors.fxiaoke.households): sync.households's MemberReader
        self.household_links = HouseholdReader(self.client)

    # --- reads ----------------------------------------------------------------------

    def read_changed(self, since: Cursor | None) -> Iterator[Page]:
        """Full pages of ``page_size`` records, the last one partial (a call that drains a
        tie group or starts inside one can bring fewer new records than a page)."""
        start = (to_epoch_ms(since.modstamp), since.id) if since is not None else None
        buffer: list[CrmRecord] = []
        for rows in changed_since(self._query, start):
            buffer += (self._record(row) for row in rows)
            while len(buffer) >= PAGE_LIMIT:
                yield Page(tuple(buffer[:PAGE_LIMIT]))
                del buffer[:PAGE_LIMIT]
        if buffer:
            yield Page(tuple(buffer))

    def fetch(self, ids: Sequence[str]) -> list[CrmRecord]:
        by_id: dict[str, CrmRecord] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), PAGE_LIMIT):
            chunk = unique[start : start + PAGE_LIMIT]
            for row in self._query([flt(ID, "IN", *chunk)], []):
                record = self._record(row)
                by_id[record.profile.id] = record
        return [by_id[i] for i in unique if i in by_id]

    def _query(self, filters: list[dict[str, Any]], orders: list[dict[str, Any]]) -> list[Row]:
        """One page of live customers: a customer invalidated (作废, FXiaoke's delete into
        the recycle bin) is neither tiered nor written to, and ``fetch`` treats it as gone."""
        obj = self.mapping.object
        filters = [*filters, flt("life_status", "N", "invalid")]
        answer = self.client.call(
            data_path(obj, "query"),
            {
                "dataObjectApiName": obj,
                "find_explicit_total_num": False,
                "search_query_info": search_query_info(filters, orders, self._projection),
            },
        )
        return rows_of(answer)

    def _record(self, row: Row) -> CrmRecord:
        return record_from_raw(row, self.mapping, self.writeback)

    # --- writes ---------------------------------------------------------------------

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        return self._writer.apply(plan)

    def change_owners(self, changes: Sequence[OwnerChange]) -> list[WriteResult]:
        return self._writer.change_owners(changes)

    # --- doctor ---------------------------------------------------------------------

    def check(self) -> list[SchemaCheck]:
        return checks.run_checks(self)

    def household_check(self) -> SchemaCheck:
        return checks.household_check(self)

    def write_checks(self, kinds: Collection[WriteKind]) -> list[SchemaCheck]:
        return checks.write_checks(self, kinds)

    # --- usage ----------------------------------------------------------------------

    def api_usage(self) -> ApiUsage:
        calls = self.client.calls()
        budget = self.client.budget
        return ApiUsage(
            calls=calls,
            allowance_used=sum(calls.values()) if budget is not None else None,
            allowance_limit=budget,
        )

    def close(self) -> None:
        self.client.close()


def build(
    crm: Mapping[str, Any], mapping: FieldMapping, writeback: WritebackConfig
) -> FxiaokeConnector:
    return FxiaokeConnector(load_config(crm), mapping, writeback)
