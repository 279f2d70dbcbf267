"""What an in-memory test CRM needs besides reads and writes to keep the connector
contract (no schema checks, its call counter as API usage, nothing to close), and an
engine over one on a fresh SQLite store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

from connectors.calltally import CallCounter
from connectors.contract import ApiUsage, Connector, SchemaCheck
from connectors.mapping import WritebackConfig
from sync.engine import SyncEngine, SyncSettings
from sync.store import StateStore
from tiering_core.models import AssessmentData, CustomerProfile


class InMemoryConnector:
    calls: CallCounter  # counted per run as well (connectors.calltally)

    def check(self) -> list[SchemaCheck]:
        return []

    def api_usage(self) -> ApiUsage:
        return ApiUsage(self.calls.counts())

    def close(self) -> None:
        pass


def memory_engine(
    crm: Connector,
    store: StateStore | Path,
    writeback: WritebackConfig,
    assess: Callable[[Sequence[CustomerProfile]], list[AssessmentData]],
    *,
    stream: str,
    write_concurrency: int = 4,
) -> SyncEngine:
    """An engine over ``crm`` with a 5 s overlap, on ``store``: an open one (runs side by
    side share it), or a directory to open a fresh SQLite store in (``state.db``)."""
    if isinstance(store, Path):
        store = StateStore.open(f"sqlite:///{store / 'state.db'}")
    return SyncEngine(
        store,
        crm,
        writeback,
        assess,
        stream=stream,
        pseudonym_key=b"k" * 32,
        settings=SyncSettings(overlap=timedelta(seconds=5), write_concurrency=write_concurrency),
        policy_version="memory@1",
    )
