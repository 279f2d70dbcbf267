"""The Zoho sandbox's write routes: ``PUT``/``POST /crm/v2/{module}`` and ``/upsert``
(≤ 100 records a call, one result per record: 200 all good, 202 mixed, 400 all failed),
upsert only on the modules Zoho supports it for (``UPSERT_MODULES``), a value a unique field
already holds on another record refused (``DUPLICATE_DATA``), and campaign
membership through the Contacts/Leads ``Campaigns`` related list (relate, list, delink).
Writes fire the notification channels (``zoho_notify.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from connectors.sandbox.server import Request, Response
from connectors.sandbox.zoho_auth import zoho_error
from connectors.sandbox.zoho_schema import (
    CAMPAIGN_MODULE,
    CUSTOMER_MODULE,
    MODULES,
    TASK_MODULE,
    invalid_value,
)
from connectors.sandbox.zoho_wire import ID_BASE, format_time, record_error, request_body

if TYPE_CHECKING:
    from connectors.sandbox.zoho_api import ZohoApi

MAX_WRITE = 100
#: The sandbox's modules that "Insert or Update Records (Upsert)" supports. Its v2 page
#: (zoho.com/crm/developer/docs/api/v2/upsert-records.html) lists "Leads, Accounts,
#: Contacts, Deals, Campaigns, Cases, Solutions, Products, Vendors, Price Books, Quotes,
#: Sales Orders, Purchase Orders, Invoices, and Custom"; later versions add Appointments
#: and Services. Tasks is in none of them (Insert and Update Records list it).
UPSERT_MODULES = frozenset({CUSTOMER_MODULE, "Leads", "Accounts", CAMPAIGN_MODULE})
MEMBERS = "Campaign_Members"  # store object: id "<contact id>:<campaign id>"


def update(api: ZohoApi, request: Request) -> Response:
    return _write(api, request, mode="update")


def insert(api: ZohoApi, request: Request) -> Response:
    return _write(api, request, mode="insert")


def upsert(api: ZohoApi, request: Request) -> Response:
    """Upsert on a module the Upsert page does not list is refused whole, before any
    record, with the error that page documents for a module the API does not support:
    400 ``INVALID_MODULE``, "The given module is not supported in API" ("Insert or Update
    Records (Upsert)", Possible Errors)."""
    if request.params["module"] not in UPSERT_MODULES:
        return zoho_error("INVALID_MODULE", "the given module is not supported in api", 400)
    return _write(api, request, mode="upsert")


def _write(api: ZohoApi, request: Request, *, mode: str) -> Response:
    module = request.params["module"]
    try:
        body = request_body(request)
    except ValueError:
        return zoho_error("INVALID_DATA", "body is not valid JSON", 400)
    records = body.get("data")
    if not isinstance(records, list) or not records:
        return zoho_error("MANDATORY_NOT_FOUND", "data is missing", 400, api_name="data")
    if len(records) > MAX_WRITE:
        return zoho_error(
            "LIMIT_EXCEEDED", "only 100 records can be written per call", 400, limit=100
        )
    api.triggers.append(body.get("trigger"))
    dup_fields = body.get("duplicate_check_fields") or []
    results: list[dict[str, Any]] = []
    changed: list[tuple[str, str, list[str]]] = []  # (operation, id, fields)
    with api.store.transaction():  # one commit per call, each record still on its own
        taken = _unique_values(api, module)
        for index, raw in enumerate(records):
            result, change = write_one(api, module, raw, index, mode, dup_fields, taken)
            results.append(result)
            if change is not None:
                changed.append(change)
    for operation in ("insert", "update"):
        ids = [rid for op, rid, _ in changed if op == operation]
        if ids:
            affected = sorted({f for op, _, fs in changed if op == operation for f in fs})
            api.notifier.publish(module, operation, ids, affected, resource_base=api._base_url())
    ok = sum(1 for r in results if r["status"] == "success")
    if ok == len(results):
        status = 201 if mode == "insert" and len(results) == 1 else 200
    else:
        status = 400 if ok == 0 else api.mixed_status
    return Response.json({"data": results}, status)


def write_one(
    api: ZohoApi,
    module: str,
    raw: Any,
    index: int,
    mode: str,
    dup_fields: list[str],
    taken: dict[str, dict[str, str]] | None = None,
) -> tuple[dict[str, Any], tuple[str, str, list[str]] | None]:
    if not isinstance(raw, dict):
        return record_error("INVALID_DATA", "invalid data", api_name="data", index=index), None
    values = {k: v for k, v in raw.items() if k != "id"}
    rid = str(raw["id"]) if raw.get("id") is not None else None
    existing = api.store.get(module, rid) if rid else None
    if mode == "upsert" and rid is None:
        rid, existing = _find_duplicate(api, module, values, dup_fields)
    if mode == "update":
        if rid is None:
            return record_error("MANDATORY_NOT_FOUND", "id is missing", api_name="id"), None
        if existing is None:
            return record_error(
                "INVALID_DATA", "the id given seems to be invalid", api_name="id", id=rid
            ), None
    if rid is not None and rid in api.reject:
        code, api_name, message = api.reject[rid]
        return record_error(code, message, api_name=api_name, id=rid), None
    problem = _validate(api, module, values, creating=existing is None)
    if problem is not None:
        return problem, None
    taken = _unique_values(api, module) if taken is None else taken
    clash = _duplicate(taken, values, rid)
    if clash is not None:
        return clash, None
    values = _normalise_lookups(api, module, values)
    if existing is None:
        rid = rid or api.new_id()
        values.setdefault("Created_Time", format_time(api.store.clock()))
        if module == TASK_MODULE:
            values.setdefault("Status", "Not Started")
        stamp, _ = api.store.upsert(module, rid, values)
        action, message, operation = "insert", "record added", "insert"
    else:
        assert rid is not None
        stamp = api.store.update(module, rid, values)
        action, message, operation = "update", "record updated", "update"
    for name, held in taken.items():
        if values.get(name) not in (None, ""):
            held[str(values[name]).lower()] = rid
    details = {
        "id": rid,
        "Modified_Time": format_time(stamp),
        "Modified_By": {"name": "crmtier integration", "id": str(ID_BASE + 100001)},
        "Created_Time": values.get("Created_Time")
        or (existing[1] if existing else {}).get("Created_Time", format_time(stamp)),
        "Created_By": {"name": "crmtier integration", "id": str(ID_BASE + 100001)},
    }
    result: dict[str, Any] = {
        "code": "SUCCESS",
        "details": details,
        "message": message,
        "status": "success",
    }
    if mode == "upsert":
        result["action"] = action
        if action == "update" and dup_fields:
            result["duplicate_field"] = dup_fields[0]
    return result, (operation, rid, sorted(values))


def _unique_values(api: ZohoApi, module: str) -> dict[str, dict[str, str]]:
    """The module's unique fields (``unique``, not case sensitive, in the field metadata),
    each as value (lower case) -> the id of the record holding it: one scan a write call."""
    names = [f.api_name for f in api.schema.fields(module).values() if f.unique]
    taken: dict[str, dict[str, str]] = {name: {} for name in names}
    if names:
        for rid, _, data in api.store.scan(module):
            for name in names:
                if data.get(name) not in (None, ""):
                    taken[name][str(data[name]).lower()] = rid
    return taken


def _duplicate(
    taken: Mapping[str, Mapping[str, str]], values: Mapping[str, Any], rid: str | None
) -> dict[str, Any] | None:
    """A value a unique field already holds on another record is refused: a unique field
    arrests "the creation of duplicate records in that module via manual creation, imports,
    integrations" and a field of any module can be marked unique (Zoho CRM Help, "Checking
    Duplicate Records in Zoho CRM", www.zoho.com/crm/help/customization/create-unique-fields.html);
    the row answers ``DUPLICATE_DATA`` with the field in ``details.api_name`` (Kaizen #25,
    "Zoho CRM API - Common Errors and Error Handling", lists it among the 400 errors; the
    row's shape as in Kaizen #177, "Duplicate Check Preferences API vs Upsert API", whose
    later-version ``duplicate_record`` this v2 sandbox gives as ``id``). Two processes that
    each looked a task key up and found none meet this on the second insert."""
    for name, held in taken.items():
        value = values.get(name)
        other = held.get(str(value).lower()) if value not in (None, "") else None
        if other is not None and other != rid:
            return record_error("DUPLICATE_DATA", "duplicate data", api_name=name, id=other)
    return None


def _normalise_lookups(api: ZohoApi, module: str, values: dict[str, Any]) -> dict[str, Any]:
    """zcrmsdk sends lookup ids as numbers; Zoho stores and returns them as text."""
    fields = api.schema.fields(module)
    out = dict(values)
    for name, value in values.items():
        spec = fields.get(name)
        if spec is not None and spec.data_type in ("lookup", "ownerlookup") and value:
            out[name] = {**value, "id": str(value["id"])}
    return out


def _find_duplicate(
    api: ZohoApi, module: str, values: Mapping[str, Any], dup_fields: list[str]
) -> tuple[str | None, tuple[datetime, dict[str, Any]] | None]:
    keys = [(f, values.get(f)) for f in dup_fields if values.get(f) is not None]
    if not keys:
        return None, None
    for rid, stamp, data in api.store.scan(module):
        if all(data.get(f) == v for f, v in keys):
            return rid, (stamp, data)
    return None, None


def _validate(
    api: ZohoApi, module: str, values: Mapping[str, Any], *, creating: bool
) -> dict[str, Any] | None:
    fields = api.schema.fields(module)
    for name, value in values.items():
        if name.startswith("$"):
            continue
        spec = fields.get(name)
        if spec is None:
            return record_error("INVALID_DATA", "invalid data", api_name=name)
        expected = invalid_value(spec, value)
        if expected is not None:
            return record_error(
                "INVALID_DATA", "invalid data", api_name=name, expected_data_type=expected
            )
    if creating:
        for spec in fields.values():
            if spec.mandatory and values.get(spec.api_name) in (None, ""):
                return record_error(
                    "MANDATORY_NOT_FOUND", "required field not found", api_name=spec.api_name
                )
    if module == TASK_MODULE and values.get("What_Id") is not None:
        se_module = values.get("$se_module")
        if se_module not in MODULES:
            return record_error(
                "MANDATORY_NOT_FOUND", "$se_module is missing", api_name="$se_module"
            )
    return None


def relate(api: ZohoApi, request: Request) -> Response:
    module, contact = request.params["module"], request.params["id"]
    if module not in (CUSTOMER_MODULE, "Leads") or not api.store.exists(module, contact):
        return zoho_error("INVALID_DATA", "the related id given seems to be invalid", 400)
    try:
        items = request_body(request).get("data") or []
    except ValueError:
        return zoho_error("INVALID_DATA", "body is not valid JSON", 400)
    if len(items) > MAX_WRITE:
        return zoho_error("LIMIT_EXCEEDED", "only 100 relations per call", 400)
    results = []
    for item in items:
        cid = str(item.get("id")) if isinstance(item, dict) and item.get("id") else None
        if cid is None or not api.store.exists(CAMPAIGN_MODULE, cid):
            results.append(
                record_error(
                    "INVALID_DATA", "the id given seems to be invalid", api_name="id", id=cid
                )
            )
            continue
        status = item.get("Member_Status") or "Active"
        api.store.upsert(MEMBERS, f"{contact}:{cid}", {"Member_Status": status})
        results.append(
            {
                "code": "SUCCESS",
                "details": {"id": cid},
                "message": "relation updated",
                "status": "success",
            }
        )
    ok = sum(1 for r in results if r["status"] == "success")
    status_code = 200 if ok == len(results) else (400 if ok == 0 else api.mixed_status)
    return Response.json({"data": results}, status_code)


def related(api: ZohoApi, request: Request) -> Response:
    contact = request.params["id"]
    rows = []
    for rid, _, data in api.store.scan(MEMBERS):
        owner, _, cid = rid.partition(":")
        found = api.store.get(CAMPAIGN_MODULE, cid) if owner == contact else None
        if found is not None:
            rows.append(
                {
                    "id": cid,
                    "Campaign_Name": found[1].get("Campaign_Name"),
                    "Member_Status": data.get("Member_Status"),
                }
            )
    if not rows:
        return Response(204)
    info = {"per_page": 200, "count": len(rows), "page": 1, "more_records": False}
    return Response.json({"data": rows, "info": info})


def delink(api: ZohoApi, request: Request) -> Response:
    contact = request.params["id"]
    single = request.params.get("campaign")
    ids = [single] if single else [i for i in (request.arg("ids") or "").split(",") if i]
    if not ids:
        return zoho_error("MANDATORY_NOT_FOUND", "ids is missing", 400, api_name="ids")
    for cid in ids:
        api.store.delete(MEMBERS, f"{contact}:{cid}")
    return Response.json(
        {
            "data": [
                {
                    "code": "SUCCESS",
                    "details": {"id": cid},
                    "message": "relation removed",
                    "status": "success",
                }
                for cid in ids
            ]
        }
    )
