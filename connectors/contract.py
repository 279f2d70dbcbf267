"""The connector contract: the one narrow seam between the sync layer and a CRM.

A connector is anything with these few methods (a Protocol, not a base class, in the
spirit of httpx's one-method transport): read changed customers as pages of canonical
profiles, fetch customers by id, apply a write plan and report per-item results, check the
CRM's setup, and report API usage. Everything vendor-specific stays behind it; what crosses
it is ``tiering_core`` models and the small value types below.

What a CRM can do differently is *data* (``Capabilities``), so the sync layer and the
contract test suite branch on capabilities, never on the CRM's name.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from tiering_core.models import CustomerProfile, DQIssue, TaskAction

if TYPE_CHECKING:
    from tiering_core.rules.household import Link


@dataclass(frozen=True, order=True)
class Cursor:
    """A position in the change stream: records are ordered by (modstamp, id). Reads are
    inclusive (``>= modstamp``) and the id breaks ties, so records sharing a timestamp at a
    page boundary are neither missed nor repeated."""

    modstamp: datetime
    id: str


@dataclass(frozen=True)
class CrmRecord:
    """One customer as read from the CRM.

    ``current`` holds the CRM's present values of the write-back fields, keyed by canonical
    output name (``value_tier``, ``reasons``, ...), so the planner writes only what differs.
    ``dq_issues`` are mapping-level findings (a field of the wrong type is dropped and
    reported here, never fails the page)."""

    profile: CustomerProfile
    modstamp: datetime
    current: Mapping[str, Any] = field(default_factory=dict)
    dq_issues: tuple[DQIssue, ...] = ()

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.modstamp, self.profile.id)


@dataclass(frozen=True)
class Page:
    records: tuple[CrmRecord, ...]

    @property
    def cursor(self) -> Cursor | None:
        """Position of the last record: a bookmark that resumes with at most this page re-read."""
        return self.records[-1].cursor if self.records else None


@dataclass(frozen=True)
class FieldUpdate:
    """Set write-back fields on one customer; keys are canonical output names."""

    customer_id: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class TaskUpsert:
    """Create-or-update a follow-up task, keyed by ``task.dedupe_key`` as external id.
    ``resend``: an earlier call of this task may have reached the CRM unanswered (a retry
    after a timeout, an interrupted run's write, a task in doubt planned again), so the CRM
    may hold it already and a relationship manager may have worked it since. A task sent
    again whose key the CRM holds is not written at all (it answers ok): its owner, related
    record, status, subject, due date, priority and description are the RM's; only an absent
    key is created (the contract suite's "a held task is not rewritten"). A first send may
    create without looking."""

    customer_id: str
    task: TaskAction
    resend: bool = False


@dataclass(frozen=True)
class MembershipChange:
    """Add (``member``) or remove a customer from the campaign with this stable key."""

    customer_id: str
    campaign: str
    member: bool
    dedupe_key: str


@dataclass(frozen=True)
class TaskClose:
    """Close (withdraw) a task crmtier made earlier, found by its external id
    ``dedupe_key``: the customer's situation no longer allows it (a sanctions hit ends
    every sales task). ``rule`` is the task rule that made it, for the CRM's record."""

    customer_id: str
    dedupe_key: str
    rule: str


@dataclass(frozen=True)
class OwnerChange:
    """Make CRM user ``owner_id`` the owner of customer ``customer_id`` (advisor coverage,
    for a bank that opts in to direct owner changes: docs/policy.md)."""

    customer_id: str
    owner_id: str


@dataclass(frozen=True)
class WritePlan:
    field_updates: tuple[FieldUpdate, ...] = ()
    tasks: tuple[TaskUpsert, ...] = ()
    memberships: tuple[MembershipChange, ...] = ()
    task_closes: tuple[TaskClose, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.field_updates or self.tasks or self.memberships or self.task_closes)

    def __len__(self) -> int:
        return (
            len(self.field_updates)
            + len(self.tasks)
            + len(self.memberships)
            + len(self.task_closes)
        )


WriteKind = Literal["field_update", "task", "membership", "task_close"]


@dataclass(frozen=True)
class WriteResult:
    """Outcome of one plan item. ``key`` is the customer id for a field update and the
    dedupe key for a task, a task closure or a membership. A failed item says whether a
    retry may help. ``absent``: a task closure answered ok because the CRM held no record
    under the key (nothing was closed), told apart from one it closed or found closed: a
    task whose making went unanswered may still land after that look-up, so it stays in
    doubt on record (``sync.effect_rows``) and a later closure looks for it again."""

    kind: WriteKind
    key: str
    ok: bool
    error_code: str | None = None
    message: str | None = None
    retryable: bool = False
    absent: bool = False


#: The name every rights line of ``check()`` starts with (docs/targets.md S6); ``doctor`` adds a
#: "not verified" line only when a connector has none. ``RIGHTS_DOC`` explains the set-up.
RIGHTS_CHECK = "integration user rights"
RIGHTS_DOC = "docs/admin-setup.md"
#: The name of the ``crmtier doctor`` line on what households need in the CRM (``HouseholdReads``).
HOUSEHOLDS_CHECK = "households"


@dataclass(frozen=True)
class SchemaCheck:
    """One line of ``crmtier doctor``'s checklist."""

    name: str
    ok: bool
    detail: str = ""
    fix: str = ""
    severity: Literal["error", "warning"] = "error"


#: The fewest calls one bulk job takes: create it, upload its data, close it, read its
#: state once (Salesforce Bulk API 2.0 ingest; failed rows cost one more read).
BULK_JOB_CALLS = 4

#: Call kinds that fetch a token rather than data (the names the clients count them by).
AUTH_CALL_KINDS = frozenset({"oauth_token", "token"})


def data_calls(calls: Mapping[str, int]) -> int:
    """Calls that read or write data: what docs/targets.md P1's minimum is compared with."""
    return sum(n for kind, n in calls.items() if kind not in AUTH_CALL_KINDS)


@dataclass(frozen=True)
class ApiUsage:
    """Calls this connector made (by kind), and the CRM's allowance when it reports one."""

    calls: Mapping[str, int]
    allowance_used: int | None = None
    allowance_limit: int | None = None

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@dataclass(frozen=True)
class Capabilities:
    """What this CRM can do, as data the sync layer and the contract suite branch on."""

    crm: str
    page_size: int
    max_write_batch: int  # records per write call (1 for FXiaoke)
    # Field updates of one run above which the CRM's bulk path is used (one apply() then
    # carries them all), and at most how many one bulk job takes. The sync engine collects
    # a run's field updates across pages for it, since a page holds at most page_size.
    bulk_threshold: int | None = None
    bulk_batch: int = 10_000
    webhook_kind: Literal["outbound_message", "notification_channel", "workflow_push"] | None = None
    campaign_member_object: str | None = None
    max_query_offset: int | None = None
    # Plan items one apply() should carry when writes go one record per call: the
    # connector shares its lookups (existing tasks/memberships by dedupe key) across a plan
    # (FXiaoke: 50). None means max_write_batch.
    plan_batch: int | None = None
    # Write kinds that cost one call per customer and direction whatever the batch size
    # (Zoho: campaign memberships go through each contact's Campaigns related list).
    per_customer_kinds: frozenset[WriteKind] = frozenset()
    # Write kinds whose keys are looked up before they are written, whatever the plan, and
    # how many keys one look-up takes (Zoho tasks: a COQL query, whose ``in`` takes 50
    # values, since Zoho has no upsert for Tasks). The minimum counts those look-ups too.
    lookup_batch: Mapping[str, int] = field(default_factory=dict)
    # The precision of the CRM's modification stamps: two changes within one such tick
    # carry the same stamp (Zoho and Salesforce: 1 s; FXiaoke: epoch milliseconds).
    modstamp_resolution: timedelta = timedelta(milliseconds=1)
    # Processes that can each hold their own login on one set of the CRM's credentials at
    # once (Zoho: 15 live access tokens per refresh token, the 16th invalidating the oldest);
    # ``crmtier worker`` and ``serve`` warn at start above it. None: no such limit.
    processes_per_credential: int | None = None

    def minimum_calls(
        self, reads: int, items: Mapping[str, int], customers: Mapping[str, int]
    ) -> dict[str, int]:
        """docs/targets.md P1: the fewest calls for this work — ``reads`` records in full pages,
        ``items`` written per kind in full write batches, or one call per customer (and
        direction) for a per-customer kind, whose counts ``customers`` gives; plus a kind's
        look-ups in full look-ups where the CRM needs them (``lookup_batch``)."""
        batch = max(1, self.max_write_batch)
        out = {"read": math.ceil(reads / max(1, self.page_size))}
        for kind, n in items.items():
            if kind in self.per_customer_kinds:
                out[kind] = customers.get(kind, n)
            elif kind == "field_update" and self.bulk_threshold is not None:
                out[kind] = self._field_minimum(n, batch, self.bulk_threshold)
            else:
                out[kind] = math.ceil(n / batch)
            if kind in self.lookup_batch:
                out[kind] += math.ceil(n / max(1, self.lookup_batch[kind]))
        return out

    @property
    def bulk_job(self) -> int:
        """Field updates per full bulk job: ``bulk_batch``, yet always above the threshold."""
        return max(self.bulk_batch, (self.bulk_threshold or 0) + 1)

    def _field_minimum(self, n: int, batch: int, threshold: int) -> int:
        """``n`` field updates as the sync engine sends them on a CRM with a bulk path:
        full ``bulk_job`` jobs, then the rest as one more job when above the threshold,
        else in write batches."""
        if n <= threshold:
            return math.ceil(n / batch)
        full, rest = divmod(n, self.bulk_job)
        last = BULK_JOB_CALLS if rest > threshold else math.ceil(rest / batch)
        return full * BULK_JOB_CALLS + last


@runtime_checkable
class Connector(Protocol):
    capabilities: Capabilities

    def read_changed(self, since: Cursor | None) -> Iterator[Page]:
        """Customers with (modstamp, id) >= ``since`` (all when None), in that order, paged."""
        ...

    def fetch(self, ids: Sequence[str]) -> list[CrmRecord]:
        """Current records for these ids (missing ids are left out)."""
        ...

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        """Apply the plan with the fewest calls; one result per plan item, in plan order
        (field updates, tasks, memberships, task closures).
        Per-record failures are results, not exceptions; an exception means the call itself
        failed (auth, quota, configuration) and no result of that call is known."""
        ...

    def check(self) -> list[SchemaCheck]:
        """Connectivity, auth, mapped fields and their types, write-back targets, rights."""
        ...

    def api_usage(self) -> ApiUsage: ...

    def close(self) -> None: ...


@runtime_checkable
class OwnerWrites(Protocol):
    """A connector that can change customer owners (each CRM's own way: Salesforce
    ``OwnerId`` by sObject Collections, Zoho ``Owner`` by Update Records, FXiaoke
    ``changeOwner``). Outside ``Connector``: only advisor coverage needs it."""

    def change_owners(self, changes: Sequence[OwnerChange]) -> list[WriteResult]:
        """One ``field_update`` result per change, keyed by customer id, in order;
        per-record refusals are results, as in ``Connector.apply``."""
        ...


@runtime_checkable
class UserDirectory(Protocol):
    """A connector that reads relationship managers' capacities from the CRM's users (a
    custom user field: Salesforce ``User``, Zoho Users API). Outside ``Connector``: only
    advisor coverage needs it."""

    def read_users(self, capacity_field: str) -> list[dict[str, Any]]:
        """``{"id", "active", "capacity"}`` (capacity as the CRM holds it) of every user
        whose ``capacity_field`` holds a value: the RMs; other users are not read."""
        ...


@runtime_checkable
class ReadContext(Protocol):
    """A connector whose writes use what its reads learnt besides the records (Salesforce:
    each Person Account's Person Contact, which a campaign membership names). A page read
    in one process and written in another (a re-tier spread over workers) carries it, so
    the writer makes no look-up call the reader did not need. Outside ``Connector``: only
    connectors that learn such things have it."""

    def read_context(self, ids: Sequence[str]) -> dict[str, Any]:
        """What the reads learnt about these records (JSON), as far as it is still known."""
        ...

    def adopt_read_context(self, context: Mapping[str, Any]) -> None:
        """Take in what another process's reads learnt (``read_context``)."""
        ...


@runtime_checkable
class HouseholdReads(Protocol):
    """A connector that reads the CRM's households (``sync.households``). Outside
    ``Connector``: only a policy with ``[households] enabled`` needs it. Reading households
    needs set-up in the CRM beyond the mapped fields (docs/households.md), which
    ``household_check`` verifies before the sync relies on it."""

    def household_links(
        self, customers: Collection[str], households: Collection[str]
    ) -> list[Link]:
        """Every link of each household holding one of ``customers`` or being one of
        ``households``, all members included, in a few bulk reads."""
        ...

    def household_check(self) -> SchemaCheck:
        """One ``HOUSEHOLDS_CHECK`` line, in one cheap call: whether the CRM lets crmtier
        read households, and if not, the one thing to set up. A refusal by the CRM is the
        line (``ok`` False); a failure to reach it raises ``ConnectorError`` as any call."""
        ...


@runtime_checkable
class WritePrerequisites(Protocol):
    """A connector whose write kinds need set-up in the CRM beyond the mapped fields, which
    the first write of that kind would otherwise meet in the middle of a run, after other
    kinds were written (Zoho: the OAuth scopes of the task key look-up and of the related
    lists a membership write reads first). Outside ``Connector``: a CRM with no such
    prerequisite does not implement it. ``sync.write_readiness`` asks it before a sync or
    a server starts; ``crmtier doctor`` prints the same lines."""

    def write_checks(self, kinds: Collection[WriteKind]) -> list[SchemaCheck]:
        """One line per prerequisite of these write kinds, each made with at most one cheap
        call, and nothing (no call) for a kind not asked for. A refusal by the CRM is the
        line (``ok`` False) with its fix; a failure to reach it raises ``ConnectorError``."""
        ...


@runtime_checkable
class SharedLogin(Protocol):
    """A connector whose logins the CRM caps per set of credentials
    (``Capabilities.processes_per_credential``). Outside ``Connector``: a CRM without such
    a cap does not implement it."""

    def login_secret(self) -> bytes:
        """The credential the cap is counted on (Zoho: the refresh token). Only ever
        turned into a keyed fingerprint (``sync.tasks.logins.login_fingerprint``), never
        stored, logged or compared in the clear."""
        ...
