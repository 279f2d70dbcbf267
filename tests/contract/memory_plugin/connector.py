"""The in-memory CRM's connector: the connector contract over a ``Book``.

It shares ``InMemoryConnector`` (tests/sync/memory_crm.py) with the sync suite's purpose-
built CRMs, and keeps the whole contract so the contract suite runs it like the real ones:
an ordered, inclusive change stream in pages, one result per plan item in plan order, writes
in batches of ``write_batch`` (one call each), tasks made once by key (a held one left as it
is) and members upserted by key, per-record
failures as results, a checklist of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field

from connectors.calltally import CallCounter
from connectors.contract import (
    Capabilities,
    CrmRecord,
    Cursor,
    FieldUpdate,
    MembershipChange,
    Page,
    SchemaCheck,
    TaskClose,
    TaskUpsert,
    WritePlan,
    WriteResult,
)
from connectors.errors import ConfigError
from connectors.mapping import FieldMapping, WritebackConfig, profile_from_crm
from connectors.secrets import SecretRef
from connectors.settings import CrmSettings
from connectors.webhook_events import secrets_match
from tests.contract.memory_plugin.book import BOOKS, OWNER, Task
from tests.sync.memory_crm import InMemoryConnector

KIND = "memory"


class MemorySettings(CrmSettings):
    kind: Literal["memory"] = "memory"
    book: str
    token: SecretRef
    page_size: int = Field(20, ge=1, le=1000)
    write_batch: int = Field(25, ge=1, le=1000)


class MemoryConnector(InMemoryConnector):
    def __init__(
        self, settings: MemorySettings, mapping: FieldMapping, writeback: WritebackConfig
    ) -> None:
        book = BOOKS.get(settings.book)
        if book is None:
            raise ConfigError(f"crm.book: no in-memory CRM named {settings.book!r} is open")
        if not secrets_match(settings.token.get_secret_value(), book.token):
            raise ConfigError("crm.token: refused by the in-memory CRM")
        self.book = book
        self.mapping = mapping
        self.writeback = writeback
        self.calls = CallCounter()
        self.capabilities = Capabilities(
            crm=KIND,
            page_size=settings.page_size,
            max_write_batch=settings.write_batch,
            campaign_member_object="Membership",
            modstamp_resolution=timedelta(seconds=1),
        )

    def __repr__(self) -> str:
        return f"MemoryConnector(book={self.book.name!r})"

    # --- reads -----------------------------------------------------------------------------

    def _record(self, cid: str) -> CrmRecord:
        row = self.book.rows[cid]
        stamp = self.book.stamps[cid]
        profile, issues = profile_from_crm(
            cid, row, self.mapping, modified_at=stamp, owner_id=row.get(OWNER)
        )
        current = {out: row.get(field) for out, field in self.writeback.fields.items()}
        return CrmRecord(profile, stamp, current, issues)

    def read_changed(self, since: Cursor | None) -> Iterator[Page]:
        ids = [
            cid
            for cid in self.book.ordered()
            if since is None or Cursor(self.book.stamps[cid], cid) >= since
        ]
        size = self.capabilities.page_size
        for start in range(0, len(ids), size):
            self.calls.add("read")
            yield Page(tuple(self._record(cid) for cid in ids[start : start + size]))

    def fetch(self, ids: Sequence[str]) -> list[CrmRecord]:
        self.calls.add("fetch")
        with self.book.lock:
            return [self._record(cid) for cid in ids if cid in self.book.rows]

    # --- writes ----------------------------------------------------------------------------

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        return [
            *self._batched(plan.field_updates, self._field_update),
            *self._tasks(plan.tasks),
            *self._batched(plan.memberships, self._membership),
            *self._batched(plan.task_closes, self._task_close),
        ]

    def _batched(
        self, items: Sequence[Any], write: Callable[[Any], WriteResult]
    ) -> list[WriteResult]:
        out: list[WriteResult] = []
        batch = self.capabilities.max_write_batch
        for start in range(0, len(items), batch):
            self.calls.add("write")
            with self.book.lock:
                self.book.calls["write"] += 1
                out += [write(item) for item in items[start : start + batch]]
        return out

    def _tasks(self, tasks: Sequence[TaskUpsert]) -> list[WriteResult]:
        """A task the book holds under its key is left as it is and answers ok with no
        write, as every connector's must (docs/adding-a-crm.md): its fields are the RM's."""
        with self.book.lock:
            held = {t.task.dedupe_key for t in tasks if t.task.dedupe_key in self.book.tasks}
        made = self._batched([t for t in tasks if t.task.dedupe_key not in held], self._task)
        answers = {r.key: r for r in made}
        return [
            answers.get(t.task.dedupe_key) or WriteResult("task", t.task.dedupe_key, True)
            for t in tasks
        ]

    def _field_update(self, update: FieldUpdate) -> WriteResult:
        cid = update.customer_id
        if cid not in self.book.rows:
            return WriteResult("field_update", cid, False, "NOT_FOUND", "no such customer")
        targets = self.writeback.fields
        self.book.put(cid, {targets[k]: v for k, v in update.fields.items() if k in targets}, None)
        return WriteResult("field_update", cid, True)

    def _task(self, upsert: TaskUpsert) -> WriteResult:
        cid, task = upsert.customer_id, upsert.task
        if cid not in self.book.rows:
            return WriteResult("task", task.dedupe_key, False, "NOT_FOUND", "no such customer")
        owner = task.owner_id or self.writeback.queues.get(task.queue or "")
        self.book.tasks[task.dedupe_key] = Task(cid, task.subject, task.due.isoformat(), owner)
        return WriteResult("task", task.dedupe_key, True)

    def _membership(self, change: MembershipChange) -> WriteResult:
        campaign = self.writeback.campaigns.get(change.campaign)
        if campaign is None:
            return WriteResult(
                "membership", change.dedupe_key, False, "NO_CAMPAIGN", "campaign not mapped"
            )
        pair = (change.customer_id, campaign)
        if change.member:
            self.book.members.add(pair)
        else:
            self.book.members.discard(pair)
        return WriteResult("membership", change.dedupe_key, True)

    def _task_close(self, close: TaskClose) -> WriteResult:
        task = self.book.tasks.get(close.dedupe_key)
        if task is not None:
            task.open = False
        return WriteResult("task_close", close.dedupe_key, True, absent=task is None)

    # --- set-up ----------------------------------------------------------------------------

    def check(self) -> list[SchemaCheck]:
        """Reachable, and every mapped and write-back field is in the book's schema."""
        checks = [SchemaCheck("memory: connect", True, f"book {self.book.name}")]
        wanted = [
            *(("mapping " + path, field) for path, field in self.mapping.fields.items()),
            *(("write-back " + out, field) for out, field in self.writeback.fields.items()),
        ]
        for name, field in wanted:
            ok = field in self.book.fields
            checks.append(
                SchemaCheck(name, ok, field if ok else f"{field} missing", "" if ok else "add it")
            )
        return checks
