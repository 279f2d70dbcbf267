"""The Zoho CRM v2 REST surface of the sandbox, as zcrmsdk 3.1.0 speaks it.

Wire facts it reproduces (Zoho CRM API v2 docs, zoho.com/crm/developer/docs/api/v2, and zcrmsdk
3.1.0's source): ids are 19-digit strings in responses but arrive as JSON numbers from zcrmsdk;
PUT/POST bodies come without a Content-Type; list reads page by ``page``/``per_page`` (≤ 200) with
``info.more_records``, answer 204 when the module has nothing and 304 when nothing changed after
``If-Modified-Since``; ``fields`` is optional (without it every field comes back), with no
cap on its names in v2 (later versions cap it at 50: ``max_fields`` turns that on); writes
take ≤ 100 records and answer per record (200 all good, 202 mixed, 400 all failed); date-times
have second resolution and the org's UTC offset; every API call costs credits (writes one
per ten records) and reports ``X-API-CREDITS-REMAINING``; a 429 ``TOO_MANY_REQUESTS``
carries no ``Retry-After``.

This module wires the routes (``register``), checks tokens and charges credits (``_api``),
and serves metadata and reads; writes and campaign membership are ``zoho_writes.py``'s,
notification channels ``zoho_watch.py``'s.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from connectors.sandbox import zoho_watch as watch
from connectors.sandbox import zoho_writes as writes
from connectors.sandbox.server import Request, Response, Router
from connectors.sandbox.store import RecordStore
from connectors.sandbox.zoho_auth import Accounts, zoho_error
from connectors.sandbox.zoho_households import coql
from connectors.sandbox.zoho_notify import Notifier
from connectors.sandbox.zoho_schema import (
    CAMPAIGN_MODULE,
    CUSTOMER_MODULE,
    MODULES,
    TASK_MODULE,
    OrgSchema,
)
from connectors.sandbox.zoho_scopes import scope_refusal
from connectors.sandbox.zoho_users import users
from connectors.sandbox.zoho_wire import ID_BASE, format_time, parse_time, request_body
from connectors.sandbox.zoho_writes import MAX_WRITE
from connectors.zoho.scopes import REQUIRED_SCOPES

MAX_PAGE = 200
#: Route kinds that write: what ``Sandbox.write_calls()`` counts.
WRITE_KINDS = ("update", "insert", "upsert", "related_update", "related_delete")
#: the integration user's profile by default: a custom least-privilege profile, as
#: docs/admin-setup.md prescribes (docs/targets.md S6); "Administrator" is Zoho's built-in admin
LEAST_PRIVILEGE_PROFILE = "crmtier Integration"
INTEGRATION_ROLE = "Integration"


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
        self.reject: dict[str, tuple[str, str, str]] = {}  # record id -> (code, api_name, message)
        self.triggers: list[list[str] | None] = []  # "trigger" of every write call
        self.mixed_status = 202
        #: profile and role of the user the OAuth grant acts as (``users?type=CurrentUser``)
        self.profile = LEAST_PRIVILEGE_PROFILE
        self.role = INTEGRATION_ROLE
        #: v3+ refuse ``page``/``per_page`` beyond the first 2,000 records; whether v2 does
        #: is not documented (Zoho CRM v2 "Get Records"), so it is a switch: None = no limit.
        self.discrete_page_limit: int | None = None
        #: v5+ cap a read's ``fields`` at 50 names ("Get Records", v5/v7); v2 documents no
        #: cap, so it is a switch too: None = v2 as documented, 50 = a stricter org.
        self.max_fields: int | None = None
        #: the OAuth grant's scopes: a call none of whose scopes it holds is refused as
        #: Zoho refuses it (``zoho_scopes.py``)
        self.scopes: frozenset[str] = frozenset(REQUIRED_SCOPES)
        # ids of records the API creates continue after any kept in a reused data dir
        created = [int(rid) for rid, _, _ in store.scan(TASK_MODULE) if rid.isdigit()]
        self._next_id = max([ID_BASE + 500000, *created])
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
            ("POST", partial(watch.watch_enable, self), "watch"),
            ("PUT", partial(watch.watch_update, self), "watch"),
            ("PATCH", partial(watch.watch_update, self), "watch"),
            ("GET", partial(watch.watch_list, self), "watch_list"),
            ("DELETE", partial(watch.watch_disable, self), "watch_delete"),
        ):
            add(method, r"/crm/v2/actions/watch", self._api(handler, kind), kind)
        related = rf"/crm/v2/{mod}/{rid}/Campaigns"
        add(
            "PUT",
            related,
            self._api(partial(writes.relate, self), "related_update"),
            "related_update",
        )
        add(
            "GET", related, self._api(partial(writes.related, self), "related_read"), "related_read"
        )
        add(
            "DELETE",
            related,
            self._api(partial(writes.delink, self), "related_delete"),
            "related_delete",
        )
        add(
            "DELETE",
            rf"{related}/(?P<campaign>\d+)",
            self._api(partial(writes.delink, self), "related_delete"),
            "related_delete",
        )
        add("GET", r"/crm/v2/users", self._api(partial(users, self), "users"), "users")
        add("POST", r"/crm/v2/coql", self._api(partial(coql, self), "coql"), "coql")
        add(
            "POST",
            rf"/crm/v2/{mod}/upsert",
            self._api(partial(writes.upsert, self), "upsert"),
            "upsert",
        )
        add("GET", rf"/crm/v2/{mod}/{rid}", self._api(self.get_one, "read"), "read")
        add("GET", rf"/crm/v2/{mod}", self._api(self.list_records, "read"), "read")
        add("PUT", rf"/crm/v2/{mod}", self._api(partial(writes.update, self), "update"), "update")
        add("POST", rf"/crm/v2/{mod}", self._api(partial(writes.insert, self), "insert"), "insert")

    def _api(self, handler: Callable[[Request], Response], kind: str) -> Callable[..., Response]:
        def wrapped(request: Request) -> Response:
            module = request.params.get("module")
            denied = self.accounts.check(request) or scope_refusal(
                kind, request.method, module, self.scopes
            )
            if denied is not None:
                return denied
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
            n = len(request_body(request).get("data") or [])
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
                        "id": str(ID_BASE + 1000 + i),
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

    def related_lists(self, request: Request) -> Response:
        module = request.arg("module") or ""
        if module not in MODULES:
            return zoho_error("INVALID_MODULE", "the module name given seems to be invalid", 400)
        lists = []
        if module in (CUSTOMER_MODULE, "Leads"):
            lists.append(
                {
                    "id": str(ID_BASE + 2001),
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

    def _too_many(self, fields: set[str] | None) -> bool:
        return self.max_fields is not None and fields is not None and len(fields) > self.max_fields

    def _too_many_fields(self, fields: set[str] | None) -> Response:
        """Zoho's page names the cap but not the error its breach returns; this answers with
        the code and shape Zoho documents for a request parameter over its limit (400
        ``LIMIT_EXCEEDED``, as for more than 100 ``ids``), naming the parameter and the cap."""
        return zoho_error(
            "LIMIT_EXCEEDED",
            f"fields: {len(fields or ())} field API names, the maximum is {self.max_fields}",
            400,
            api_name="fields",
            limit=self.max_fields,
        )

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
        if self._too_many(fields):
            return self._too_many_fields(fields)
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
        fields = _field_set(request.arg("fields"))
        if self._too_many(fields):
            return self._too_many_fields(fields)
        found = self.store.get(module, rid)
        if found is None:
            return Response(204)
        return Response.json({"data": [self.render(module, rid, found[0], found[1], fields)]})


def _field_set(text: str | None) -> set[str] | None:
    if not text:
        return None
    return {f.strip() for f in text.split(",") if f.strip()}
