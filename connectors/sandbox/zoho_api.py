"""The Zoho CRM v2 REST surface of the sandbox, as zcrmsdk 3.1.0 speaks it.

Wire facts it reproduces (Zoho CRM API v2 docs, zoho.com/crm/developer/docs/api/v2, and zcrmsdk
3.1.0's source): ids are 19-digit strings in responses but arrive as JSON numbers from zcrmsdk;
PUT/POST bodies come without a Content-Type; list reads page by ``page``/``per_page`` (≤ 200) with
``info.more_records``, answer 204 when the module has nothing and 304 when nothing changed after
``If-Modified-Since``; writes take
≤ 100 records and answer per record (200 all good, 202 mixed, 400 all failed); date-times
have second resolution and the org's UTC offset; every API call costs credits (writes one
per ten records) and reports ``X-API-CREDITS-REMAINING``; a 429 ``TOO_MANY_REQUESTS``
carries no ``Retry-After``.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from connectors.sandbox.server import Request, Response, Router
from connectors.sandbox.store import RecordStore
from connectors.sandbox.zoho_auth import Accounts, zoho_error
from connectors.sandbox.zoho_notify import Channel, ChannelError, Notifier, resolve_expiry
from connectors.sandbox.zoho_schema import (
    CAMPAIGN_MODULE,
    CUSTOMER_MODULE,
    MODULES,
    TASK_MODULE,
    OrgSchema,
    invalid_value,
)

MAX_PAGE = 200
MAX_WRITE = 100
MEMBERS = "Campaign_Members"  # store object: id "<contact id>:<campaign id>"
ORG_TZ = timezone(timedelta(hours=8))  # a bank in China: Zoho renders times in org time
#: Route kinds that write: what ``Sandbox.write_calls()`` counts.
WRITE_KINDS = ("update", "insert", "upsert", "related_update", "related_delete")
_ID_BASE = 5725767000000000000
#: the integration user's profile by default: a custom least-privilege profile, as
#: docs/admin-setup.md prescribes (docs/targets.md S6); "Administrator" is Zoho's built-in admin
LEAST_PRIVILEGE_PROFILE = "crmtier Integration"
INTEGRATION_ROLE = "Integration"


def format_time(ts: datetime) -> str:
    """Zoho date-time: second resolution, org offset (``2026-01-01T08:00:13+08:00``)."""
    return ts.astimezone(ORG_TZ).replace(microsecond=0).isoformat()


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _second(ts: datetime) -> datetime:
    return ts.replace(microsecond=0)


class Credits:
    """Rolling API credits of the org (Zoho CRM "API Limits"): most calls cost 1, inserts,
    updates and upserts 1 per 10 records."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.by_kind: dict[str, int] = {}
        self._lock = threading.Lock()

    def charge(self, kind: str, cost: int) -> bool:
        with self._lock:
            if self.used + cost > self.limit:
                return False
            self.used += cost
            self.by_kind[kind] = self.by_kind.get(kind, 0) + cost
            return True

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    def reset(self) -> None:
        with self._lock:
            self.used = 0
            self.by_kind.clear()


