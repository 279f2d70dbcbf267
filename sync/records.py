"""The typed records the sync engine's parts hand each other.

The reader hands the run ``Advance`` marks, the planner hands the recorder ``Planned``
customers and ``Decision`` entries, the write pool hands it answered calls; outcomes and
skip reasons are enums, not strings spelled in several places. ``PendingDecision`` is the
one record with a stored form: the ``customers.pending`` JSON column, whose layout existing
state stores hold and which ``to_json``/``from_json`` keep exactly as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol, cast

from connectors.contract import CrmRecord, Page
from sync.audit import Trigger
from sync.days import day_text, parse_day
from sync.planner import CustomerPlan
from sync.runs import RunStatus
from sync.state import CustomerState
from tiering_core.models import AssessmentData, TaskAction

#: a JSON value as stored (raw CRM field values are JSON too, of any shape)
Json = Any


class Outcome(StrEnum):
    """What a run did with one customer (``RunReport.outcomes``; the webhook worker's
    per-event outcome and metric label)."""

    WRITTEN = "written"
    UNCHANGED = "unchanged"
    DEAD_LETTERED = "dead_lettered"
    DEFERRED = "deferred"
    WOULD_WRITE = "would_write"
    SUPERSEDED = "superseded"  # a newer view of the customer was admitted: not written
    ASSESS_ERROR = "skipped:assess_error"


class Skip(StrEnum):
    """Why a read customer was neither written nor unchanged (``RunCounts.skipped``)."""

    ALREADY_SYNCED = "already_synced"
    DUPLICATE_IN_PAGE = "duplicate_in_page"
    ASSESS_ERROR = "assess_error"
    SUPERSEDED = "superseded"
    DEFERRED = "deferred_to_next_run"


class Unsent(Exception):
    """A queued write call the run withdrew before it went out."""


#: the answer given each write of a call that stopped the run (quota, read-only, login,
#: configuration) after another CRM call of it left (``sync.call_answers``): recorded as
#: unanswered (possibly made, in doubt), but no attempt of the write's own counted, as a
#: run-stopping refusal says nothing against the write (a day of stopped runs in a
#: maintenance window must not dead-letter it)
STOPPED = "STOPPED"


class Stop(Exception):
    """The run must stop (quota, fatal connector error); carries the status, and whether
    a human must fix the configuration (a write call refused with ``ConfigError``: the
    run is then a configuration error, as a refusal at start is, and ``crmtier sync``
    exits 2), or whether the CRM refuses writes for hours (``read_only``: a webhook
    worker then waits for it without giving its events up)."""

    def __init__(
        self, status: RunStatus, message: str, *, config: bool = False, read_only: bool = False
    ) -> None:
        super().__init__(message)
        self.status: RunStatus = status
        self.config = config
        self.read_only = read_only


@dataclass(frozen=True, slots=True)
class PendingDecision:
    """A customer's new decision while its writes are outstanding: what becomes its
    committed state once they are done, and what its audit rows cite."""

    tiers: dict[str, str]
    # every field the decision means the CRM to show, not only those the plan sends: once
    # its writes are done, the CRM shows exactly these, and the next read of the customer
    # is its own echo only if it still does (see ``PagePlanner.settled``)
    fields: dict[str, Json]
    assessed_at: date | None
    below_floor_since: date | None
    reason_codes: tuple[str, ...]
    policy_version: str | None
    input_hash: str | None
    run_id: str | None
    trigger: Trigger | None
    source_event_id: str | None
    # the ``override`` audit row's value when a tier override decided (or was refused);
    # stored only when present, so decisions without one keep their old stored form
    override: dict[str, Json] | None = None

    def to_json(self) -> dict[str, Json]:
        """The stored form (keys and value forms unchanged since stores first kept it;
        ``override`` added only when an override decided)."""
        stored: dict[str, Json] = {
            "tiers": self.tiers,
            "fields": self.fields,
            "assessed_at": day_text(self.assessed_at),
            "below_floor_since": day_text(self.below_floor_since),
            "reason_codes": list(self.reason_codes),
            "policy_version": self.policy_version,
            "input_hash": self.input_hash,
            "run_id": self.run_id,
            "trigger": self.trigger,
            "source_event_id": self.source_event_id,
        }
        if self.override is not None:
            stored["override"] = self.override
        return stored

    @classmethod
    def from_json(cls, data: Mapping[str, Json] | None) -> PendingDecision | None:
        """A stored decision (an interrupted run's); None for none (or an empty one)."""
        if not data:
            return None
        return cls(
            tiers=dict(data.get("tiers") or {}),
            fields=dict(data.get("fields") or {}),
            assessed_at=parse_day(data.get("assessed_at")),
            below_floor_since=parse_day(data.get("below_floor_since")),
            reason_codes=tuple(data.get("reason_codes") or ()),
            policy_version=data.get("policy_version"),
            input_hash=data.get("input_hash"),
            run_id=data.get("run_id"),
            trigger=cast("Trigger | None", data.get("trigger")),
            source_event_id=data.get("source_event_id"),
            override=data.get("override"),
        )


@dataclass(slots=True)
class Decision:
    """A customer's decision waiting for its writes; promoted when none is outstanding."""

    customer_id: str
    pending: PendingDecision | None
    outstanding: set[int]
    this_run: bool
    # The committed state the decision builds on (None: the customer has none yet). It
    # cannot go stale while the decision is open: the run holds the customer's claim until
    # then (sync.run_claims), and in the run only promoting this decision writes the
    # customer's committed state.
    base: CustomerState | None
    dead: bool = False
    field_dead: bool = False


class DecisionsAt(Protocol):
    """A page's whole decisions by position (``sync.decided.Decided``)."""

    def __getitem__(self, i: int, /) -> AssessmentData: ...


@dataclass(frozen=True, slots=True)
class Planned:
    """One assessed customer of a page and the writes its assessment needs. ``summary``:
    its decision as planned, what its state and audit keep (from a page's decision
    columns, without its actions: ``DecisionColumns.plain``); the whole decision
    (``assessment``) is made from the page's decisions only when read (a dry run's
    preview)."""

    record: CrmRecord
    summary: AssessmentData
    plan: CustomerPlan
    desired: dict[str, Json]  # every write-back field value the assessment means to show
    decided: DecisionsAt  # the page's decisions, this customer's at ``index``
    index: int

    @property
    def customer_id(self) -> str:
        return self.record.profile.id

    @property
    def assessment(self) -> AssessmentData:
        """The whole decision, its actions too (``tiering_core.DecisionColumns.row``)."""
        return self.decided[self.index]


@dataclass(frozen=True, slots=True)
class PageTasks:
    """What a page's commit records of the task budgets (``sync.taskbudget.record``)."""

    planned: list[str]  # customers planned
    admitted: dict[str, list[TaskAction]]  # bounded tasks admitted
    waiting: dict[str, list[TaskAction]]  # tasks that wait


@dataclass(frozen=True, slots=True)
class Advance:
    """A page read from the stream: the bookmark moves past it when it commits."""

    page: Page
    read_at: datetime


@dataclass(slots=True)
class Intake:
    """A page's records after duplicates and already-synced ties are set aside."""

    fresh: dict[str, CrmRecord] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)  # input hash per customer
    last: dict[str, CrmRecord] = field(default_factory=dict)  # by id, the last duplicate
