"""A customer write FXiaoke refused because an approval in progress locks the record.

crmtier's ``update`` sends ``skipDataStatusValidate: false``: a record an approval flow has
locked (审批中) is not written through: that lock is the bank's control, not crmtier's to
lift. FXiaoke's code table (全局返回码, developer.fxiaoke.com/openapi_v2/start/guide/
codes.html) lists no code for the refusal, so the code cannot tell it apart from a bad
value (32000) or an unknown error; the record's approval instances can: after a refused
update, one read of "Query Object Approval Flow Instances" (查询对象审批流实例,
``/cgi/crm/object/approvalInstances/query`` with ``dataId``; developer.fxiaoke.com/
openapi_v2/en/common/process/approval/query.html) tells whether an instance's ``state`` is
``in_progress`` (the page's states: in_progress, pass, error, cancel, reject). If one is,
the write is ``RECORD_LOCKED``: retryable, so a later run writes the tier once the
approval ends, and named so the admin sees why.
The read costs a call only for a refused record; a read that fails keeps the refusal as it
was. A lock set another way (an admin's "Lock Object", /cgi/crm/v2/object/lock) is not
recognised: the refusal keeps its code.
"""

from __future__ import annotations

import re

from connectors.contract import WriteResult
from connectors.errors import RecordError, TransientError
from connectors.fxiaoke.client import FxiaokeClient
from connectors.fxiaoke.override_audit import INSTANCES_PATH

LOCKED = "RECORD_LOCKED"
IN_PROGRESS = "in_progress"
#: How errors.classify words a code FXiaoke answered (an unlisted one is a TransientError).
_ANSWERED = re.compile(r"errorCode (-?\d+)")


def under_approval(client: FxiaokeClient, record_id: str) -> bool:
    """Whether an approval flow instance of the record is still in progress."""
    try:
        answer = client.call(INSTANCES_PATH, {}, top={"dataId": record_id})
    except (RecordError, TransientError):
        return False
    instances = answer.get("instances") or []
    return any(isinstance(i, dict) and i.get("state") == IN_PROGRESS for i in instances)


def explain_refusal(client: FxiaokeClient, refused: WriteResult) -> WriteResult:
    """``refused`` (a failed customer update) as ``RECORD_LOCKED`` when FXiaoke answered it
    with an error code and an approval of the record is in progress; otherwise unchanged
    (a failure in transit is no refusal)."""
    if refused.ok:
        return refused
    found = _ANSWERED.search(refused.message or "")
    code = refused.error_code if (refused.error_code or "").isdigit() else found and found[1]
    if not code or not under_approval(client, refused.key):
        return refused
    message = (
        f"record {refused.key}: {LOCKED}: FXiaoke refused the tier write (errorCode {code}) "
        "while an approval of the record is in progress; retried on a later run"
    )
    return WriteResult(refused.kind, refused.key, False, LOCKED, message, True)
