"""A locked customer record refuses crmtier's tier write: an admin's lock (锁定,
``lock_status`` 1), a record under review (``life_status`` under_review / in_change), or an
approval in progress.

crmtier sends ``skipDataStatusValidate: false``: it never writes through a lock the bank
put there. FXiaoke documents no error code for the refusal, so the outcome must not depend
on which code a tenant sends: whatever it is, a locked record makes it the named, retryable
``RECORD_LOCKED`` (retried on a later run), not a "parameter error, run doctor" dead letter
(32000) nor an anonymous transient failure.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.contract import FieldUpdate, OwnerChange, WritePlan
from connectors.fxiaoke.locks import LOCK_STATES, LockState, lock_state
from connectors.sandbox.fxiaoke import FxiaokeSandbox
from connectors.sandbox.fxiaoke_flow import record_flow
from connectors.sandbox.fxiaoke_schema import ACCOUNT
from connectors.sandbox.generator import customer_id
from tests.fxiaoke.fx_helpers import Connect, capture
from tests.fxiaoke.fx_wire import Wire

#: 32000 (参数错误) is what the sandbox's lock answers by default; 320099 is no code of
#: FXiaoke's table: the undocumented code a tenant may send instead.
LOCK_CODES = [32000, 320099]
SECRET_TEXT = "客户 张三 审批中 13800000000"


@pytest.mark.parametrize("code", LOCK_CODES)
def test_a_record_under_approval_is_a_named_retryable_outcome(
    sandbox: FxiaokeSandbox, connect: Connect, code: int
) -> None:
    locked, free = customer_id(2), customer_id(3)
    record_flow(sandbox, locked, "FSUID_MAKER", datetime(2026, 12, 7, tzinfo=UTC), "proposal")
    sandbox.reject_record(locked, code=code, message=SECRET_TEXT)
    connector = connect(sandbox, sleep=lambda _: None)
    plan = WritePlan(
        field_updates=tuple(FieldUpdate(c, {"value_tier": "wealth"}) for c in (locked, free))
    )
    got, wrote = connector.apply(plan)
    assert wrote.ok and sandbox.written(free) == {"value_tier": "wealth"}
    assert (got.key, got.ok, got.error_code, got.retryable) == (
        locked,
        False,
        "RECORD_LOCKED",
        True,
    )
    message = got.message or ""
    assert f"errorCode {code}" in message and "approval" in message and "retried" in message
    assert "张三" not in message and "138" not in message
    assert sandbox.written(locked) == {}


@pytest.mark.parametrize("code", LOCK_CODES)
def test_a_refusal_without_an_approval_keeps_its_own_outcome(
    sandbox: FxiaokeSandbox, connect: Connect, code: int
) -> None:
    """The approval read decides: a record refused with no approval in progress (a
    validation rule, say) is not reported as locked."""
    cid = customer_id(2)
    record_flow(
        sandbox, customer_id(4), "FSUID_MAKER", datetime(2026, 12, 7, tzinfo=UTC), "proposal"
    )
    sandbox.reject_record(cid, code=code)
    connector = connect(sandbox, sleep=lambda _: None)
    (got,) = connector.apply(WritePlan(field_updates=(FieldUpdate(cid, {"value_tier": "wealth"}),)))
    expected = ("32000", False) if code == 32000 else ("TRANSIENT", True)
    assert (got.ok, got.error_code, got.retryable) == (False, *expected)


def _tier(*ids: str) -> WritePlan:
    return WritePlan(field_updates=tuple(FieldUpdate(c, {"value_tier": "wealth"}) for c in ids))


def _put_in(sandbox: FxiaokeSandbox, record_id: str, state: LockState) -> None:
    """The record in ``state``: an admin's lock through "Lock Object", a review state as
    the approval flow sets it."""
    if state.field == "lock_status":
        sandbox.lock_record(record_id)
    else:
        sandbox.store.update(ACCOUNT, record_id, {state.field: state.value})


@pytest.mark.parametrize("state", LOCK_STATES, ids=lambda s: f"{s.field}={s.value}")
def test_lock_state_table_row_by_row(state: LockState) -> None:
    assert lock_state({"life_status": "normal", "lock_status": "0", state.field: state.value}) == (
        state
    )


def test_an_unlocked_normal_record_is_no_lock_state() -> None:
    assert lock_state({"life_status": "normal", "lock_status": "0"}) is None
    assert lock_state({}) is None


@pytest.mark.parametrize("code", LOCK_CODES)
@pytest.mark.parametrize("state", LOCK_STATES, ids=lambda s: f"{s.field}={s.value}")
def test_a_locked_record_is_a_named_retryable_outcome(
    sandbox: FxiaokeSandbox, connect: Connect, state: LockState, code: int
) -> None:
    """No approval instance at all: the record's own state says it is locked (an admin's
    锁定, or a review the approval flow marks on the record)."""
    locked, free = customer_id(2), customer_id(3)
    _put_in(sandbox, locked, state)
    sandbox.lock_refusal_code = code
    queries = capture(sandbox, "query")
    connector = connect(sandbox, sleep=lambda _: None)
    got, wrote = connector.apply(_tier(locked, free))
    assert wrote.ok and sandbox.written(free) == {"value_tier": "wealth"}
    assert (got.key, got.ok, got.error_code, got.retryable) == (
        locked,
        False,
        "RECORD_LOCKED",
        True,
    )
    assert f"errorCode {code}" in (got.message or "") and state.why in (got.message or "")
    assert sandbox.written(locked) == {}
    # one read, of the refused record only
    asked = [q["data"]["search_query_info"]["filters"][0]["field_values"] for q in queries]
    assert asked == [[locked]]


@pytest.mark.parametrize("code", LOCK_CODES)
def test_a_locked_records_owner_change_is_a_named_retryable_outcome(
    sandbox: FxiaokeSandbox, connect: Connect, code: int
) -> None:
    """Advisor coverage's ``changeOwner`` meets a lock as a tier write does: the refusal is
    looked into (one read, of the refused record) and made ``RECORD_LOCKED``, not a
    32000 "parameter error" dead letter; the free record's owner changes."""
    locked, free = customer_id(2), customer_id(3)
    sandbox.lock_record(locked)
    sandbox.lock_refusal_code = code
    before = sandbox.store.get(ACCOUNT, locked)
    queries = capture(sandbox, "query")
    connector = connect(sandbox, sleep=lambda _: None)
    got, moved = connector.change_owners([OwnerChange(c, "FSUID_RM9") for c in (locked, free)])
    assert moved.ok
    assert sandbox.store.get(ACCOUNT, free)[1]["owner"] == ["FSUID_RM9"]  # type: ignore[index]
    assert (got.key, got.ok, got.error_code, got.retryable) == (
        locked,
        False,
        "RECORD_LOCKED",
        True,
    )
    assert f"errorCode {code}" in (got.message or "") and "retried" in (got.message or "")
    assert sandbox.store.get(ACCOUNT, locked) == before
    asked = [q["data"]["search_query_info"]["filters"][0]["field_values"] for q in queries]
    assert asked == [[locked]]