class ZohoApi:
    """Route handlers over the sandbox's store; ``register`` wires them into a router."""

    def __init__(
        self,
        store: RecordStore,
        schema: OrgSchema,
        accounts: Accounts,
        notifier: Notifier,
        credits: Credits,
        base_url: Callable[[], str],
    ) -> None:
        self.store = store
        self.schema = schema
        self.accounts = accounts
        self.notifier = notifier
        self.credits = credits
        self._base_url = base_url
        self.reject: dict[str, tuple[str, str]] = {}  # record id -> (code, api_name)
        self.triggers: list[list[str] | None] = []  # "trigger" of every write call
        self.mixed_status = 202
        #: profile and role of the user the OAuth grant acts as (``users?type=CurrentUser``)
        self.profile = LEAST_PRIVILEGE_PROFILE
        self.role = INTEGRATION_ROLE
        #: v3+ refuse ``page``/``per_page`` beyond the first 2,000 records; whether v2 does
        #: is not documented (Zoho CRM v2 "Get Records"), so it is a switch: None = no limit.
        self.discrete_page_limit: int | None = None
        # ids of records the API creates continue after any kept in a reused data dir
        created = [int(rid) for rid, _, _ in store.scan(TASK_MODULE) if rid.isdigit()]
        self._next_id = max([_ID_BASE + 500000, *created])
        self._id_lock = threading.Lock()

    def new_id(self) -> str:
        with self._id_lock:
            self._next_id += 1
            return str(self._next_id)

    # --- wiring ---------------------------------------------------------------------------

    def register(self, router: Router) -> None:
        mod = r"(?P<module>[A-Za-z_][A-Za-z0-9_]*)"
        rid = r"(?P<id>\d+)"
        add = router.add
        add("POST", r"/oauth/v2/token", self.accounts.token_endpoint, "token")
        add("GET", r"/crm/v2/settings/fields", self._api(self.fields, "fields"), "fields")
        add("GET", r"/crm/v2/settings/modules", self._api(self.modules, "modules"), "modules")
        add(
            "GET",
            r"/crm/v2/settings/related_lists",
            self._api(self.related_lists, "related_lists"),
            "related_lists",
        )
        for method, handler, kind in (
            ("POST", self.watch_enable, "watch"),
            ("PUT", self.watch_update, "watch"),
            ("PATCH", self.watch_update, "watch"),
            ("GET", self.watch_list, "watch_list"),
            ("DELETE", self.watch_disable, "watch_delete"),
        ):
            add(method, r"/crm/v2/actions/watch", self._api(handler, kind), kind)
        related = rf"/crm/v2/{mod}/{rid}/Campaigns"
        add("PUT", related, self._api(self.relate, "related_update"), "related_update")
        add("GET", related, self._api(self.related, "related_read"), "related_read")
        add("DELETE", related, self._api(self.delink, "related_delete"), "related_delete")
        add(
            "DELETE",
            rf"{related}/(?P<campaign>\d+)",
            self._api(self.delink, "related_delete"),
            "related_delete",
        )
        add("GET", r"/crm/v2/users", self._api(self.users, "users"), "users")
        add("POST", rf"/crm/v2/{mod}/upsert", self._api(self.upsert, "upsert"), "upsert")
        add("GET", rf"/crm/v2/{mod}/{rid}", self._api(self.get_one, "read"), "read")
        add("GET", rf"/crm/v2/{mod}", self._api(self.list_records, "read"), "read")
        add("PUT", rf"/crm/v2/{mod}", self._api(self.update, "update"), "update")
        add("POST", rf"/crm/v2/{mod}", self._api(self.insert, "insert"), "insert")

    def _api(self, handler: Callable[[Request], Response], kind: str) -> Callable[..., Response]:
        def wrapped(request: Request) -> Response:
            denied = self.accounts.check(request)
            if denied is not None:
                return denied
            module = request.params.get("module")
            if module is not None and module not in MODULES:
                return zoho_error(
                    "INVALID_MODULE", "the module name given seems to be invalid", 400
                )
            if not self.credits.charge(kind, self._cost(kind, request)):
                return zoho_error("LIMIT_REACHED", "API credits for the day are exhausted", 429)
            response = handler(request)
            response.headers["X-API-CREDITS-REMAINING"] = str(self.credits.remaining)
            return response

        return wrapped

    @staticmethod
    def _cost(kind: str, request: Request) -> int:
        if kind not in ("update", "insert", "upsert"):
            return 1
        try:
            n = len(_body(request).get("data") or [])
        except ValueError:
            n = 1
        return max(1, math.ceil(n / 10))

    # --- metadata -------------------------------------------------------------------------

    def fields(self, request: Request) -> Response:
        module = request.arg("module") or ""
        if module not in MODULES:
            return zoho_error("INVALID_MODULE", "the module name given seems to be invalid", 400)
        return Response.json({"fields": self.schema.as_json(module)})

    def modules(self, _: Request) -> Response:
        return Response.json(
            {
                "modules": [
                    {
                        "id": str(_ID_BASE + 1000 + i),
                        "api_name": m,
                        "module_name": m,
                        "singular_label": m.rstrip("s"),
                        "plural_label": m,
                        "api_supported": True,
                        "generated_type": "default",
                    }
                    for i, m in enumerate(MODULES)
                ]
            }
        )

    def users(self, request: Request) -> Response:
        """``GET /crm/v2/users?type=CurrentUser``: the one user the sandbox models, the
        integration user. Other types would list the org's users, which the sandbox does
        not keep, so they are refused rather than answered wrongly."""
        if request.arg("type") != "CurrentUser":
            return zoho_error("INVALID_DATA", "the sandbox answers only type=CurrentUser", 400)
        ids = {"user": _ID_BASE + 90001, "profile": _ID_BASE + 90002, "role": _ID_BASE + 90003}
        user = {  # the v2 sample answer's keys crmtier and zcrmsdk read, nothing personal
            "id": str(ids["user"]),
            "first_name": "crmtier",
            "last_name": "Integration",
            "full_name": "crmtier Integration",
            "email": "crmtier-integration@bank.example",
            "role": {"name": self.role, "id": str(ids["role"])},
            "profile": {"name": self.profile, "id": str(ids["profile"])},
            "status": "active",
            "confirm": True,
            "time_zone": "Asia/Shanghai",
        }
        return Response.json(
            {
                "users": [user],
                "info": {"per_page": 200, "count": 1, "page": 1, "more_records": False},
            }
        )

    def related_lists(self, request: Request) -> Response:
        module = request.arg("module") or ""
        if module not in MODULES:
            return zoho_error("INVALID_MODULE", "the module name given seems to be invalid", 400)
        lists = []
        if module in (CUSTOMER_MODULE, "Leads"):
            lists.append(
                {
                    "id": str(_ID_BASE + 2001),
                    "sequence_number": "1",
                    "display_label": "Campaigns",
                    "api_name": "Campaigns",
                    "module": CAMPAIGN_MODULE,
                    "name": "Campaigns",
                    "action": None,
                    "href": f"{module}/{{ENTITYID}}/Campaigns",
                    "type": "default",
                }
            )
        return Response.json({"related_lists": lists})

    # --- reads ----------------------------------------------------------------------------

    def render(
        self,
        module: str,
        rid: str,
        stamp: datetime,
        data: Mapping[str, Any],
        fields: set[str] | None = None,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"id": rid}
        for key, value in data.items():
            if fields is None or key in fields:
                out[key] = value
        if fields is None or "Modified_Time" in fields:
            out["Modified_Time"] = format_time(stamp)
        if fields is None:
            out["$approved"] = True
            out["$editable"] = True
        return out

    def list_records(self, request: Request) -> Response:
        module = request.params["module"]
        try:
            page = int(request.arg("page", "1") or 1)
            per_page = int(request.arg("per_page", str(MAX_PAGE)) or MAX_PAGE)
        except ValueError:
            return zoho_error("INVALID_DATA", "invalid page or per_page", 400)
        if per_page > MAX_PAGE or per_page < 1 or page < 1:
            return zoho_error(
                "INVALID_DATA", "per_page must be between 1 and 200", 400, api_name="per_page"
            )
        fields = _field_set(request.arg("fields"))
        since: datetime | None = None
        ims = request.header("If-Modified-Since")
        if ims:
            try:
                since = _second(parse_time(ims)) + timedelta(seconds=1)  # "modified after"
            except ValueError:
                return zoho_error("INVALID_DATA", "invalid If-Modified-Since", 400)
        ids = request.arg("ids")
        if ids:
            wanted = [i for i in ids.split(",") if i]
            if len(wanted) > MAX_WRITE:
                return zoho_error("LIMIT_EXCEEDED", "more than 100 ids", 400)
            found = self.store.get_many(module, wanted)
            rows = [(i, *found[i]) for i in wanted if i in found]
            if since is not None:
                rows = [r for r in rows if _second(r[1]) >= since]
            if not rows:
                return Response(204)
            data = [self.render(module, rid, st, d, fields) for rid, st, d in rows]
            info = {"per_page": per_page, "count": len(data), "page": 1, "more_records": False}
            return Response.json({"data": data, "info": info})
        sort_by = request.arg("sort_by")
        descending = (request.arg("sort_order") or "asc") == "desc"
        offset = (page - 1) * per_page
        if self.discrete_page_limit is not None and offset + per_page > self.discrete_page_limit:
            return zoho_error(
                "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                f"You can only get the first {self.discrete_page_limit} records without "
                "using page_token param.",
                400,
                limit=self.discrete_page_limit,
            )
        if sort_by in (None, "Modified_Time") and not descending:
            chunk = list(self.store.scan(module, since=since, limit=per_page + 1, offset=offset))
        else:
            everything = list(self.store.scan(module, since=since))
            key = (lambda r: int(r[0])) if sort_by == "id" else (lambda r: (r[1], r[0]))
            everything.sort(key=key, reverse=descending)
            chunk = everything[offset : offset + per_page + 1]
        if not chunk:
            if since is not None and self.store.count(module) > 0 and page == 1:
                return Response(304)
            return Response(204)
        more = len(chunk) > per_page
        data = [self.render(module, rid, st, d, fields) for rid, st, d in chunk[:per_page]]
        info = {"per_page": per_page, "count": len(data), "page": page, "more_records": more}
        return Response.json({"data": data, "info": info})

    def get_one(self, request: Request) -> Response:
        module, rid = request.params["module"], request.params["id"]
        found = self.store.get(module, rid)
        if found is None:
            return Response(204)
        return Response.json({"data": [self.render(module, rid, found[0], found[1])]})

    # --- writes ---------------------------------------------------------------------------

    def update(self, request: Request) -> Response:
        return self._write(request, mode="update")

    def insert(self, request: Request) -> Response:
        return self._write(request, mode="insert")

    def upsert(self, request: Request) -> Response:
        return self._write(request, mode="upsert")

    def _write(self, request: Request, *, mode: str) -> Response:
        module = request.params["module"]
        try:
            body = _body(request)
        except ValueError:
            return zoho_error("INVALID_DATA", "body is not valid JSON", 400)
        records = body.get("data")
        if not isinstance(records, list) or not records:
            return zoho_error("MANDATORY_NOT_FOUND", "data is missing", 400, api_name="data")
        if len(records) > MAX_WRITE:
            return zoho_error(
                "LIMIT_EXCEEDED", "only 100 records can be written per call", 400, limit=100
            )
        self.triggers.append(body.get("trigger"))
        dup_fields = body.get("duplicate_check_fields") or []
        results: list[dict[str, Any]] = []
        changed: list[tuple[str, str, list[str]]] = []  # (operation, id, fields)
        with self.store.transaction():  # one commit per call, each record still on its own
            for index, raw in enumerate(records):
                result, change = self._write_one(module, raw, index, mode, dup_fields)
                results.append(result)
                if change is not None:
                    changed.append(change)
        for operation in ("insert", "update"):
            ids = [rid for op, rid, _ in changed if op == operation]
            if ids:
                affected = sorted({f for op, _, fs in changed if op == operation for f in fs})
                self.notifier.publish(
                    module, operation, ids, affected, resource_base=self._base_url()
                )
        ok = sum(1 for r in results if r["status"] == "success")
        if ok == len(results):
            status = 201 if mode == "insert" and len(results) == 1 else 200
        else:
            status = 400 if ok == 0 else self.mixed_status
        return Response.json({"data": results}, status)

    def _write_one(
        self, module: str, raw: Any, index: int, mode: str, dup_fields: list[str]
    ) -> tuple[dict[str, Any], tuple[str, str, list[str]] | None]:
        if not isinstance(raw, dict):
            return _record_error("INVALID_DATA", "invalid data", api_name="data", index=index), None
        values = {k: v for k, v in raw.items() if k != "id"}
        rid = str(raw["id"]) if raw.get("id") is not None else None
        existing = self.store.get(module, rid) if rid else None
        if mode == "upsert" and rid is None:
            rid, existing = self._find_duplicate(module, values, dup_fields)
        if mode == "update":
            if rid is None:
                return _record_error("MANDATORY_NOT_FOUND", "id is missing", api_name="id"), None
            if existing is None:
                return _record_error(
                    "INVALID_DATA", "the id given seems to be invalid", api_name="id", id=rid
                ), None
        if rid is not None and rid in self.reject:
            code, api_name = self.reject[rid]
            return _record_error(code, "invalid data", api_name=api_name, id=rid), None
        problem = self._validate(module, values, creating=existing is None)
        if problem is not None:
            return problem, None
        values = self._normalise_lookups(module, values)
        if existing is None:
            rid = rid or self.new_id()
            values.setdefault("Created_Time", format_time(self.store.clock()))
            if module == TASK_MODULE:
                values.setdefault("Status", "Not Started")
            stamp, _ = self.store.upsert(module, rid, values)
            action, message, operation = "insert", "record added", "insert"
        else:
            assert rid is not None
            stamp = self.store.update(module, rid, values)
            action, message, operation = "update", "record updated", "update"
        details = {
            "id": rid,
            "Modified_Time": format_time(stamp),
            "Modified_By": {"name": "crmtier integration", "id": str(_ID_BASE + 100001)},
            "Created_Time": values.get("Created_Time")
            or (existing[1] if existing else {}).get("Created_Time", format_time(stamp)),
            "Created_By": {"name": "crmtier integration", "id": str(_ID_BASE + 100001)},
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

    def _normalise_lookups(self, module: str, values: dict[str, Any]) -> dict[str, Any]:
        """zcrmsdk sends lookup ids as numbers; Zoho stores and returns them as text."""
        fields = self.schema.fields(module)
        out = dict(values)
        for name, value in values.items():
            spec = fields.get(name)
            if spec is not None and spec.data_type in ("lookup", "ownerlookup") and value:
                out[name] = {**value, "id": str(value["id"])}
        return out

    def _find_duplicate(
        self, module: str, values: Mapping[str, Any], dup_fields: list[str]
    ) -> tuple[str | None, tuple[datetime, dict[str, Any]] | None]:
        keys = [(f, values.get(f)) for f in dup_fields if values.get(f) is not None]
        if not keys:
            return None, None
        for rid, stamp, data in self.store.scan(module):
            if all(data.get(f) == v for f, v in keys):
                return rid, (stamp, data)
        return None, None

    def _validate(
        self, module: str, values: Mapping[str, Any], *, creating: bool
    ) -> dict[str, Any] | None:
        fields = self.schema.fields(module)
        for name, value in values.items():
            if name.startswith("$"):
                continue
            spec = fields.get(name)
            if spec is None:
                return _record_error("INVALID_DATA", "invalid data", api_name=name)
            expected = invalid_value(spec, value)
            if expected is not None:
                return _record_error(
                    "INVALID_DATA", "invalid data", api_name=name, expected_data_type=expected
                )
        if creating:
            for spec in fields.values():
                if spec.mandatory and values.get(spec.api_name) in (None, ""):
                    return _record_error(
                        "MANDATORY_NOT_FOUND", "required field not found", api_name=spec.api_name
                    )
        if module == TASK_MODULE and values.get("What_Id") is not None:
            se_module = values.get("$se_module")
            if se_module not in MODULES:
                return _record_error(
                    "MANDATORY_NOT_FOUND", "$se_module is missing", api_name="$se_module"
                )
        return None

    # --- campaign membership (related list) ----------------------------------------------

    def relate(self, request: Request) -> Response:
        module, contact = request.params["module"], request.params["id"]
        if module not in (CUSTOMER_MODULE, "Leads") or not self.store.exists(module, contact):
            return zoho_error("INVALID_DATA", "the related id given seems to be invalid", 400)
        try:
            items = _body(request).get("data") or []
        except ValueError:
            return zoho_error("INVALID_DATA", "body is not valid JSON", 400)
        if len(items) > MAX_WRITE:
            return zoho_error("LIMIT_EXCEEDED", "only 100 relations per call", 400)
        results = []
        for item in items:
            cid = str(item.get("id")) if isinstance(item, dict) and item.get("id") else None
            if cid is None or not self.store.exists(CAMPAIGN_MODULE, cid):
                results.append(
                    _record_error(
                        "INVALID_DATA", "the id given seems to be invalid", api_name="id", id=cid
                    )
                )
                continue
            status = item.get("Member_Status") or "Active"
            self.store.upsert(MEMBERS, f"{contact}:{cid}", {"Member_Status": status})
            results.append(
                {
                    "code": "SUCCESS",
                    "details": {"id": cid},
                    "message": "relation updated",
                    "status": "success",
                }
            )
        ok = sum(1 for r in results if r["status"] == "success")
        status_code = 200 if ok == len(results) else (400 if ok == 0 else self.mixed_status)
        return Response.json({"data": results}, status_code)

    def related(self, request: Request) -> Response:
        contact = request.params["id"]
        rows = []
        for rid, _, data in self.store.scan(MEMBERS):
            owner, _, cid = rid.partition(":")
            found = self.store.get(CAMPAIGN_MODULE, cid) if owner == contact else None
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

    def delink(self, request: Request) -> Response:
        contact = request.params["id"]
        single = request.params.get("campaign")
        ids = [single] if single else [i for i in (request.arg("ids") or "").split(",") if i]
        if not ids:
            return zoho_error("MANDATORY_NOT_FOUND", "ids is missing", 400, api_name="ids")
        for cid in ids:
            self.store.delete(MEMBERS, f"{contact}:{cid}")
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

    # --- notifications --------------------------------------------------------------------

    def watch_enable(self, request: Request) -> Response:
        return self._watch(request, require_existing=False)

    def watch_update(self, request: Request) -> Response:
        return self._watch(request, require_existing=True)

    def _watch(self, request: Request, *, require_existing: bool) -> Response:
        try:
            items = _body(request).get("watch") or []
        except ValueError:
            return zoho_error("INVALID_DATA", "body is not valid JSON", 400)
        if not items:
            return zoho_error("MANDATORY_NOT_FOUND", "watch is missing", 400, api_name="watch")
        results = []
        now = datetime.now(UTC)
        for item in items:
            try:
                channel = self._channel(item, now, require_existing)
            except ChannelError as exc:
                results.append(_record_error(exc.code, str(exc), api_name=exc.api_name))
                continue
            self.notifier.upsert(channel)
            results.append(
                {
                    "code": "SUCCESS",
                    "status": "success",
                    "message": "Successfully subscribed for actions-watch of the given module",
                    "details": {"events": [self._event_json(channel, e) for e in channel.events]},
                }
            )
        ok = sum(1 for r in results if r["status"] == "success")
        return Response.json({"watch": results}, 200 if ok else 400)

    def _channel(self, item: Any, now: datetime, require_existing: bool) -> Channel:
        if not isinstance(item, dict):
            raise ChannelError("INVALID_DATA", "watch", "invalid watch entry")
        channel_id = item.get("channel_id")
        if channel_id in (None, ""):
            raise ChannelError("MANDATORY_NOT_FOUND", "channel_id", "channel_id is missing")
        channel_id = str(channel_id)
        existing = self.notifier.get(channel_id)
        if require_existing and existing is None:
            raise ChannelError("INVALID_DATA", "channel_id", "no such channel")
        events = item.get("events") or (existing.events if existing else None)
        notify_url = item.get("notify_url") or (existing.notify_url if existing else None)
        if not events:
            raise ChannelError("MANDATORY_NOT_FOUND", "events", "events is missing")
        if not notify_url:
            raise ChannelError("MANDATORY_NOT_FOUND", "notify_url", "notify_url is missing")
        for event in events:
            module, _, op = str(event).partition(".")
            if module not in MODULES or op not in ("create", "edit", "delete", "all"):
                raise ChannelError("INVALID_DATA", "events", f"invalid event {event}")
        requested = item.get("channel_expiry")
        try:
            expiry = resolve_expiry(parse_time(requested) if requested else None, now)
        except ValueError as exc:
            raise ChannelError("INVALID_DATA", "channel_expiry", str(exc)) from None
        token = item.get("token", existing.token if existing else None)
        return Channel(
            channel_id=channel_id,
            events=[str(e) for e in events],
            notify_url=str(notify_url),
            expiry=expiry,
            token=None if token is None else str(token),
            return_affected_field_values=bool(item.get("return_affected_field_values")),
        )

    def _event_json(self, channel: Channel, event: str) -> dict[str, Any]:
        module = event.partition(".")[0]
        return {
            "channel_expiry": format_time(channel.expiry),
            "resource_uri": f"{self._base_url()}/crm/v2/{module}",
            "resource_id": str(_ID_BASE + 1000 + MODULES.index(module)),
            "resource_name": module,
            "channel_id": channel.channel_id,
        }

    def watch_list(self, request: Request) -> Response:
        wanted = request.arg("channel_id")
        channels = [c for c in self.notifier.channels() if wanted is None or c.channel_id == wanted]
        if not channels:
            return Response(204)
        base = self._base_url()
        return Response.json(
            {
                "watch": [
                    {
                        "channel_id": c.channel_id,
                        "events": c.events,
                        "channel_expiry": format_time(c.expiry),
                        "notify_url": c.notify_url,
                        "token": c.token,
                        "resource_uri": f"{base}/crm/v2/{c.events[0].partition('.')[0]}",
                        "resource_name": c.events[0].partition(".")[0],
                    }
                    for c in channels
                ],
                "info": {"per_page": 200, "count": len(channels), "page": 1, "more_records": False},
            }
        )

    def watch_disable(self, request: Request) -> Response:
        ids = [i for i in (request.arg("channel_ids") or "").split(",") if i]
        if not ids:
            return zoho_error(
                "MANDATORY_NOT_FOUND", "channel_ids is missing", 400, api_name="channel_ids"
            )
        removed = set(self.notifier.remove(ids))
        return Response.json(
            {
                "watch": [
                    {
                        "code": "SUCCESS",
                        "status": "success",
                        "message": "Successfully unsubscribed from actions-watch",
                        "details": {"channel_id": cid},
                    }
                    if cid in removed
                    else _record_error("INVALID_DATA", "no such channel", api_name="channel_ids")
                    for cid in ids
                ]
            }
        )


def _record_error(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"code": code, "details": details, "message": message, "status": "error"}


def _body(request: Request) -> dict[str, Any]:
    """zcrmsdk sends JSON bodies without a Content-Type: parse regardless."""
    parsed = json.loads(request.body or b"{}")
    if not isinstance(parsed, dict):
        raise ValueError("body is not an object")
    return parsed


def _field_set(text: str | None) -> set[str] | None:
    if not text:
        return None
    return {f.strip() for f in text.split(",") if f.strip()}
