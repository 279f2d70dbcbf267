"""The sandbox org's save semantics: what a Salesforce org does with a write, per record.

``OrgSaves`` is the half of ``SalesforceOrg`` that writes (the other half, in
``salesforce_org.py``, reads and answers SOQL). REST routes and Bulk API 2.0 jobs both save
through it, so a record rejected over REST is rejected the same way in a bulk job:

* per-record results in request order; failed entries carry no ``id``; under
  ``allOrNone`` nothing is saved and the valid records report
  ``ALL_OR_NONE_OPERATION_ROLLED_BACK``;
* unknown / read-only fields, wrong types, restricted picklists, malformed or missing ids,
  duplicate campaign members and duplicate external ids are per-record errors (the checks
  of a record's fields are ``SaveChecks``'s, in ``salesforce_save_checks.py``);
* "read-only" is for the integration user: its ``IntegrationRights`` (least privilege by
  default) decide which customer fields it may edit and whether it may delete customers;
* rows a test has "locked" fail with ``UNABLE_TO_LOCK_ROW`` the next N times they are saved;
* every save bumps ``SystemModstamp`` and, for customers, fires the Outbound Message rule.

The indexes the saves keep up to date (external keys, campaign-member pairs, id counters)
are ``SaveIndex``'s (``salesforce_index.py``); the reads use them for look-ups too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.sandbox.salesforce_index import SaveIndex
from connectors.sandbox.salesforce_save_checks import SaveChecks, SaveError
from connectors.sandbox.salesforce_schema import EXTERNAL_KEY_FIELD
from connectors.sandbox.salesforce_specs import IntegrationRights, ObjectSpec
from connectors.sandbox.salesforce_wire import (
    INTEGRATION_USER_ID,
    PREFIXES,
    is_valid_id,
    make_id,
    sf_datetime,
)
from connectors.sandbox.store import RecordStore


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

#: A save refused while the org is in read-only mode: "During read-only mode, you can't ...
#: Perform API write or edit actions" (Salesforce Help, "Read-Only Mode"); the code and
#: message as Salesforce reports them on a refused record ("Updates can't be made during
#: maintenance. Try again when maintenance is complete.").
MAINTENANCE = SaveError(
    "INSERT_UPDATE_DELETE_NOT_ALLOWED_DURING_MAINTENANCE",
    "Updates can't be made during maintenance. Try again when maintenance is complete.",
)


@dataclass
class _Planned:
    """A validated save waiting to be applied (so ``allOrNone`` can abandon all of them)."""

    obj: str
    rid: str | None  # None: create
    fields: dict[str, Any]


class OrgSaves(SaveChecks):
    """Saving, on the org state ``SalesforceOrg`` sets up in its ``__init__``; each record
    is checked by ``SaveChecks`` as it is planned."""

    store: RecordStore
    schema: dict[str, ObjectSpec]
    customer_object: str
    accounts_as_members: bool
    on_change: Callable[[str, dict[str, Any]], None] | None
    locks: dict[str, int]
    #: the org's read-only mode (planned maintenance): every save fails, retryably
    read_only: bool
    _rights: IntegrationRights
    _lock: threading.RLock
    index: SaveIndex
    #: the Task Status picklist, each value with its TaskStatus.IsClosed
    task_statuses: dict[str, bool]

    def view(self, rid: str, modstamp: datetime, data: Mapping[str, Any]) -> dict[str, Any]:
        """A record as the API reads it. A Task's ``IsClosed`` is its Status's
        TaskStatus.IsClosed, whoever set the Status (an API save, or a relationship
        manager through the sandbox's own helpers), so it is derived here, not stored."""
        out = {**data, "Id": rid, "SystemModstamp": modstamp}
        if rid.startswith(PREFIXES["Task"]):
            out["IsClosed"] = self.task_statuses.get(str(data.get("Status")), False)
            out.setdefault("IsArchived", False)  # set by ``archive_activities``
            out["IsDeleted"] = False  # a deleted Task is read from the Recycle Bin
        return out

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
            index = self.index.ext().setdefault(obj, {})
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
                elif self.read_only:
                    plans.append(MAINTENANCE)
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
                self.index.forget(obj, rid)
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
                self.index.reset()  # keys and ids of rolled-back records must not stay indexed
                raise

    def _take_lock(self, plan: _Planned | SaveError) -> _Planned | SaveError:
        if isinstance(plan, _Planned) and self.read_only:
            return MAINTENANCE
        if isinstance(plan, _Planned) and plan.rid and self.locks.get(plan.rid, 0) > 0:
            self.locks[plan.rid] -= 1
            return SaveError(
                "UNABLE_TO_LOCK_ROW",
                f"unable to obtain exclusive access to this record or 1 records: {plan.rid}",
            )
        return plan

    def _apply(self, plan: _Planned, stamp: datetime) -> SaveResult:
        if plan.rid is None:
            rid = make_id(plan.obj, self.index.next_number(plan.obj))
            data = {"OwnerId": INTEGRATION_USER_ID, **_defaults(plan.obj), **plan.fields}
            data["CreatedDate"] = sf_datetime(stamp)
            self.store.insert_many(plan.obj, [(rid, stamp, data)])
            self.index.remember(plan.obj, rid, data)
            self._changed(plan.obj, rid, stamp, data)
            return SaveResult(rid, created=True)
        _, data = self.store.merge(plan.obj, plan.rid, plan.fields, modstamp=stamp)
        if EXTERNAL_KEY_FIELD in plan.fields:
            self.index.ext().setdefault(plan.obj, {})[str(plan.fields[EXTERNAL_KEY_FIELD])] = (
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
        if error is None and EXTERNAL_KEY_FIELD in fields and _unique_key(spec):
            key = (obj, str(fields[EXTERNAL_KEY_FIELD]))
            existing = self.index.ext().get(obj, {}).get(key[1])
            if obj == "Task":  # a Unique value a Task in the Recycle Bin holds is taken
                existing = existing or self.index.recycle_bin().get(key[1])
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


_ID_OBJECTS = ("Account", "Task", "Campaign", "CampaignMember")


def _unique_key(spec: ObjectSpec) -> bool:
    """Whether the object's crmtier key field is Unique ("Do not allow duplicate values"):
    only then does a save refuse a second record with its value (``DUPLICATE_VALUE``), a
    deleted Task's in the Recycle Bin included (Salesforce counts those records against a
    unique index: "Duplicate value found when building unique index", Salesforce Help
    000385434; an upsert by the key does not match them, so it creates and is refused), and
    only then does the external-key index (``SalesforceIndex.ext``, one record a key) answer
    a look-up. An upsert by a key that is not Unique is not modelled (Salesforce requires
    View All Data for it, which crmtier's start-up gate refuses to need)."""
    key = spec.fields.get(EXTERNAL_KEY_FIELD)
    return key is not None and key.unique


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
