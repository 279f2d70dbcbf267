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

After the customer updates of a plan, and only for the refused ones, crmtier reads their
lock fields: one ``data/query`` per 100 refused records (``_id IN``), projecting
``lock_status`` and ``life_status`` alone, never the whole customer (``data/get`` would bring
every personal field of it, to read two); each record is looked up in ``LOCK_STATES``.
Only a refused record whose fields show no lock costs one more call, the read of its
approval instances (a tenant whose approval did not move ``life_status``).

That read cannot be asked for many records at once. "Query Object Approval Flow Instances"
takes one ``dataId`` (String, required). "Query Approval Flow Instance List"
(``/cgi/crm/approvalInstances/query``, developer.fxiaoke.com/openapi_v2/common/system/
other/approval/list.html) lists by ``state`` and ``objectApiName`` with paging, but
requires a ``flowApiName`` (one flow: a tenant has any number) and a ``startTime`` /
``endTime`` window, and its documented answer lists no instances. So the approval reads are
capped instead: ``APPROVAL_READS_PER_RUN`` a run (the calls of a sync run or a retier
unit, ``calltally.run_tally``; outside a run, a plan), taken as refusals come. A refused
record past the cap keeps its refusal's outcome, as an unread lock does, and a warning
names how many were not looked into: n refused updates cost at most ceil(n / 100) lock
field reads a plan and 100 approval reads a run, none for a plan with no refusal. (A sync
run's plans carry one record each, ``max_write_batch`` 1: there, each refusal's lock field
read is a call of its own.) A match makes the write ``RECORD_LOCKED``: retryable, so a later
run writes the tier once the lock is lifted, and named so the admin sees why.

Only an answered refusal is looked into: a code the table classes as FXiaoke being busy or
broken (-1, -2, 50009: ``errors.RULES``) is no refusal of the record, and a read then would
add calls to a struggling tenant. A read that fails, including one the app may not make
(a tenant without the approval API granted: 15003), keeps the refusal as it was and logs a
warning: a diagnostic read never stops the run.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.calltally import CallTally, run_tally
from connectors.contract import WriteResult
from connectors.errors import ConfigError, ConnectorError, RecordError, TransientError
from connectors.fxiaoke import errors
from connectors.fxiaoke.client import FxiaokeClient, data_path
from connectors.fxiaoke.override_audit import INSTANCES_PATH
from connectors.fxiaoke.query import ID, by_ids, rows_of

log = logging.getLogger(__name__)

LOCKED = "RECORD_LOCKED"
IN_PROGRESS = "in_progress"
#: How errors.classify words a code FXiaoke answered (an unlisted one is a TransientError).
_ANSWERED = re.compile(r"errorCode (-?\d+)")
#: What a failed lock read may raise and still leave the run going (module docstring); a
#: spent quota, an expired grant or a throttle stops the plan as any call's would.
_UNREAD = (RecordError, TransientError, ConfigError)


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
#: The approval instance reads a run may make (module docstring): a mass refusal of
#: records whose fields show no lock costs the tenant this many reads, not one per record.
APPROVAL_READS_PER_RUN = 100
_APPROVAL_READS = "fxiaoke approval reads"


def lock_state(record: Mapping[str, Any]) -> LockState | None:
    """The ``LOCK_STATES`` row a record's fields match (None: not locked)."""
    return next((s for s in LOCK_STATES if str(record.get(s.field, "")) == s.value), None)


def _lock_fields(
    client: FxiaokeClient, obj: str, record_ids: Sequence[str]
) -> dict[str, Mapping[str, Any]]:
    """The lock fields of ``record_ids`` by id, 100 ids a query; a chunk whose read fails is
    left out (its records keep their refusals)."""
    fields = [ID, *{s.field: None for s in LOCK_STATES}]
    found: dict[str, Mapping[str, Any]] = {}
    for body in by_ids(obj, record_ids, fields):
        try:
            answer = client.call(data_path(obj, "query"), body)
        except _UNREAD as exc:
            _unread(exc)
            continue
        found.update((str(row.get(ID)), row) for row in rows_of(answer))
    return found


def _unread(exc: ConnectorError) -> None:
    """A lock read that failed: the refusals stay as they were. ``exc`` is crmtier's own
    text (``errors.classify`` keeps FXiaoke's, which may quote values, out of it)."""
    log.warning("fxiaoke lock state not read", extra={"error": str(exc)})


def under_approval(client: FxiaokeClient, record_id: str) -> bool:
    """Whether an approval flow instance of the record is still in progress."""
    try:
        answer = client.call(INSTANCES_PATH, {}, top={"dataId": record_id})
    except _UNREAD as exc:
        _unread(exc)
        return False
    instances = answer.get("instances") or []
    return any(isinstance(i, dict) and i.get("state") == IN_PROGRESS for i in instances)


def refusal_code(result: WriteResult) -> str | None:
    """The errorCode FXiaoke refused ``result`` with, when a lock could be why: None for a
    success, a failure in transit (no code), and a code the table classes as FXiaoke
    being busy or broken rather than refusing the record."""
    if result.ok:
        return None
    found = _ANSWERED.search(result.message or "")
    code = result.error_code if (result.error_code or "").isdigit() else found and found[1]
    if not code:
        return None
    rule = errors.lookup(int(code))
    return None if rule.code is not None and rule.error is TransientError else code


def explain_refusals(
    client: FxiaokeClient, obj: str, results: Sequence[WriteResult]
) -> list[WriteResult]:
    """``results`` (the updates or owner changes of records of ``obj``) with each refusal
    of a locked record made ``RECORD_LOCKED``; the others unchanged. No call when nothing
    was refused."""
    refused = {r.key: code for r in results if (code := refusal_code(r))}
    if not refused:
        return list(results)
    records = _lock_fields(client, obj, sorted(refused))
    allowance = run_tally() or CallTally()  # outside a run, the plan's own
    unread = 0

    def approving(key: str) -> bool:
        nonlocal unread
        if allowance.allow(_APPROVAL_READS, APPROVAL_READS_PER_RUN):
            return under_approval(client, key)
        unread += 1
        return False

    def explained(result: WriteResult) -> WriteResult:
        code = refused.get(result.key)
        if code is None:
            return result
        state = lock_state(records.get(result.key, {}))
        why = state.why if state else _APPROVAL if approving(result.key) else None
        if why is None:
            return result
        message = (
            f"record {result.key}: {LOCKED}: FXiaoke refused the write (errorCode {code}): "
            f"{why}; retried on a later run"
        )
        return WriteResult(result.kind, result.key, False, LOCKED, message, True)

    answered = [explained(r) for r in results]
    if unread:
        log.warning(
            "fxiaoke approval reads capped: refusals kept as answered",
            extra={
                "not_read": unread,
                "not_read_in_run": allowance.denied(_APPROVAL_READS),
                "reads_per_run": APPROVAL_READS_PER_RUN,
            },
        )
    return answered