def test_an_admin_lock_lifted_lets_the_next_run_write(
    sandbox: FxiaokeSandbox, connect: Connect, wire: Wire
) -> None:
    cid = customer_id(2)
    headers = wire.login()
    body = {"data": {"dataObjectApiName": ACCOUNT, "dataIds": [cid], "detailObjStrategy": 0}}
    assert wire.post("/cgi/crm/v2/object/lock", body, headers=headers)["errorCode"] == 0
    connector = connect(sandbox, sleep=lambda _: None)
    (first,) = connector.apply(_tier(cid))
    assert (first.error_code, first.retryable) == ("RECORD_LOCKED", True)
    assert wire.post("/cgi/crm/v2/object/unlock", body, headers=headers)["errorCode"] == 0
    (second,) = connector.apply(_tier(cid))
    assert second.ok and sandbox.written(cid) == {"value_tier": "wealth"}


def test_the_sandbox_locks_as_lock_object_documents(wire: Wire) -> None:
    """ "Lock Object" takes ``dataObjectApiName`` and ``dataIds``; a locked record reads
    ``lock_status`` "1" and refuses an update unless ``skipDataStatusValidate`` is true."""
    headers = wire.login()
    cid = customer_id(2)

    def lock(path: str, **data: object) -> int:
        answer = wire.post(path, {"data": {"dataObjectApiName": ACCOUNT, **data}}, headers=headers)
        return int(answer["errorCode"])

    def update(**data: object) -> int:
        values = {"dataObjectApiName": ACCOUNT, "_id": cid, "field_value_tier__c": "wealth"}
        answer = wire.post(
            "/cgi/crm/v2/data/update", {"data": {"object_data": values, **data}}, headers=headers
        )
        return int(answer["errorCode"])

    def status() -> str:
        data = {"dataObjectApiName": ACCOUNT, "objectDataId": cid}
        answer = wire.post("/cgi/crm/v2/data/get", {"data": data}, headers=headers)
        return str(answer["data"]["data"].get("lock_status", "0"))

    assert lock("/cgi/crm/v2/object/lock") == 10001  # dataIds is required
    assert lock("/cgi/crm/v2/object/lock", dataIds=["nope"]) == 32000
    assert lock("/cgi/crm/v2/object/lock", dataIds=[cid], detailObjStrategy=0) == 0
    assert status() == "1"
    assert update(skipDataStatusValidate=False) == 32000
    assert update(skipDataStatusValidate=True) == 0
    assert lock("/cgi/crm/v2/object/unlock", dataIds=[cid], detailObjStrategy=0) == 0
    assert (status(), update(skipDataStatusValidate=False)) == ("0", 0)
