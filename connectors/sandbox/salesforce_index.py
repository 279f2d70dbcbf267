"""The indexes the sandbox org's saves keep: external key → id (Task, CampaignMember),
(campaign, member) → CampaignMember id, the keys of deleted Tasks (the Recycle Bin), and the
next id number per object.

A deleted Task is kept in the store under ``RECYCLE_BIN`` (its fields as they were): the
``queryAll`` resource still returns it, ``IsDeleted`` true, and its Unique key stays taken.

A real org answers look-ups by an external id from an index; a scan made a 100k-customer
sync quadratic. Built lazily from the store on first use, updated by every save, and
dropped (``reset``) when a reseed or a rolled-back ``allOrNone`` call makes them stale.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from connectors.sandbox.salesforce_schema import EXTERNAL_KEY_FIELD
from connectors.sandbox.salesforce_wire import id_number
from connectors.sandbox.store import RecordStore

#: The store's object name for deleted Tasks: the Recycle Bin ("Indicates whether the record
#: has been moved to the Recycle Bin (true) or not (false)", ``IsDeleted``, Object Reference
#: for the Salesforce Platform, "System Fields"). Only Tasks are kept there: other objects'
#: deletes remove the record.
RECYCLE_BIN = "Task#RecycleBin"


class SaveIndex:
    def __init__(self, store: RecordStore, customer_object: str, lock: threading.RLock) -> None:
        self.store = store
        self.customer_object = customer_object
        self._lock = lock
        self._ext: dict[str, dict[str, str]] | None = None  # object -> external key -> id
        self.pairs: dict[tuple[str, str], str] = {}  # (campaign, member) -> member id
        self._bin: dict[str, str] | None = None  # Task external key -> id, in the Recycle Bin
        self._numbers: dict[str, Iterator[int]] = {}

    def ext(self) -> dict[str, dict[str, str]]:
        if self._ext is None:
            self._ext = {}
            for obj in ("Task", "CampaignMember"):
                index = self._ext.setdefault(obj, {})
                for rid, _, data in self.store.scan(obj):
                    if data.get(EXTERNAL_KEY_FIELD):
                        index[str(data[EXTERNAL_KEY_FIELD])] = rid
                    if obj == "CampaignMember":
                        self.pairs[(data["CampaignId"], _member_of(data))] = rid
        return self._ext

    def recycle_bin(self) -> dict[str, str]:
        """Task external key -> id of the deleted Task holding it (``RECYCLE_BIN``)."""
        if self._bin is None:
            self._bin = {
                str(data[EXTERNAL_KEY_FIELD]): rid
                for rid, _, data in self.store.scan(RECYCLE_BIN)
                if data.get(EXTERNAL_KEY_FIELD)
            }
        return self._bin

    def remember(self, obj: str, rid: str, data: Mapping[str, Any]) -> None:
        if data.get(EXTERNAL_KEY_FIELD):
            self.ext().setdefault(obj, {})[str(data[EXTERNAL_KEY_FIELD])] = rid
        if obj == "CampaignMember":
            self.pairs[(data["CampaignId"], _member_of(data))] = rid

    def forget(self, obj: str, rid: str) -> None:
        found = self.store.get(obj, rid)
        if found is None:
            return
        data = found[1]
        key = data.get(EXTERNAL_KEY_FIELD)
        if key:
            self.ext().get(obj, {}).pop(str(key), None)
        if obj == "Task":  # a deleted Task waits in the Recycle Bin, its key with it
            self.store.insert_many(RECYCLE_BIN, [(rid, self.store.clock(), data)])
            if key:
                self.recycle_bin()[str(key)] = rid
        if obj == "CampaignMember":
            self.pairs.pop((data["CampaignId"], _member_of(data)), None)

    def next_number(self, obj: str) -> int:
        if obj not in self._numbers:
            start = 1 + max((id_number(rid) for rid, _, _ in self.store.scan(obj)), default=0)
            if obj == self.customer_object:
                start = max(start, 900_000_000_000)  # API-created customers after seeded ones
            self._numbers[obj] = itertools.count(start)
        return next(self._numbers[obj])

    def reset(self) -> None:
        with self._lock:
            self._ext = None
            self._bin = None
            self.pairs = {}
            self._numbers = {}


def _member_of(data: Mapping[str, Any]) -> str:
    return str(data.get("ContactId") or data.get("LeadId") or data.get("AccountId"))
