"""What an in-memory test CRM needs besides reads and writes to keep the connector
contract: no schema checks, its call counter as API usage, nothing to close."""

from __future__ import annotations

from collections import Counter

from connectors.contract import ApiUsage, SchemaCheck


class InMemoryConnector:
    calls: Counter[str]

    def check(self) -> list[SchemaCheck]:
        return []

    def api_usage(self) -> ApiUsage:
        return ApiUsage(dict(self.calls))

    def close(self) -> None:
        pass
