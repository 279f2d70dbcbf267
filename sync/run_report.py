"""What a sync run reports: ``RunReport`` (``SyncEngine.run``, ``crmtier sync``, the webhook
worker's outcomes) and a dry run's ``PlannedWrite`` lines."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.contract import data_calls
from sync.preview import PlanTotals
from sync.records import Outcome
from sync.run_parts import RunParts
from sync.runs import RunCounts, RunStatus

#: the minimum's entry for the calls of an engine's start checks (``report_of``)
START_CHECKS = "start_checks"


@dataclass(frozen=True)
class PlannedWrite:
    """One line of a dry-run preview: what would be written to whom."""

    customer_id: str
    kind: str
    detail: dict[str, Any]  # field values as the CRM holds them: raw CRM JSON


@dataclass
class RunReport:
    run_id: str
    stream: str
    status: RunStatus
    counts: RunCounts
    api_calls: dict[str, int]
    min_calls: dict[str, int]
    error: str | None = None
    preview: list[PlannedWrite] = field(default_factory=list)
    totals: PlanTotals = field(default_factory=PlanTotals)  # a dry run's, per field/rule/campaign
    dead_letters_open: int = 0
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # customer id -> outcome
    #: the run failed because the configuration or the CRM's set-up is wrong (a
    #: ``ConfigError``): a human must fix it, and ``crmtier sync`` exits 2, not 1
    config_error: bool = False
    #: the run paused because the CRM refuses writes for now (read-only for maintenance)
    read_only: bool = False

    @property
    def api_total(self) -> int:
        return sum(self.api_calls.values())


def report_of(
    parts: RunParts,
    status: RunStatus,
    error: str | None,
    preview: list[PlannedWrite],
    calls_elsewhere: Mapping[str, int],
) -> RunReport:
    """The report of the run ``parts`` served; ``calls_elsewhere``: API calls its work made
    in other processes (a re-tier's page units), added to this process's own. The first
    run of an engine also carries the calls of its start checks (``SyncEngine``'s
    ``start_calls``: what households and the enabled write kinds need in the CRM), in the
    calls used by kind and in the minimum as ``start_checks``: without them the engine
    would not have started."""
    start = parts.e.take_start_calls()
    used = parts.calls.counts()
    for kind, n in [*calls_elsewhere.items(), *start.items()]:
        used[kind] = used.get(kind, 0) + n
    tally = parts.pool.tally
    groups = {kind: len(keys) for kind, keys in tally.groups.items()}
    caps = parts.e.connector.capabilities
    min_calls = caps.minimum_calls(parts.counts.read, tally.items, groups)
    if data_calls(start):
        min_calls[START_CHECKS] = data_calls(start)
    return RunReport(
        parts.run_id,
        parts.e.stream,
        status,
        parts.counts,
        used,
        min_calls,
        error,
        preview,
        parts.planner.totals,
        outcomes=parts.recorder.outcomes,
    )
