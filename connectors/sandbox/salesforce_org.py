"""The sandbox org's data layer: SOQL execution and the save semantics of a Salesforce org.

Transport-free on purpose: the REST routes (``salesforce.py``) and Bulk API 2.0 jobs
(``salesforce_bulk.py``) both go through the same per-record validation and save rules, so a
record rejected over REST is rejected the same way in a bulk job:

* per-record results in request order; failed entries carry no ``id``; under
  ``allOrNone`` nothing is saved and the valid records report
  ``ALL_OR_NONE_OPERATION_ROLLED_BACK``;
* unknown / read-only fields, wrong types, restricted picklists, malformed or missing ids,
  duplicate campaign members and duplicate external ids are per-record errors;
* "read-only" is for the integration user: its ``IntegrationRights`` (least privilege by
  default) decide which customer fields it may edit and whether it may delete customers,
  and answer its ``UserPermissionAccess`` query;
* rows a test has "locked" fail with ``UNABLE_TO_LOCK_ROW`` the next N times they are saved;
* every save bumps ``SystemModstamp`` and, for customers, fires the Outbound Message rule.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.mapping import DefaultMapping
from connectors.sandbox.salesforce_schema import (
    EXTERNAL_KEY_FIELD,
    INTEGRATION_USER_ID,
    PREFIXES,
    IntegrationRights,
    ObjectSpec,
    account_of_contact,
    build_schema,
    id_number,
    is_valid_id,
    make_id,
    sf_datetime,
    user_permission_access,
)
from connectors.sandbox.salesforce_soql import Query, SoqlError
from connectors.sandbox.store import RecordStore

Position = tuple[datetime, str]
_SCAN_CHUNK = 2000
_STREAM_ORDERS = ((), (("SystemModstamp", False),), (("SystemModstamp", False), ("Id", False)))


class QueryFieldError(SoqlError):
    """A field the object does not have: Salesforce's ``INVALID_FIELD``."""


class UnknownObjectError(SoqlError):
    """An sObject the org does not have: Salesforce's ``INVALID_TYPE``."""


@dataclass(frozen=True)
class SaveError:
    status_code: str
    message: str
    fields: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "statusCode": self.status_code,
            "message": self.message,
            "fields": list(self.fields),
        }


@dataclass
class SaveResult:
    id: str | None
    errors: list[SaveError] = field(default_factory=list)
    created: bool | None = None

    @property
    def success(self) -> bool:
        return not self.errors

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.id is not None:
            out["id"] = self.id
        out["success"] = self.success
        out["errors"] = [e.as_json() for e in self.errors]
        if self.created is not None:
            out["created"] = self.created
        return out


ROLLED_BACK = SaveError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
)


@dataclass
class _Planned:
    """A validated save waiting to be applied (so ``allOrNone`` can abandon all of them)."""

    obj: str
    rid: str | None  # None: create
    fields: dict[str, Any]


@dataclass
class PageState:
    """Where the next page of a query starts: after ``after`` (streamed queries) or at row
    ``emitted`` of a materialised result."""

    after: Position | None
    emitted: int


