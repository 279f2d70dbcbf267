"""FXiaoke: an override's maker and checker from its approval flow.

The admin puts an approval flow (审批流) on the customer object, triggered when the
override fields are edited, approved by the checker role; its last step sets the approval
field. FXiaoke keeps each flow instance with its applicant and each approver's opinion:
``/cgi/crm/object/approvalInstances/query`` lists a record's instances (``dataId``;
``applicantOpenUserId``, ``createTime``, ``state`` ``pass`` once approved) and
``/cgi/crm/approvalInstance/get`` gives one instance's tasks with their ``opinions``
(``actionType``, ``openUserId``, ``replyTime``) (FXiaoke open API, 审批流程接口
"查询对象审批流实例" and "查询审批流实例详情", apifox.com/apidoc/docs-site/528859; the
request and answer fields as the FxiaokeSDK.NET client names them: UNVERIFIED against a
live tenant). The newest instance is the proposal: its applicant the maker, its last
``agree`` the checker. Two calls per customer whose override is approved, none for others.

A listed instance can come without an ``instanceId``: the listing's page gives the field
(``instances.instanceId``, String) with no promise that it is there, and says a field whose
value is null is left out of the answer unless the request sets ``includeNull`` (default
false) ("Query Object Approval Flow Instances", developer.fxiaoke.com/openapi_v2/en/common/
process/approval/query.html). The details read cannot be sent without it ("Query Approval
Flow Instance Details", ``/cgi/crm/approvalInstance/get``: ``instanceId`` String, Required,
"Obtained via 'Query Object Approval Instance' API"); sent empty, FXiaoke refuses it (10001,
a configuration error that stops the run). Such an approved instance is not read: the
customer keeps its maker and no checker (the override is refused, ``no_checker``, with a
task to the maker) and carries ``DQ_AUDIT_UNREAD``, counted in the run report and logged
by pseudonym (``sync.overrides.note_unread_audit``); the run goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from connectors.contract import CrmRecord
from connectors.override_audit import APPROVAL_PATH, AUDIT_UNREAD, AuditEvent, OverrideAudit, trail
from tiering_core.models import DQIssue

INSTANCES_PATH = "/cgi/crm/object/approvalInstances/query"
INSTANCE_PATH = "/cgi/crm/approvalInstance/get"
AGREE = "agree"
#: An approved instance listed without the id its details read needs (module docstring).
NO_INSTANCE_ID = DQIssue(
    code=AUDIT_UNREAD,
    field=APPROVAL_PATH,
    problem="approval flow instance listed without instanceId: its approver cannot be read",
)


def read_override_audit(connector: Any, records: Sequence[CrmRecord]) -> dict[str, OverrideAudit]:
    out = {}
    for record in records:
        cid = record.profile.id
        answer = connector.client.call(INSTANCES_PATH, {}, top={"dataId": cid})
        instances = [i for i in answer.get("instances") or [] if isinstance(i, dict)]
        if not instances:
            continue
        newest = max(instances, key=lambda i: int(i.get("createTime") or 0))
        events = []
        unread: tuple[DQIssue, ...] = ()
        if newest.get("applicantOpenUserId") and newest.get("createTime"):
            events.append(
                AuditEvent(
                    "proposal", str(newest["applicantOpenUserId"]), _at(newest["createTime"])
                )
            )
        if newest.get("state") == "pass" and not newest.get("instanceId"):
            unread = (NO_INSTANCE_ID,)
        elif newest.get("state") == "pass":
            detail = connector.client.call(
                INSTANCE_PATH, {}, top={"instanceId": str(newest["instanceId"])}
            )
            events += _approvals((detail.get("instanceDetail") or {}).get("tasks") or [])
        out[cid] = replace(trail(events), issues=unread)
    return out


def _approvals(tasks: list[Any]) -> list[AuditEvent]:
    return [
        AuditEvent("approval", str(o["openUserId"]), _at(o["replyTime"]))
        for task in tasks
        if isinstance(task, dict)
        for o in task.get("opinions") or []
        if isinstance(o, dict)
        and o.get("actionType") == AGREE
        and o.get("openUserId")
        and o.get("replyTime")
    ]


def _at(ms: Any) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)
