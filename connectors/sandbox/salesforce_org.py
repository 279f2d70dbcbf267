"""The sandbox org's data layer: SOQL execution over the store, and the org's state.

Transport-free on purpose: the REST routes (``salesforce_rest.py``) and Bulk API 2.0 jobs
(``salesforce_bulk.py``) both read and save through ``SalesforceOrg``. The save semantics
(per-record results, ``allOrNone``, the integration user's rights, locks, the indexes) are
``OrgSaves``'s in ``salesforce_saves.py``; this module holds the state, the integration
user's ``IntegrationRights`` (which also answer its ``UserPermissionAccess`` query) and the
reads: change scans streamed in modstamp order, look-ups by id or external key, paging.

What the ``query`` resource hides and ``queryAll`` (``Query.all_rows``) shows: archived
Tasks ("You cannot use query() as it automatically filters out all records where isArchived
is set to true", SOAP API Developer Guide, "Archived Activities", developer.salesforce.com/
docs/atlas.en-us.api.meta/api/sforce_api_guidelines_archive.htm) and deleted ones, kept in
the Recycle Bin (``salesforce_index.RECYCLE_BIN``) with ``IsDeleted`` true.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from connectors.mapping import DefaultMapping
from connectors.sandbox.salesforce_index import RECYCLE_BIN, SaveIndex
from connectors.sandbox.salesforce_saves import OrgSaves
from connectors.sandbox.salesforce_schema import (
    EXTERNAL_KEY_FIELD,
    TASK_STATUSES,
    build_schema,
    user_permission_access,
)
from connectors.sandbox.salesforce_soql import Query, SoqlError
from connectors.sandbox.salesforce_specs import IntegrationRights, ObjectSpec
from connectors.sandbox.salesforce_wire import INTEGRATION_USER_ID, sf_datetime
from connectors.sandbox.store import RecordStore

Position = tuple[datetime, str]
_SCAN_CHUNK = 2000
_STREAM_ORDERS = ((), (("SystemModstamp", False),), (("SystemModstamp", False), ("Id", False)))
#: "Tasks with an IsClosed value of true and an ActivityDate value greater than or equal to
#: 365 days old" are archived, or with a blank ActivityDate and created that long ago
#: ("Archived Activities", cited in the module docstring)
ARCHIVE_AFTER = timedelta(days=365)


class QueryFieldError(SoqlError):
    """A field the object does not have: Salesforce's ``INVALID_FIELD``."""


class UnknownObjectError(SoqlError):
    """An sObject the org does not have: Salesforce's ``INVALID_TYPE``."""


@dataclass
class PageState:
    """Where the next page of a query starts: after ``after`` (streamed queries) or at row
    ``emitted`` of a materialised result."""

    after: Position | None
    emitted: int


