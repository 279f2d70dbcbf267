"""What an in-memory test CRM needs besides reads and writes to keep the connector
contract (no schema checks, its call counter as API usage, nothing to close), and an
engine over one on a fresh SQLite store."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.calltally import CallCounter
from connectors.contract import ApiUsage, Connector, CrmRecord, Cursor, Page, SchemaCheck
from connectors.mapping import WritebackConfig
from sync.engine import SyncEngine, SyncSettings
from sync.store import StateStore
from tiering_core.models import AssessmentData, Assets, CustomerProfile


class InMemoryConnector:
    calls: CallCounter  # counted per run as well (connectors.calltally)

    def check(self) -> list[SchemaCheck]:
        return []

    def api_usage(self) -> ApiUsage:
        return ApiUsage(self.calls.counts())

    def close(self) -> None:
        pass


class OneCustomerCrm(InMemoryConnector):
    """A CRM of one customer, ``C00``, whose record holds its ``deposits`` and the
    ``value_tier`` crmtier wrote (``tier``), read at ``stamp``: a subclass sets those and
    says how it answers writes."""

    stamp: datetime
    deposits: float
    tier: str | None

    def record(self) -> CrmRecord:
        profile = CustomerProfile(id="C00", assets=Assets(deposits=self.deposits))
        return CrmRecord(profile, self.stamp, {"value_tier": self.tier})

    def changed(self, deposits: float) -> None:
        """The customer edited in the CRM: the next run reads it again."""
        self.deposits = deposits
        self.stamp = datetime.now(UTC) - timedelta(seconds=30)

    def read_changed(self, since: Cursor | None) -> Iterator[Page]:
        if since is None or Cursor(self.stamp, "C00") >= since:
            yield Page((self.record(),))

    def fetch(self, ids: Sequence[str]) -> list[CrmRecord]:
        return [self.record()] if "C00" in ids else []


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
