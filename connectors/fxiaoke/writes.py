"""Applying a write plan to FXiaoke, where every write is one record per call.

* Field updates: one ``/data/update`` per changed customer carrying only the fields the
  planner says differ (so N changed customers cost exactly N calls, 0 when none changed),
  with ``triggerWorkFlow: false`` so crmtier's own writes do not fire the workflow push
  that would bring them back as work. Calls run in a small thread pool; the client's
  per-endpoint limiter keeps them under 100 calls / 20 s. Refused updates are then looked
  into together for a lock (``locks.explain_refusals``: reads only when one was refused).
* Follow-up tasks and campaign memberships are records of their own objects with
  crmtier's deterministic dedupe key in an external-key field. FXiaoke has no upsert and no
  idempotency key (a replayed create duplicates), so existing records are looked up first,
  50 a query (``KEYS_PER_LOOKUP``), and a create that fails in transit is re-checked before
  it is tried again: reruns and dropped connections never duplicate a task or a
  membership. A task whose key FXiaoke holds is not written at all (``PlanWriter._tasks``).
  Members are looked up once, by campaign and customer (``campaigns.pair_records``), with
  crmtier's key among the fields: that finds crmtier's record of a pair and any a
  relationship manager added by hand, so a member by hand is a member (no second record is
  made) and is removed when crmtier removes the membership, with every other live record
  of the pair.

A per-record rejection is that item's failed ``WriteResult``; a failure of the call
itself (auth, quota, configuration, throttling that outlasts the retries) stops the plan
and raises, as the Connector contract says.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from connectors.calltally import carry
from connectors.contract import (
    FieldUpdate,
    MembershipChange,
    OwnerChange,
    TaskClose,
    TaskUpsert,
    WriteKind,
    WritePlan,
    WriteResult,
)
from connectors.errors import UNANSWERED, RecordError, TransientError
from connectors.fxiaoke.campaigns import (
    pair_records,
    removal_only_campaigns,
    skipped_removals,
)
from connectors.fxiaoke.client import FxiaokeClient, data_path
from connectors.fxiaoke.config import FxiaokeConfig
from connectors.fxiaoke.locks import explain_refusals
from connectors.fxiaoke.mapping import date_to_crm, value_to_crm
from connectors.fxiaoke.query import (
    CREATED,
    ID,
    KEYS_PER_LOOKUP,
    PAGE_LIMIT,
    asc,
    flt,
    rows_of,
    search_query_info,
)
from connectors.mapping import FieldMapping, WritebackConfig
from connectors.task_text import TaskTextLimits, fitted, report_cuts

log = logging.getLogger(__name__)
#: How many characters FXiaoke's 单行文本 and 多行文本 fields hold (字段类型说明,
#: help.fxiaoke.com): the follow-up's subject and description (``_task_text_limits``).
SINGLE_LINE, MULTI_LINE = 100, 2000
T = TypeVar("T")
_NO_WORKFLOW = {"triggerWorkFlow": False, "triggerApprovalFlow": False}


class _Stopped(Exception):
    """An item skipped because an earlier call of the plan failed as a whole."""


def ok(kind: WriteKind, key: str) -> WriteResult:
    return WriteResult(kind=kind, key=key, ok=True)


def failed(kind: WriteKind, key: str, exc: RecordError | TransientError) -> WriteResult:
    if isinstance(exc, RecordError):
        return WriteResult(kind, key, False, exc.code, str(exc), exc.retryable)
    return WriteResult(kind, key, False, UNANSWERED, str(exc), True)


class PlanWriter:
    def __init__(
        self,
        client: FxiaokeClient,
        config: FxiaokeConfig,
        mapping: FieldMapping,
        writeback: WritebackConfig,
    ) -> None:
        self._client = client
        self._cfg = config
        self._mapping = mapping
        self._writeback = writeback

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        updated = self._parallel(plan.field_updates, self._update_fields)
        return [
            *explain_refusals(self._client, self._mapping.object, updated),  # RECORD_LOCKED
            *self._tasks(plan.tasks),
            *self._memberships(plan.memberships),
            *self._close_tasks(plan.task_closes),
        ]

    # --- field updates --------------------------------------------------------------

    def _update_fields(self, item: FieldUpdate) -> WriteResult:
        data: dict[str, Any] = {}
        for output, value in item.fields.items():
            field = self._writeback.fields.get(output)
            if field is None:
                return WriteResult(
                    "field_update",
                    item.customer_id,
                    False,
                    "NOT_MAPPED",
                    f"writeback.fields has no CRM field for {output!r}",
                )
            data[field] = value_to_crm(output, value)
        if not data:
            return ok("field_update", item.customer_id)
        obj = self._mapping.object
        return self._write(
            "field_update",
            item.customer_id,
            lambda: self._client.call(
                data_path(obj, "update"),
                {
                    "skipDataStatusValidate": False,
                    "object_data": {"dataObjectApiName": obj, ID: item.customer_id, **data},
                    "details": {},
                },
                top=_NO_WORKFLOW,
                record_id=item.customer_id,
            ),
        )

    # --- owner changes --------------------------------------------------------------

    def change_owners(self, changes: Sequence[OwnerChange]) -> list[WriteResult]:
        """``changeOwner``, one record a call like every FXiaoke write (its answer is one
        outcome): the owner cannot be set through ``update`` ("变更负责人", CRM object API).
        A refusal is looked into for a lock as a field update's is (``explain_refusals``):
        a locked record's owner change is ``RECORD_LOCKED``, retried on a later run."""
        obj = self._mapping.object

        def change(item: OwnerChange) -> WriteResult:
            entry = {"objectDataId": item.customer_id, "ownerId": [item.owner_id]}
            return self._write(
                "field_update",
                item.customer_id,
                lambda: self._client.call(
                    data_path(obj, "changeOwner"),
                    {"dataObjectApiName": obj, "Data": [entry]},
                    record_id=item.customer_id,
                ),
            )

        return explain_refusals(self._client, obj, self._parallel(changes, change))

    # --- tasks ----------------------------------------------------------------------

    def _tasks(self, items: Sequence[TaskUpsert]) -> list[WriteResult]:
        """Create the tasks whose keys FXiaoke does not hold. A task it holds is left
        exactly as it is and answers ok with no write, as on Salesforce and Zoho
        (docs/operations.md, "Follow-up tasks: what they cost"): it is held only because an
        earlier send of it arrived (its key names the same customer, rule and period), and
        since then every field of it is the relationship manager's, owner and customer as
        much as subject, due date, priority and description, which the RM reschedules
        and writes the call's notes in. Cost: ceil(keys / 50) queries plus one create per
        absent key."""
        if not items:
            return []
        f = self._cfg.followup_fields
        obj = self._cfg.followup_object
        report_cuts(log, items, self._task_text_limits())
        existing = self._existing(obj, f.external_key, [i.task.dedupe_key for i in items])

        def create(item: TaskUpsert) -> WriteResult:
            key = item.task.dedupe_key
            if key in existing:
                return ok("task", key)
            wanted = self._task_fields(item)

            def landed() -> bool:  # re-checked by key
                return bool(self._existing(obj, f.external_key, [key]))

            return self._write("task", key, lambda: self._create(obj, key, wanted, landed))

        return self._once_per_key(items, lambda i: i.task.dedupe_key, create)

    def _task_text_limits(self) -> TaskTextLimits:
        """The follow-up's subject (its 主属性 ``name``, 单行文本) and description (多行文本)
        hold 100 and 2,000 characters (字段类型说明, help.fxiaoke.com): longer text is cut
        to fit, and said (``connectors.task_text``), so the task still reaches its owner
        rather than being refused whole (32000), as on Salesforce."""
        f = self._cfg.followup_fields
        return {"subject": (f.subject, SINGLE_LINE), "description": (f.description, MULTI_LINE)}

    def _task_fields(self, item: TaskUpsert) -> dict[str, Any]:
        task, f = item.task, self._cfg.followup_fields
        limits = self._task_text_limits()
        owner = task.owner_id or (self._writeback.queues.get(task.queue) if task.queue else None)
        return {
            f.external_key: task.dedupe_key,
            f.customer: item.customer_id,
            f.subject: fitted(task.subject, limits["subject"][1]),
            f.due: date_to_crm(task.due),
            f.priority: task.priority,
            f.queue: task.queue or "",
            f.description: fitted(task.description, limits["description"][1]),
            f.owner: [owner or self._cfg.open_user_id],
        }

    # --- campaign memberships -------------------------------------------------------

    def _memberships(self, items: Sequence[MembershipChange]) -> list[WriteResult]:
        if not items:
            return []
        f = self._cfg.campaign_member_fields
        obj = self._cfg.campaign_member_object
        campaigns = self._writeback.campaigns
        # One look-up by campaign and customer: crmtier's record of a pair (its key) and any
        # made by hand. A member by hand counts an add as made (no duplicate, as Salesforce's
        # DUPLICATE_VALUE); a removal (a sanctions hit's) invalidates it too.
        records = pair_records(self._live_rows, self._cfg, campaigns, items)
        # The start gate refuses an invalidated campaign that takes members: only removals
        # from one that takes none (memberships off, or add = false) can meet one, and only
        # a batch with such removals pays the campaigns' query.
        removals_only = removal_only_campaigns(self._writeback)
        binned = skipped_removals(self._client, removals_only, items) if removals_only else {}

        def change(item: MembershipChange) -> WriteResult:
            key = item.dedupe_key
            campaign_id = campaigns.get(item.campaign)
            if campaign_id is None:
                return WriteResult(
                    "membership",
                    key,
                    False,
                    "CAMPAIGN_NOT_MAPPED",
                    f"writeback.campaigns has no MarketingEventObj id for {item.campaign!r}",
                )
            rows = records.get((campaign_id, item.customer_id), [])
            if item.member:
                if rows:  # a member by hand is a member: no duplicate
                    self._keep_oldest(obj, [r for r in rows if r.get(f.external_key) == key])
                    return ok("membership", key)
                data = {
                    f.external_key: key,
                    f.campaign: campaign_id,
                    f.customer: item.customer_id,
                }

                def landed() -> bool:  # re-checked by pair, then by key
                    again = pair_records(self._live_rows, self._cfg, campaigns, [item])
                    return any(r.get(f.external_key) == key for v in again.values() for r in v)

                return self._write("membership", key, lambda: self._create(obj, key, data, landed))
            if not rows:
                return ok("membership", key)
            if item.campaign in binned:
                return WriteResult(
                    "membership", key, False, "CAMPAIGN_INVALIDATED", binned[item.campaign]
                )
            ids = sorted({str(r[ID]) for r in rows})
            results = [self._invalidate("membership", obj, key, r) for r in ids]
            return next((r for r in results if not r.ok), results[0])

        return self._once_per_key(items, lambda i: i.dedupe_key, change)

    # --- task closures --------------------------------------------------------------

    def _close_tasks(self, items: Sequence[TaskClose]) -> list[WriteResult]:
        """Withdraw crmtier's follow-ups: the follow-up object is a custom object with no
        standard status, so a withdrawn task is invalidated (作废), as a removed membership
        is; its record stays, out of every list of live follow-ups. A key with no live
        record has nothing to do, no write: already withdrawn, or absent (no record at all,
        asked once more, a query per 50 such keys), which it answers ``absent``."""
        if not items:
            return []
        obj, key_field = self._cfg.followup_object, self._cfg.followup_fields.external_key
        existing = self._existing(obj, key_field, [i.dedupe_key for i in items])
        missing = sorted({i.dedupe_key for i in items} - set(existing))
        withdrawn = self._withdrawn(obj, key_field, missing)

        def close(item: TaskClose) -> WriteResult:
            key = item.dedupe_key
            found = existing.get(key)
            if found is None:  # an absent one's making still under way may land later
                return WriteResult("task_close", key, True, absent=key not in withdrawn)
            return self._invalidate("task_close", obj, key, str(found[ID]))

        return self._once_per_key(items, lambda i: i.dedupe_key, close)

    # --- shared ---------------------------------------------------------------------

    def _invalidate(self, kind: WriteKind, obj: str, key: str, record_id: str) -> WriteResult:
        """作废 (invalidate, ``/cgi/crm/v2/data/invalid``): FXiaoke's removal of a record
        (life_status becomes "invalid"); a hard delete needs a second call."""
        return self._write(
            kind,
            key,
            lambda: self._client.call(
                data_path(obj, "invalid"),
                {"dataObjectApiName": obj, "object_data_id": record_id},
                record_id=key,
            ),
        )

    def _existing(self, obj: str, key_field: str, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Live records of ``obj`` by external key (50 keys per query, paged by ``_id``),
        with the key and creation time: every field used here is projected by name, since
        what an empty ``fieldProjection`` returns is undocumented. Should a key exist
        twice, the oldest record is kept and the others invalidated (``_keep_oldest``). A
        row without its key is not grouped at all: it cannot be told apart from the others."""
        rows_by_key: dict[str, list[dict[str, Any]]] = {}
        unique = sorted(set(keys))
        fields = [ID, CREATED, key_field]
        for start in range(0, len(unique), KEYS_PER_LOOKUP):
            chunk = unique[start : start + KEYS_PER_LOOKUP]
            for row in self._live_rows(obj, [flt(key_field, "IN", *chunk)], fields):
                key = row.get(key_field)
                if key is not None:
                    rows_by_key.setdefault(str(key), []).append(row)
        return {key: self._keep_oldest(obj, rows) for key, rows in rows_by_key.items()}

    def _keep_oldest(self, obj: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """The oldest of ``rows`` (records of one key), the others invalidated: a second
        record of a key is a create that arrived although its answer was lost, or two runs
        racing, and heals on the next write instead of piling up. ``rows`` may be empty
        (a member only by hand): nothing to keep, nothing retired."""
        rows = sorted(rows, key=lambda r: (r.get(CREATED) or 0, str(r[ID])))
        for extra in rows[1:]:
            self._retire(obj, str(extra[ID]))
        return rows[0] if rows else {}

    def _withdrawn(self, obj: str, key_field: str, keys: Sequence[str]) -> set[str]:
        """The keys among ``keys`` with an invalidated (作废) record of ``obj``."""
        found: set[str] = set()
        for start in range(0, len(keys), KEYS_PER_LOOKUP):
            chunk = keys[start : start + KEYS_PER_LOOKUP]
            invalid = [flt(key_field, "IN", *chunk), flt("life_status", "EQ", "invalid")]
            found.update(str(r.get(key_field)) for r in self._rows(obj, invalid, [ID, key_field]))
        return found

    def _live_rows(
        self, obj: str, filters: list[dict[str, Any]], fields: Sequence[str]
    ) -> list[dict[str, Any]]:
        return self._rows(obj, [*filters, flt("life_status", "N", "invalid")], fields)

    def _rows(
        self, obj: str, filters: list[dict[str, Any]], fields: Sequence[str]
    ) -> list[dict[str, Any]]:
        """The rows of ``obj`` these filters match, paged by ``_id``."""
        rows: list[dict[str, Any]] = []
        after: list[dict[str, Any]] = []
        while True:
            answer = self._client.call(
                data_path(obj, "query"),
                {
                    "dataObjectApiName": obj,
                    "find_explicit_total_num": False,
                    "search_query_info": search_query_info(
                        [*filters, *after],
                        [asc(ID)],
                        fields,
                    ),
                },
            )
            page = [dict(row) for row in rows_of(answer)]
            rows += page
            if len(page) < PAGE_LIMIT:
                return rows
            after = [flt(ID, "GT", page[-1][ID])]

    def _retire(self, obj: str, record_id: str) -> None:
        try:
            self._client.call(
                data_path(obj, "invalid"),
                {"dataObjectApiName": obj, "object_data_id": record_id},
                record_id=record_id,
            )
        except (RecordError, TransientError) as exc:  # the next write tries again
            log.warning("fxiaoke duplicate not invalidated", extra={"error": type(exc).__name__})
            return
        log.warning("fxiaoke duplicate invalidated", extra={"object": obj})

    def _create(self, obj: str, key: str, data: dict[str, Any], landed: Callable[[], bool]) -> None:
        """Create once: after a create lost in transit, ``landed`` asks whether it arrived
        (a task by its key, a member by its pair and key) before it is retried."""
        last: TransientError | None = None
        for _ in range(self._cfg.max_attempts):
            if last is not None and landed():
                return
            try:
                self._client.call(
                    data_path(obj, "create"),
                    {"object_data": {"dataObjectApiName": obj, **data}},
                    top=_NO_WORKFLOW,
                    record_id=key,
                    replay_safe=False,
                )
                return
            except TransientError as exc:
                last = exc
        assert last is not None
        raise last

    def _write(self, kind: WriteKind, key: str, call: Callable[[], object]) -> WriteResult:
        try:
            call()
        except (RecordError, TransientError) as exc:
            return failed(kind, key, exc)
        return ok(kind, key)

    def _parallel(self, items: Sequence[T], one: Callable[[T], WriteResult]) -> list[WriteResult]:
        """Run ``one`` over ``items`` on a small pool; results in item order. The first
        call-level failure (auth, quota, config, throttling) stops every item not yet
        started, so at most the calls already in flight follow it, and is then raised."""
        if len(items) <= 1 or self._cfg.write_concurrency == 1:
            return [one(item) for item in items]
        stop = threading.Event()

        def guarded(item: T) -> WriteResult:
            if stop.is_set():
                raise _Stopped
            try:
                return one(item)
            except BaseException:
                stop.set()
                raise

        with ThreadPoolExecutor(
            max_workers=self._cfg.write_concurrency, thread_name_prefix="fxiaoke-write"
        ) as pool:
            futures = [pool.submit(carry(guarded), item) for item in items]
        failures = [f.exception() for f in futures if f.exception() is not None]
        first = next((e for e in failures if not isinstance(e, _Stopped)), None)
        if first is not None:
            raise first
        return [future.result() for future in futures]

    def _once_per_key(
        self,
        items: Sequence[T],
        key: Callable[[T], str],
        one: Callable[[T], WriteResult],
    ) -> list[WriteResult]:
        """Items repeating a dedupe key within one plan are written once (a second create
        of the same key would duplicate it); every repeat reports the first one's result."""
        first: dict[str, T] = {}
        for item in items:
            first.setdefault(key(item), item)
        unique = list(first.values())
        results = dict(zip(first, self._parallel(unique, one), strict=True))
        return [results[key(item)] for item in items]