class SalesforceOrg:
    def __init__(
        self,
        store: RecordStore,
        mapping: DefaultMapping,
        *,
        accounts_as_members: bool = True,
        on_change: Callable[[str, dict[str, Any]], None] | None = None,
        rights: IntegrationRights | None = None,
    ) -> None:
        self.store = store
        self.mapping = mapping
        self.customer_object = mapping.mapping.object
        self.accounts_as_members = accounts_as_members
        self._lock = threading.RLock()
        self.schema: dict[str, ObjectSpec] = {}
        #: query-only objects answered from the org's settings, not from stored rows
        self.virtual: dict[str, ObjectSpec] = {}
        self.rights = rights or IntegrationRights()
        self.on_change = on_change
        self.locks: dict[str, int] = {}
        self._ext: dict[str, dict[str, str]] | None = None  # object -> external key -> id
        self._pairs: dict[tuple[str, str], str] = {}  # (campaign, member) -> member id
        self._numbers: dict[str, Iterator[int]] = {}

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
                self.mapping, accounts_as_members=self.accounts_as_members, rights=rights
            )
            for name, old in self.schema.items():
                for field_name, spec in old.fields.items():
                    if name in schema:
                        schema[name].fields.setdefault(field_name, spec)
            self.schema = schema
            self.virtual = {"UserPermissionAccess": user_permission_access(rights)}

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

    def view(self, rid: str, modstamp: datetime, data: Mapping[str, Any]) -> dict[str, Any]:
        return {**data, "Id": rid, "SystemModstamp": modstamp}

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
            ids is None and query.sobject not in self.virtual and query.order_by in _STREAM_ORDERS
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
        if keys is None:
            return None
        with self._lock:
            index = self._ext_index().get(query.sobject)
            if index is None:
                return None
            return [index[k] for k in keys if k in index]

    # --- saving ---------------------------------------------------------------------------

    def update(self, records: Sequence[Mapping[str, Any]], all_or_none: bool) -> list[SaveResult]:
        with self._lock:
            return self._save([self._plan_update(r) for r in records], all_or_none)

    def create(self, records: Sequence[Mapping[str, Any]], all_or_none: bool) -> list[SaveResult]:
        with self._lock:
            claimed: set[tuple[str, str]] = set()
            plans = [self._plan_create(r, claimed) for r in records]
            return self._save(plans, all_or_none)

    def upsert(
        self, obj: str, ext_field: str, records: Sequence[Mapping[str, Any]], all_or_none: bool
    ) -> list[SaveResult]:
        with self._lock:
            index = self._ext_index().setdefault(obj, {})
            seen: dict[str, int] = {}
            for r in records:
                key = r.get(ext_field)
                seen[str(key)] = seen.get(str(key), 0) + 1
            claimed: set[tuple[str, str]] = set()
            plans: list[_Planned | SaveError] = []
            for r in records:
                key = r.get(ext_field)
                if key in (None, ""):
                    plans.append(SaveError("MISSING_ARGUMENT", f"{ext_field} not specified"))
                elif seen[str(key)] > 1:
                    plans.append(
                        SaveError(
                            "DUPLICATE_EXTERNAL_ID",
                            f"Duplicate external id specified: {key}",
                            (ext_field,),
                        )
                    )
                elif str(key) in index:
                    plans.append(self._plan_update({**r, "id": index[str(key)]}, obj=obj))
                else:
                    plans.append(self._plan_create(r, claimed, obj=obj))
            return self._save(plans, all_or_none)

    def delete(self, ids: list[str], all_or_none: bool) -> list[SaveResult]:
        with self._lock:
            plans: list[tuple[str, str] | SaveError] = []
            for rid in ids:
                obj = _object_of(rid, self.schema)
                if obj is None or not is_valid_id(rid):
                    plans.append(SaveError("MALFORMED_ID", f"malformed id {rid}", ("Id",)))
                elif not self.store.exists(obj, rid):
                    plans.append(SaveError("ENTITY_IS_DELETED", "entity is deleted"))
                elif not self.schema[obj].deletable:
                    plans.append(
                        SaveError(
                            "INSUFFICIENT_ACCESS_OR_READONLY",
                            "insufficient access rights on object id",
                        )
                    )
                else:
                    plans.append((obj, rid))
            if all_or_none and any(isinstance(p, SaveError) for p in plans):
                return [
                    SaveResult(None, [p])
                    if isinstance(p, SaveError)
                    else SaveResult(p[1], [ROLLED_BACK])
                    for p in plans
                ]
            results = []
            for p in plans:
                if isinstance(p, SaveError):
                    results.append(SaveResult(None, [p]))
                    continue
                obj, rid = p
                self._forget(obj, rid)
                self.store.delete(obj, rid)
                results.append(SaveResult(rid))
            return results

    def lock_rows(self, ids: list[str], times: int = 1) -> None:
        with self._lock:
            for rid in ids:
                self.locks[rid] = self.locks.get(rid, 0) + times

    def _save(self, plans: list[_Planned | SaveError], all_or_none: bool) -> list[SaveResult]:
        with self._lock:
            plans = [self._take_lock(p) for p in plans]
            if all_or_none and any(isinstance(p, SaveError) for p in plans):
                return [
                    SaveResult(None, [p])
                    if isinstance(p, SaveError)
                    else SaveResult(p.rid, [ROLLED_BACK])
                    for p in plans
                ]
            # One save is one transaction: like Salesforce, every record it touches gets the
            # same SystemModstamp (so ties at page boundaries are real, not hypothetical).
            stamp = self.store.clock()
            try:
                with self.store.transaction():
                    return [
                        SaveResult(None, [p]) if isinstance(p, SaveError) else self._apply(p, stamp)
                        for p in plans
                    ]
            except BaseException:
                self.reset_indexes()  # keys and ids of rolled-back records must not stay indexed
                raise

    def _take_lock(self, plan: _Planned | SaveError) -> _Planned | SaveError:
        if isinstance(plan, _Planned) and plan.rid and self.locks.get(plan.rid, 0) > 0:
            self.locks[plan.rid] -= 1
            return SaveError(
                "UNABLE_TO_LOCK_ROW",
                f"unable to obtain exclusive access to this record or 1 records: {plan.rid}",
            )
        return plan

    def _apply(self, plan: _Planned, stamp: datetime) -> SaveResult:
        if plan.rid is None:
            rid = make_id(plan.obj, self._next_number(plan.obj))
            data = {"OwnerId": INTEGRATION_USER_ID, **_defaults(plan.obj), **plan.fields}
            data["CreatedDate"] = sf_datetime(stamp)
            self.store.insert_many(plan.obj, [(rid, stamp, data)])
            self._remember(plan.obj, rid, data)
            self._changed(plan.obj, rid, stamp, data)
            return SaveResult(rid, created=True)
        _, data = self.store.merge(plan.obj, plan.rid, plan.fields, modstamp=stamp)
        if EXTERNAL_KEY_FIELD in plan.fields:
            self._ext_index().setdefault(plan.obj, {})[str(plan.fields[EXTERNAL_KEY_FIELD])] = (
                plan.rid
            )
        self._changed(plan.obj, plan.rid, stamp, data)
        return SaveResult(plan.rid, created=False)

    def _changed(self, obj: str, rid: str, stamp: datetime, data: Mapping[str, Any]) -> None:
        if self.on_change is not None and obj == self.customer_object:
            self.on_change(obj, self.view(rid, stamp, data))

    def _plan_update(
        self, record: Mapping[str, Any], obj: str | None = None
    ) -> _Planned | SaveError:
        obj = obj or _type_of(record)
        rid = record.get("id") or record.get("Id")
        spec = self.schema.get(obj or "")
        if spec is None or obj is None:
            return SaveError("INVALID_TYPE", f"sObject type '{obj}' is not supported")
        if not is_valid_id(rid, obj if obj in _ID_OBJECTS else None):
            return SaveError(
                "MALFORMED_ID", f"{obj} ID: id value of incorrect type: {rid}", ("Id",)
            )
        assert isinstance(rid, str)
        if not self.store.exists(obj, rid):
            return SaveError("ENTITY_IS_DELETED", "entity is deleted")
        fields = _payload(record)
        error = self._check_fields(spec, fields, updating=True)
        return error or _Planned(obj, rid, fields)

    def _plan_create(
        self, record: Mapping[str, Any], claimed: set[tuple[str, str]], obj: str | None = None
    ) -> _Planned | SaveError:
        obj = obj or _type_of(record)
        spec = self.schema.get(obj or "")
        if spec is None or obj is None:
            return SaveError("INVALID_TYPE", f"sObject type '{obj}' is not supported")
        if record.get("id") or record.get("Id"):
            return SaveError("INVALID_FIELD", "cannot specify Id in an insert call", ("Id",))
        fields = _payload(record)
        error = self._check_fields(spec, fields, updating=False)
        if error is None and EXTERNAL_KEY_FIELD in fields:
            key = (obj, str(fields[EXTERNAL_KEY_FIELD]))
            existing = self._ext_index().get(obj, {}).get(key[1])
            if existing or key in claimed:
                error = SaveError(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {EXTERNAL_KEY_FIELD} duplicates value on record "
                    f"with id: {existing or 'in this request'}",
                    (EXTERNAL_KEY_FIELD,),
                )
            claimed.add(key)
        if error is None and obj == "CampaignMember":
            error = self._check_member(fields, claimed)
        return error or _Planned(obj, None, fields)

    def _check_fields(
        self, spec: ObjectSpec, fields: Mapping[str, Any], *, updating: bool
    ) -> SaveError | None:
        for name, value in fields.items():
            f = spec.fields.get(name)
            if f is None:
                return SaveError(
                    "INVALID_FIELD",
                    f"No such column '{name}' on sobject of type {spec.name}",
                    (name,),
                )
            if not (f.updateable if updating else f.createable):
                return SaveError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    (name,),
                )
            problem = f.check(value)
            if problem is not None:
                return SaveError(problem[0], problem[1], (name,))
            if self._dangling(f.type, value):
                return SaveError(
                    "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {value}", (name,)
                )
            if name == "OwnerId" and value:
                error = self._owner_error(spec.name, str(value))
                if error is not None:
                    return error
        return None

    def _owner_error(self, obj: str, owner: str) -> SaveError | None:
        """An owner must be an active User, or a queue that accepts ``obj``. Codes: an
        inactive owner is ``INACTIVE_OWNER_OR_USER`` ("The user or record owner is not
        active", StatusCode in the SOAP API Developer Guide, "Core Data Types Used in API
        Calls"); a queue without ``obj`` among its QueueSobject types answers as users
        report it for a Task, ``FIELD_INTEGRITY_EXCEPTION`` "Assigned To ID: id value of
        incorrect type" (github.com/salesforcelabs/actionplansv4/issues/51; the message
        text is the sandbox's reading)."""
        wrong_type = SaveError(
            "FIELD_INTEGRITY_EXCEPTION",
            f"Assigned To ID: id value of incorrect type: {owner}",
            ("OwnerId",),
        )
        if owner.startswith(PREFIXES["User"]):
            user = self.store.get("User", owner)
            if user is None:
                return SaveError(
                    "INVALID_CROSS_REFERENCE_KEY",
                    f"invalid cross reference id: {owner}",
                    ("OwnerId",),
                )
            if not user[1].get("IsActive"):
                return SaveError(
                    "INACTIVE_OWNER_OR_USER",
                    f"operation performed with inactive user [{owner}] as owner of {obj.lower()}",
                    ("OwnerId",),
                )
            return None
        if not owner.startswith(PREFIXES["Group"]):
            return wrong_type
        group = self.store.get("Group", owner)
        if group is None or group[1].get("Type") != "Queue":
            return SaveError(
                "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {owner}", ("OwnerId",)
            )
        accepts = {
            data.get("SobjectType")
            for _, _, data in self.store.scan("QueueSobject")
            if data.get("QueueId") == owner
        }
        return None if obj in accepts else wrong_type

    def _dangling(self, field_type: str, value: Any) -> bool:
        """A reference to a customer that does not exist (users and queues are not kept)."""
        return (
            field_type == "reference"
            and isinstance(value, str)
            and value.startswith(PREFIXES.get(self.customer_object, "\0"))
            and not self.store.exists(self.customer_object, value)
        )

    def _check_member(
        self, fields: Mapping[str, Any], claimed: set[tuple[str, str]]
    ) -> SaveError | None:
        campaign = fields.get("CampaignId")
        if not campaign or not self.store.exists("Campaign", str(campaign)):
            return SaveError(
                "REQUIRED_FIELD_MISSING" if not campaign else "INVALID_CROSS_REFERENCE_KEY",
                "Required fields are missing: [CampaignId]"
                if not campaign
                else f"invalid cross reference id: {campaign}",
                ("CampaignId",),
            )
        refs = [f for f in ("ContactId", "LeadId", "AccountId") if fields.get(f)]
        if len(refs) != 1:
            return SaveError(
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: exactly one of ContactId, LeadId"
                + (", AccountId" if self.accounts_as_members else ""),
            )
        member = str(fields[refs[0]])
        owner = _member_account(refs[0], member)
        account = None if owner is None else self.store.get(self.customer_object, owner)
        if owner is not None and (
            account is None or (refs[0] == "ContactId" and not account[1].get("IsPersonAccount"))
        ):
            return SaveError(
                "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {member}", (refs[0],)
            )
        pair = (str(campaign), member)
        if pair in self._pairs or ("pair", f"{pair}") in claimed:
            return SaveError("DUPLICATE_VALUE", "Already a campaign member.")
        claimed.add(("pair", f"{pair}"))
        return None

    # --- indexes (external ids, campaign pairs, id counters) ------------------------------

    def _ext_index(self) -> dict[str, dict[str, str]]:
        if self._ext is None:
            self._ext = {}
            for obj in ("Task", "CampaignMember"):
                index = self._ext.setdefault(obj, {})
                for rid, _, data in self.store.scan(obj):
                    if data.get(EXTERNAL_KEY_FIELD):
                        index[str(data[EXTERNAL_KEY_FIELD])] = rid
                    if obj == "CampaignMember":
                        self._pairs[(data["CampaignId"], _member_of(data))] = rid
        return self._ext

    def _remember(self, obj: str, rid: str, data: Mapping[str, Any]) -> None:
        if data.get(EXTERNAL_KEY_FIELD):
            self._ext_index().setdefault(obj, {})[str(data[EXTERNAL_KEY_FIELD])] = rid
        if obj == "CampaignMember":
            self._pairs[(data["CampaignId"], _member_of(data))] = rid

    def _forget(self, obj: str, rid: str) -> None:
        found = self.store.get(obj, rid)
        if found is None:
            return
        data = found[1]
        key = data.get(EXTERNAL_KEY_FIELD)
        if key:
            self._ext_index().get(obj, {}).pop(str(key), None)
        if obj == "CampaignMember":
            self._pairs.pop((data["CampaignId"], _member_of(data)), None)

    def _next_number(self, obj: str) -> int:
        if obj not in self._numbers:
            start = 1 + max((id_number(rid) for rid, _, _ in self.store.scan(obj)), default=0)
            if obj == self.customer_object:
                start = max(start, 900_000_000_000)  # API-created customers after seeded ones
            self._numbers[obj] = itertools.count(start)
        return next(self._numbers[obj])

    def reset_indexes(self) -> None:
        with self._lock:
            self._ext = None
            self._pairs = {}
            self._numbers = {}


_ID_OBJECTS = ("Account", "Task", "Campaign", "CampaignMember")


def _type_of(record: Mapping[str, Any]) -> str | None:
    attributes = record.get("attributes")
    return attributes.get("type") if isinstance(attributes, Mapping) else None


def _payload(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("attributes", "id", "Id")}


def _object_of(rid: str, schema: Mapping[str, ObjectSpec]) -> str | None:
    for obj in schema:
        if rid.startswith(PREFIXES.get(obj, "???")):
            return obj
    return None


def _defaults(obj: str) -> dict[str, Any]:
    return {
        "Task": {"Status": "Not Started", "Priority": "Normal"},
        "CampaignMember": {"Status": "Sent"},
    }.get(obj, {})


def _member_of(data: Mapping[str, Any]) -> str:
    return str(data.get("ContactId") or data.get("LeadId") or data.get("AccountId"))


def _member_account(ref_field: str, member: str) -> str | None:
    """The customer (Account) a member reference points at, when it is one."""
    if ref_field == "AccountId":
        return member
    if ref_field == "ContactId":
        return account_of_contact(member)
    return None


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
