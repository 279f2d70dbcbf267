"""A customer record locked by an approval in progress refuses crmtier's tier write.

crmtier sends ``skipDataStatusValidate: false``: it never writes through a lock a bank's
approval put there. FXiaoke documents no error code for the refusal, so the outcome must
not depend on which code a tenant sends: whatever it is, an approval in progress on the
record makes it the named, retryable ``RECORD_LOCKED`` (retried on a later run), not a
"parameter error, run doctor" dead letter (32000) nor an anonymous transient failure.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.contract import FieldUpdate, WritePlan
from connectors.sandbox.fxiaoke import FxiaokeSandbox
from connectors.sandbox.fxiaoke_flow import record_flow
from connectors.sandbox.generator import customer_id
from tests.fxiaoke.fx_helpers import Connect

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
