"""Sandboxes: an RM proposes a tier override and a checker approves it, as CRM users do,
and each sandbox keeps the audit its CRM keeps (docs/overrides.md):

* Salesforce: one ``AccountHistory`` row per tracked field changed (field history
  tracking), with the user as ``CreatedById``; queried with SOQL like any object;
* Zoho CRM: a timeline entry per edit (``done_by``, ``audited_time``, ``field_history``),
  served at ``GET /crm/v5/{module}/{id}/__timeline``;
* FXiaoke: an approval flow instance per proposal (its applicant, then the approver's
  ``agree`` opinion), served at ``/cgi/crm/object/approvalInstances/query`` and
  ``/cgi/crm/approvalInstance/get``.

Users are CRM user ids chosen by the test (Salesforce ``005...``, Zoho digits, FXiaoke
open user ids); the sandboxes do not check them, as no API crmtier calls lists them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from connectors.salesforce.override_audit import history_object
from connectors.sandbox.base import Sandbox
from connectors.sandbox.salesforce_schema import sf_datetime
from connectors.sandbox.server import Request, Response, Router

#: Where the FXiaoke sandbox keeps approval flow instances, and the flow's api name.
FX_INSTANCES = "ApprovalInstance"
FX_FLOW = "crmtier_tier_override"
#: Where the Zoho sandbox keeps timeline entries.
ZOHO_TIMELINE = "Timeline"


def propose_override(
    sandbox: Sandbox,
    customer_id: str,
    *,
    user: str,
    at: datetime,
    value_tier: str | None = None,
    service_tier: str | None = None,
    reason: str | None = None,
    expires: date | None = None,
) -> None:
    """``user`` (the maker) sets the override fields; any earlier approval is cleared."""
    changes = {
        "override.value_tier": value_tier,
        "override.service_tier": service_tier,
        "override.reason": reason,
        "override.expires": expires.isoformat() if expires else None,
        "override.approved": False,
    }
    _edit(sandbox, customer_id, changes, user, at, "proposal")


def approve_override(sandbox: Sandbox, customer_id: str, *, user: str, at: datetime) -> None:
    """``user`` (the checker) approves the override as it stands."""
    _edit(sandbox, customer_id, {"override.approved": True}, user, at, "approval")


def _edit(
    sandbox: Sandbox,
    customer_id: str,
    changes: Mapping[str, Any],
    user: str,
    at: datetime,
    kind: str,
) -> None:
    sandbox.edit_customer(customer_id, changes)
    fields = {
        sandbox_field(sandbox, path): value for path, value in changes.items() if value is not None
    }
    if sandbox.crm == "salesforce":
        _salesforce_history(sandbox, customer_id, fields, user, at)
    elif sandbox.crm == "zoho":
        _zoho_timeline(sandbox, customer_id, fields, user, at)
    elif sandbox.crm == "fxiaoke":
        _fxiaoke_flow(sandbox, customer_id, user, at, kind)


def sandbox_field(sandbox: Sandbox, path: str) -> str:
    """The CRM field a canonical input path is stored in by this sandbox's default mapping."""
    return str(_mapping(sandbox).mapping.fields[path])


def _mapping(sandbox: Sandbox) -> Any:
    """The sandbox's default mapping (``mapping`` on Salesforce and FXiaoke, ``default`` on
    Zoho)."""
    found: Any = sandbox
    return getattr(found, "mapping", None) or found.default


# --- Salesforce: field history tracking ---------------------------------------------------


def _salesforce_history(
    sandbox: Sandbox, customer_id: str, fields: Mapping[str, Any], user: str, at: datetime
) -> None:
    sobject: str = sandbox.org.customer_object  # type: ignore[attr-defined]
    name, parent = history_object(sobject)
    rows = [
        (
            f"017{uuid.uuid4().int % 10**12:012d}AAA",
            at,
            {
                parent: customer_id,
                "Field": field,
                "OldValue": None,
                "NewValue": value,
                "CreatedById": user,
                "CreatedDate": sf_datetime(at.astimezone(UTC)),
                "IsDeleted": False,
            },
        )
        for field, value in fields.items()
    ]
    sandbox.store.insert_many(name, rows)


# --- Zoho CRM: the record's timeline ------------------------------------------------------


def _zoho_timeline(
    sandbox: Sandbox, customer_id: str, fields: Mapping[str, Any], user: str, at: datetime
) -> None:
    entry = {
        "record_id": customer_id,
        "audited_time": at.astimezone(UTC).isoformat(),
        "action": "updated",
        "source": "crm_ui",
        "done_by": {"id": user, "name": f"user {user}"},
        "field_history": [
            {"api_name": field, "_value": {"new": _text(value), "old": None}}
            for field, value in fields.items()
        ],
    }
    sandbox.store.insert_many(ZOHO_TIMELINE, [(uuid.uuid4().hex, at, entry)])


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def install_zoho_timeline(sandbox: Any, router: Router) -> None:
    """``GET /crm/v5/{module}/{id}/__timeline``, newest first, one page (the sandbox's
    records never have 200 entries)."""

    def timeline(request: Request) -> Response:
        rid = request.params["id"]
        entries = [
            data for _, _, data in sandbox.store.scan(ZOHO_TIMELINE) if data.get("record_id") == rid
        ]
        entries.sort(key=lambda e: e["audited_time"], reverse=True)
        if not entries:
            return Response(204, b"")
        body = {
            "__timeline": [{k: v for k, v in e.items() if k != "record_id"} for e in entries],
            "info": {"per_page": 200, "count": len(entries), "more_records": False},
        }
        return Response.json(body)

    path = r"/crm/v5/(?P<module>[A-Za-z_][A-Za-z0-9_]*)/(?P<id>\d+)/__timeline"
    guarded = sandbox.api._api(timeline, "timeline")  # the sandbox's own checks and credits
    router.add("GET", path, guarded, "timeline")


# --- FXiaoke: the approval flow -----------------------------------------------------------


def _fxiaoke_flow(sandbox: Sandbox, customer_id: str, user: str, at: datetime, kind: str) -> None:
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


def sandbox_object(sandbox: Sandbox) -> str:
    return str(_mapping(sandbox).mapping.object)


def install_fxiaoke_flow(sandbox: Any, router: Router, wrap: Callable[..., Any]) -> None:
    """The two approval flow reads, behind ``wrap``: the sandbox's usual checks (auth,
    limits, quota) and FXiaoke's answer envelope."""

    def instances(request: Request, body: Mapping[str, Any], data: Mapping[str, Any]) -> Any:
        rid = str(body.get("dataId") or "")
        found = [
            {k: v for k, v in d.items() if k != "tasks"}
            for _, _, d in sandbox.store.scan(FX_INSTANCES)
            if d["dataId"] == rid
        ]
        return {"instances": sorted(found, key=lambda d: d["createTime"])}

    def instance(request: Request, body: Mapping[str, Any], data: Mapping[str, Any]) -> Any:
        found = sandbox.store.get(FX_INSTANCES, str(body.get("instanceId") or ""))
        if found is None:
            return {"instanceDetail": None}
        detail = found[1]
        head = {k: v for k, v in detail.items() if k != "tasks"}
        return {"instanceDetail": {"instance": head, "tasks": detail["tasks"]}}

    path = "/cgi/crm/object/approvalInstances/query"
    router.add("POST", path, wrap(instances), "approvalInstances")
    router.add("POST", "/cgi/crm/approvalInstance/get", wrap(instance), "approvalInstance")
