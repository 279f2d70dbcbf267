"""A customer write FXiaoke refused because the record is locked: ``RECORD_LOCKED``.

crmtier's ``update`` sends ``skipDataStatusValidate: false``: a locked record is not written
through. The lock is the bank's control, not crmtier's to lift. FXiaoke locks a record in
two ways, and its code table (全局返回码, developer.fxiaoke.com/openapi_v2/start/guide/
codes.html) lists no error code for the refused write in either case, so the code cannot
tell a lock apart from a bad value (32000) or an unknown error. The record itself can:

* an admin's lock (锁定): "Lock Object" (``/cgi/crm/v2/object/lock``, ``dataIds``;
  developer.fxiaoke.com/openapi_v2/en/common/system/lock/lock.html; "Unlock Object" is its
  twin) or the 锁定 button sets the record's ``lock_status`` to ``"1"`` (``"0"`` unlocked:
  the records of the documented query answers carry ``"lock_status": "0"``,
  fxiaoke.apifox.cn/api-12901184; the values 1 锁定 / 0 未锁定 and the ``life_status``
  values below are FXiaoke's own ``LockStatus`` / ``LifeStatus`` constants in a public copy
  of its CRM source, ``com.facishare.crm...SystemConstants``);
* an approval flow (审批流): the record is 审核中 ``under_review`` or 变更中 ``in_change``
  in ``life_status`` while an instance is ``in_progress`` ("Query Object Approval Flow
  Instances", ``/cgi/crm/object/approvalInstances/query`` with ``dataId``;
  developer.fxiaoke.com/openapi_v2/en/common/process/approval/query.html; its states:
  in_progress, pass, error, cancel, reject).

After a refused update (and only then), one ``data/get`` of the record is looked up in
``LOCK_STATES``; when no row matches, one read of its approval instances (a tenant whose
approval did not move ``life_status``). Either way, a match makes the write
``RECORD_LOCKED``: retryable, so a later run writes the tier once the lock is lifted, and
named so the admin sees why. A read that fails keeps the refusal as it was.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.contract import WriteResult
from connectors.errors import RecordError, TransientError
from connectors.fxiaoke.client import FxiaokeClient, data_path
from connectors.fxiaoke.override_audit import INSTANCES_PATH

LOCKED = "RECORD_LOCKED"
IN_PROGRESS = "in_progress"
#: How errors.classify words a code FXiaoke answered (an unlisted one is a TransientError).
_ANSWERED = re.compile(r"errorCode (-?\d+)")


@dataclass(frozen=True)
class LockState:
    """A record state under which FXiaoke refuses crmtier's update: ``field`` holds
    ``value``; ``why`` is what the admin reads."""

    field: str
    value: str
    why: str


#: The lookup table of locked states, first match wins.
LOCK_STATES: tuple[LockState, ...] = (
    LockState("lock_status", "1", "the record is locked (锁定, lock_status 1)"),
    LockState("life_status", "under_review", "the record is under review (审核中)"),
    LockState("life_status", "in_change", "a change of the record is under approval (变更中)"),
)
_APPROVAL = "an approval of the record is in progress"


def lock_state(record: Mapping[str, Any]) -> LockState | None:
    """The ``LOCK_STATES`` row a record's fields match (None: not locked)."""
    return next((s for s in LOCK_STATES if str(record.get(s.field, "")) == s.value), None)


def _record(client: FxiaokeClient, obj: str, record_id: str) -> Mapping[str, Any]:
    """The record as ``data/get`` answers it (``data.data``); empty when the read fails."""
    try:
        answer = client.call(
            data_path(obj, "get"),
            {"dataObjectApiName": obj, "objectDataId": record_id},
            record_id=record_id,
        )
    except (RecordError, TransientError):
        return {}
    data = answer.get("data")
    record = data.get("data") if isinstance(data, Mapping) else None
    return record if isinstance(record, Mapping) else {}


def under_approval(client: FxiaokeClient, record_id: str) -> bool:
    """Whether an approval flow instance of the record is still in progress."""
    try:
        answer = client.call(INSTANCES_PATH, {}, top={"dataId": record_id})
    except (RecordError, TransientError):
        return False
    instances = answer.get("instances") or []
    return any(isinstance(i, dict) and i.get("state") == IN_PROGRESS for i in instances)


def explain_refusal(client: FxiaokeClient, obj: str, refused: WriteResult) -> WriteResult:
    """``refused`` (a failed update of a record of ``obj``) as ``RECORD_LOCKED`` when FXiaoke
    answered it with an error code and the record is locked; otherwise unchanged (a failure
    in transit is no refusal)."""
    if refused.ok:
        return refused
    found = _ANSWERED.search(refused.message or "")
    code = refused.error_code if (refused.error_code or "").isdigit() else found and found[1]
    if not code:
        return refused
    state = lock_state(_record(client, obj, refused.key))
    why = state.why if state else _APPROVAL if under_approval(client, refused.key) else None
    if why is None:
        return refused
    message = (
        f"record {refused.key}: {LOCKED}: FXiaoke refused the tier write (errorCode {code}): "
        f"{why}; retried on a later run"
    )
    return WriteResult(refused.kind, refused.key, False, LOCKED, message, True)