class SalesforceOrg(OrgSaves):
    def __init__(
        self,
        store: RecordStore,
        mapping: DefaultMapping,
        *,
        accounts_as_members: bool = True,
        multiple_accounts: bool = True,
        person_accounts: bool = True,
        on_change: Callable[[str, dict[str, Any]], None] | None = None,
        rights: IntegrationRights | None = None,
    ) -> None:
        self.store = store
        self.mapping = mapping
        self.customer_object = mapping.mapping.object
        self.accounts_as_members = accounts_as_members
        #: Contacts to Multiple Accounts: without it the org has no AccountContactRelation
        self.multiple_accounts = multiple_accounts
        #: Person Accounts enabled: without them Account has no IsPersonAccount or
        #: PersonContactId (the customers are stored alike; only the API's view differs)
        self.person_accounts = person_accounts
        self._lock = threading.RLock()
        self.schema: dict[str, ObjectSpec] = {}
        #: query-only objects answered from the org's settings, not from stored rows
        self.virtual: dict[str, ObjectSpec] = {}
        self.task_statuses = dict(TASK_STATUSES)
        self.rights = rights or IntegrationRights()
        self.on_change = on_change
        self.locks: dict[str, int] = {}
        self.read_only = False  # planned maintenance: ``SalesforceSandbox.read_only_mode``
        self.index = SaveIndex(store, self.customer_object, self._lock)

    # --- the integration user's rights ----------------------------------------------------

    @property
    def rights(self) -> IntegrationRights:
        return self._rights

    @rights.setter
    def rights(self, rights: IntegrationRights) -> None:
        """Re-grant the integration user: ``describe``, writes, deletes and
        ``UserPermissionAccess`` all follow from the next call on. Fields created since
        (Metadata API) are kept as they are."""
        with self._lock:
            self._rights = rights
            schema = build_schema(
                self.mapping,
                accounts_as_members=self.accounts_as_members,
                multiple_accounts=self.multiple_accounts,
                person_accounts=self.person_accounts,
                rights=rights,
                task_statuses=self.task_statuses,
            )
            for name, old in self.schema.items():
                for field_name, spec in old.fields.items():
                    if name in schema:
                        schema[name].fields.setdefault(field_name, spec)
            self.schema = schema
            self.virtual = {"UserPermissionAccess": user_permission_access(rights)}

    def archive_activities(self, today: date) -> int:
        """What the org's archival background process does on ``today``: every closed Task
        whose ActivityDate (or, blank, its creation) is ``ARCHIVE_AFTER`` old or more gets
        ``IsArchived`` (``query`` stops returning it). How many were archived."""
        cutoff = today - ARCHIVE_AFTER
        archived = 0
        with self._lock, self.store.transaction():
            for rid, modstamp, data in list(self.store.scan("Task")):
                view = self.view(rid, modstamp, data)
                when = str(data.get("ActivityDate") or data.get("CreatedDate") or "")[:10]
                old = bool(when) and date.fromisoformat(when) <= cutoff
                if view["IsClosed"] and old and not view["IsArchived"]:
                    self.store.merge("Task", rid, {"IsArchived": True}, modstamp=modstamp)
                    archived += 1
        return archived

    def add_task_status(self, label: str, *, closed: bool) -> None:
        """What an admin does in Setup: a Task Status value of the org's own, closed or
        not (TaskStatus.IsClosed). A Task's ``IsClosed`` follows it from the next read."""
        with self._lock:
            self.task_statuses[label] = closed
            self.rights = self._rights  # rebuilds the schema: Status's picklist

    def _virtual_views(self) -> list[dict[str, Any]]:
        """The rows of the query-only ``UserPermissionAccess``: one, the running user's. Its
        ``Id`` only feeds ``attributes.url`` (our reading: the object reference lists no Id
        field, so crmtier never selects it)."""
        return [
            {
                "Id": INTEGRATION_USER_ID,
                "LastCacheUpdate": datetime.now(UTC),
                **self._rights.permissions(),
            }
        ]

    # --- reading ------------------------------------------------------------------------

    def get(self, obj: str, rid: str) -> dict[str, Any] | None:
        found = self.store.get(obj, rid)
        return self.view(rid, *found) if found else None

    def render(
        self, obj: str, view: Mapping[str, Any], fields: tuple[str, ...], version: str
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {
                "type": obj,
                "url": f"/services/data/v{version}/sobjects/{obj}/{view['Id']}",
            }
        }
        for name in fields:
            value = view.get(name)
            out[name] = sf_datetime(value) if isinstance(value, datetime) else value
        return out

    def check_query(self, query: Query) -> None:
        spec = self.schema.get(query.sobject) or self.virtual.get(query.sobject)
        if spec is None:
            raise UnknownObjectError(
                f"sObject type '{query.sobject}' is not supported. If you are attempting to "
                "use a custom object, be sure to append the '__c' after the entity name."
            )
        names = [*query.fields, *(f for f, _ in query.order_by), *_where_fields(query.where)]
        for name in names:
            if name not in spec.fields:
                raise QueryFieldError(
                    f"No such column '{name}' on entity '{query.sobject}'. If you are "
                    "attempting to use a custom field, be sure to append the '__c' after the "
                    "custom field name."
                )

    def page(
        self, query: Query, start: PageState, size: int
    ) -> tuple[list[dict[str, Any]], PageState | None]:
        """One page of ``query`` from ``start``, and where the next one starts (None: done)."""
        remaining = None if query.limit is None else max(query.limit - start.emitted, 0)
        want = size if remaining is None else min(size, remaining)
        ids = self._indexed_ids(query)
        if self._streams(query, ids):
            rows: list[dict[str, Any]] = []
            more = False
            for view in self._stream(query, start.after):
                if len(rows) == want:
                    more = True
                    break
                rows.append(view)
            nxt = None
            if more and rows:
                last = rows[-1]
                nxt = PageState((last["SystemModstamp"], last["Id"]), start.emitted + len(rows))
            return rows, nxt
        matched = self._materialise(query, ids)
        rows = matched[start.emitted : start.emitted + want]
        end = start.emitted + len(rows)
        capped = query.limit is not None and end >= query.limit
        return rows, (PageState(None, end) if end < len(matched) and not capped else None)

    def count(self, query: Query) -> int:
        """``totalSize``: exact for lookups; for change scans, the rows at or after the
        modstamp floor (what Salesforce reports too is the size of the whole result)."""
        ids = self._indexed_ids(query)
        if self._streams(query, ids):
            total = self.store.count(query.sobject, since=query.modstamp_floor())
        else:
            total = len(self._materialise(query, ids))
        return total if query.limit is None else min(total, query.limit)

    def _stream(self, query: Query, after: Position | None) -> Iterator[dict[str, Any]]:
        floor = query.modstamp_floor()
        while True:
            rows = list(self.store.scan(query.sobject, since=floor, after=after, limit=_SCAN_CHUNK))
            for rid, modstamp, data in rows:
                after = (modstamp, rid)
                view = self.view(rid, modstamp, data)
                if query.matches(view):
                    yield view
            if len(rows) < _SCAN_CHUNK:
                return

    def _streams(self, query: Query, ids: list[str] | None) -> bool:
        """Whether ``query`` is answered by scanning the store in modstamp order, a chunk at
        a time, rather than by materialising and sorting every match (``ids`` are its
        ``_indexed_ids``)."""
        return (
            ids is None
            and query.sobject not in self.virtual
            and query.sobject != "Task"  # rows ``query`` hides or ``queryAll`` adds: counted
            and query.order_by in _STREAM_ORDERS
        )

    def _materialise(self, query: Query, ids: list[str] | None) -> list[dict[str, Any]]:
        """Every row ``query`` matches, sorted; ``ids`` are its ``_indexed_ids``."""
        if ids is not None:
            found = self.store.get_many(query.sobject, ids)
            views = [self.view(rid, ms, data) for rid, (ms, data) in found.items()]
        elif query.sobject in self.virtual:
            views = self._virtual_views()
        else:
            views = [self.view(r, m, d) for r, m, d in self.store.scan(query.sobject)]
        if query.all_rows and query.sobject == "Task":
            binned = (
                self.store.get_many(RECYCLE_BIN, ids).items()
                if ids is not None
                else ((r, (m, d)) for r, m, d in self.store.scan(RECYCLE_BIN))
            )
            views += [{**self.view(rid, ms, data), "IsDeleted": True} for rid, (ms, data) in binned]
        else:
            views = [v for v in views if not v.get("IsArchived")]
        rows = [v for v in views if query.matches(v)]
        for name, desc in reversed(query.order_by or (("SystemModstamp", False), ("Id", False))):
            rows.sort(key=_sort_key(name), reverse=desc)
        return rows

    def _indexed_ids(self, query: Query) -> list[str] | None:
        """The ids an index gives for this query (``Id IN``, crmtier's external key); None
        when only a scan (or, for a virtual object, its computed views) can answer it."""
        if query.sobject in self.virtual:
            return None
        ids = query.id_set()
        return ids if ids is not None else self._ids_by_external_key(query)

    def _ids_by_external_key(self, query: Query) -> list[str] | None:
        """Ids for a look-up by crmtier's external key (``Crmtier_Key__c IN (...)`` on Task or
        CampaignMember), from the index the saves keep: a real org answers these from its
        external-id index too, and a scan made a 100k-customer sync quadratic."""
        keys = query.values_of(EXTERNAL_KEY_FIELD)
        spec = self.schema.get(query.sobject)
        key_field = spec.fields.get(EXTERNAL_KEY_FIELD) if spec is not None else None
        if keys is None or key_field is None or not key_field.unique:
            return None  # a key that is not Unique may be on several records: a scan finds each
        with self._lock:
            index = self.index.ext().get(query.sobject)
            if index is None:
                return None
            ids = [index[k] for k in keys if k in index]
            if query.all_rows and query.sobject == "Task":
                binned = self.index.recycle_bin()
                ids += [binned[k] for k in keys if k in binned]
            return ids


def _sort_key(name: str) -> Callable[[Mapping[str, Any]], tuple[bool, str]]:
    """Nulls last, values compared as text (enough for ids, dates and picklists)."""

    def key(view: Mapping[str, Any]) -> tuple[bool, str]:
        value = view.get(name)
        if isinstance(value, datetime):
            return (False, value.isoformat())
        return (value is None, "" if value is None else str(value))

    return key


def _where_fields(node: Any) -> Iterator[str]:
    if node is None:
        return
    if hasattr(node, "field"):
        yield node.field
        return
    for arg in node.args:
        yield from _where_fields(arg)
