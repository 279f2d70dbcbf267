"""The FXiaoke sandbox's approval flow (审批流) for tier overrides: an instance per
proposal with its applicant, then the approver's ``agree`` opinion, served at
``/cgi/crm/object/approvalInstances/query`` and ``/cgi/crm/approvalInstance/get`` behind
the sandbox's usual checks (docs/overrides.md; ``connectors/sandbox/override_trail.py``
edits as a user and calls ``record_flow``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from connectors.sandbox.fxiaoke_auth import ApiError
from connectors.sandbox.server import Request, Router

#: Where the FXiaoke sandbox keeps approval flow instances, and the flow's api name.
FX_INSTANCES = "ApprovalInstance"
FX_FLOW = "crmtier_tier_override"


def record_flow(sandbox: Any, customer_id: str, user: str, at: datetime, kind: str) -> None:
    ms = int(at.timestamp() * 1000)
    store = sandbox.store
    if kind == "proposal":
        instance = uuid.uuid4().hex[:24]
        data = {
            "instanceId": instance,
            "instanceName": "tier override",
            "dataId": customer_id,
            "objectApiName": sandbox_object(sandbox),
            "triggerType": "Update",
            "state": "in_progress",
            "createTime": ms,
            "lastModifyTime": ms,
            "endTime": 0,
            "flowApiName": FX_FLOW,
            "applicantOpenUserId": user,
            "tasks": [],
        }
        store.insert_many(FX_INSTANCES, [(instance, at, data)])
        return
    open_ = [
        (rid, data)
        for rid, _, data in store.scan(FX_INSTANCES)
        if data["dataId"] == customer_id and data["state"] == "in_progress"
    ]
    for rid, data in open_:
        task = {
            "id": uuid.uuid4().hex[:24],
            "type": "single",
            "state": "pass",
            "flowApiName": FX_FLOW,
            "createTime": data["createTime"],
            "modifyTime": ms,
            "endTime": ms,
            "opinions": [
                {"actionType": "agree", "opinion": "", "replyTime": ms, "openUserId": user}
            ],
            "completeOpenPersons": [user],
            "unCompletePersons": [],
        }
        done = {**data, "state": "pass", "endTime": ms, "lastModifyTime": ms, "tasks": [task]}
        store.insert_many(FX_INSTANCES, [(rid, at, done)])


def sandbox_object(sandbox: Any) -> str:
    return str(sandbox.mapping.mapping.object)


def install_fxiaoke_flow(sandbox: Any, router: Router, wrap: Callable[..., Any]) -> None:
    """The two approval flow reads, behind ``wrap``: the sandbox's usual checks (auth,
    limits, quota) and FXiaoke's answer envelope."""

    def required(body: Mapping[str, Any], name: str) -> str:
        """Both reads' one parameter is required ("查询对象审批流实例": ``dataId``; "Query
        Approval Flow Instance Details": ``instanceId``); the code for a missing one is
        undocumented, 10001 (缺少参数) our best reading."""
        value = body.get(name)
        if not isinstance(value, str) or not value:
            raise ApiError(10001, f"缺少参数{name}")
        return value

    def instances(request: Request, body: Mapping[str, Any], data: Mapping[str, Any]) -> Any:
        rid = required(body, "dataId")
        found = [
            {k: v for k, v in d.items() if k != "tasks"}
            for _, _, d in sandbox.store.scan(FX_INSTANCES)
            if d["dataId"] == rid
        ]
        return {"instances": sorted(found, key=lambda d: d["createTime"])}

    def instance(request: Request, body: Mapping[str, Any], data: Mapping[str, Any]) -> Any:
        found = sandbox.store.get(FX_INSTANCES, required(body, "instanceId"))
        if found is None:
            return {"instanceDetail": None}
        detail = found[1]
        head = {k: v for k, v in detail.items() if k != "tasks"}
        return {"instanceDetail": {"instance": head, "tasks": detail["tasks"]}}

    path = "/cgi/crm/object/approvalInstances/query"
    router.add("POST", path, wrap(instances), "approvalInstances")
    router.add("POST", "/cgi/crm/approvalInstance/get", wrap(instance), "approvalInstance")
