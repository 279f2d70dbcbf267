"""The report's data model: everything the HTML page shows, and nothing else.

The renderer turns a ``ReportData`` into HTML and knows nothing about where the numbers
come from; ``crmtier.report.collect`` fills it from the sync state store (and, for the
feedback section, from a read of the CRM). Aggregate counts live here, never a name or
amount, so the report file can be mailed to a committee without becoming a copy of
customer data. The one exception is the open dead letters, listed by CRM record id and
error code because an admin must act on each (a record id names no one to a reader
without CRM access). The AML rating is kept apart (``ReportData.restricted``): it is
confidential (PBOC 保密原则) and rendered in a section of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import get_args

from crmtier.report.coverage import CoverageReport
from tiering_core.policy_base import TierName

#: display order of each tier dimension (anything else found in the store is appended).
DIMENSION_ORDER: Mapping[str, tuple[str, ...]] = {
    "value_tier": (*get_args(TierName), "unrated"),
    "needs_tier": ("professional", "advanced", "basic"),
    "credit_risk": ("high", "medium", "low", "unrated"),
    "aml_risk": ("prohibited", "high", "medium", "low", "unrated"),
    "ops_risk": ("high", "medium", "low", "unrated"),
    "status": ("rated", "partial", "unrated"),
}

DIMENSION_TITLES: Mapping[str, str] = {
    "value_tier": "Value tier",
    "needs_tier": "Needs tier",
    "credit_risk": "Credit risk",
    "aml_risk": "AML risk (restricted)",
    "ops_risk": "Operational risk",
    "status": "Rating status",
}


def ordered_levels(dimension: str, found: Sequence[str]) -> list[str]:
    """The known levels of ``dimension`` in their display order, then any others found."""
    known = list(DIMENSION_ORDER.get(dimension, ()))
    return known + sorted(level for level in set(found) if level not in known)


@dataclass(frozen=True)
class Distribution:
    """How many customers sit at each level of one dimension."""

    dimension: str
    counts: Mapping[str, int]

    @property
    def title(self) -> str:
        return DIMENSION_TITLES.get(self.dimension, self.dimension)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Matrix:
    """A cross-table of counts: ``cells[(row, col)]``; missing cells are zero."""

    title: str
    row_label: str
    col_label: str
    rows: Sequence[str]
    cols: Sequence[str]
    cells: Mapping[tuple[str, str], int]

    def cell(self, row: str, col: str) -> int:
        return self.cells.get((row, col), 0)

    @property
    def total(self) -> int:
        return sum(self.cells.values())

    @property
    def peak(self) -> int:
        return max(self.cells.values(), default=0)


@dataclass(frozen=True)
class ApiUse:
    """API calls of one run by kind (as its run record keeps them), against the
    theoretical minimum for the same work (docs/targets.md P1: ratio 1.00)."""

    calls: Mapping[str, int]
    minimum: int | None = None

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@dataclass(frozen=True)
class FeedbackRow:
    """Satisfaction and complaints of the customers of one value tier."""

    tier: str
    customers: int
    csat_answers: int = 0
    csat_mean: float | None = None
    nps_answers: int = 0
    nps_mean: float | None = None
    detractors: int = 0
    open_complaints: int = 0
    complaints_12m: int = 0

    @property
    def complaints_per_100(self) -> float:
        return 100.0 * self.complaints_12m / self.customers if self.customers else 0.0


@dataclass(frozen=True)
class RunRow:
    """One sync run as the run table records it."""

    run_id: str
    trigger: str
    status: str
    started_at: str
    finished_at: str | None
    read: int
    written: int
    unchanged: int
    dead_lettered: int
    dry_run: bool = False
    skipped: int = 0
    reason: str | None = None  # why it failed, paused or skipped records, as recorded


@dataclass(frozen=True)
class DeadLetterRow:
    """One open dead letter: a write that outlived its retries and waits for an admin."""

    crm_id: str
    kind: str
    error_code: str
    attempts: int
    last_at: str


@dataclass(frozen=True)
class LinkRow:
    """A simulate, calibrate or explain output the report links to (``links.py``)."""

    kind: str
    href: str  # relative to the report when it can be
    name: str
    summary: str
    written: str  # UTC


@dataclass(frozen=True)
class HouseholdRow:
    """One value tier of the household section (``households.py``): its customers, those
    in a rated household, those their household lifted."""

    tier: str
    customers: int
    in_household: int
    lifted: int


@dataclass(frozen=True)
class HouseholdReport:
    rows: Sequence[HouseholdRow]
    #: value tier (rows) × household tier (columns, ``none``: in no rated household)
    members: Matrix

    @property
    def lifted(self) -> int:
        return sum(r.lifted for r in self.rows)


@dataclass(frozen=True)
class ReportData:
    title: str
    generated_at: str
    crm: str
    stream: str
    policy_version: str | None
    customers: int
    distributions: Sequence[Distribution]
    migration: Matrix | None
    value_risk: Sequence[Matrix]
    dq_issues: Mapping[str, int]
    api: ApiUse | None
    feedback: Sequence[FeedbackRow] | None
    runs: Sequence[RunRow] = ()
    side_effects: Mapping[str, int] = field(default_factory=dict)
    notes: Sequence[str] = ()
    focus: RunRow | None = None  # the run whose DQ issues and API usage are shown
    migration_scope: str = "the last run that moved a value tier"
    dead_letters: Sequence[DeadLetterRow] = ()  # the oldest open ones
    dead_letters_open: int = 0  # all open ones
    #: the AML distribution and value × AML matrix, shown only in the restricted section
    restricted: Sequence[Distribution | Matrix] = ()
    #: the policy-lifecycle outputs found next to the report (or given), newest first
    linked: Sequence[LinkRow] = ()
    #: advisor coverage (crmtier/report/coverage.py); None: not computed for this report
    coverage: CoverageReport | None = None
    #: household vs individual tiers (crmtier/report/households.py); None: none stored
    households: HouseholdReport | None = None

    @property
    def focus_label(self) -> str:
        f = self.focus
        return f"run {f.run_id[:12]} ({f.trigger}, {f.started_at} UTC)" if f else "no run"
