"""The Salesforce sandbox's REST data API: the route table and its handlers.

Every route but the token endpoint (``salesforce_auth.py``) and the version list needs a
session: ``_api`` checks the bearer token, counts the call against the daily allowance,
adds ``Sforce-Limit-Info`` and drops the answers a test asked to lose. The handlers speak
the REST API Developer Guide's wire format: ``query``/``queryAll`` with server-side cursors
and ``nextRecordsUrl`` paging, ``describe``, ``limits``, sObject Collections (≤ 200 records
or ids a call) and single-record sObject calls; Bulk API 2.0 routes go to ``BulkApi``
(``salesforce_bulk.py``) and the SOAP Metadata API to ``MetadataApi``.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from connectors.sandbox.salesforce_auth import token_endpoint
from connectors.sandbox.salesforce_bulk import bulk_routes
from connectors.sandbox.salesforce_org import (
    PageState,
    QueryFieldError,
    UnknownObjectError,
)
from connectors.sandbox.salesforce_saves import SaveResult
from connectors.sandbox.salesforce_soql import Query, SoqlError, parse
from connectors.sandbox.server import DropConnection, Request, Response

if TYPE_CHECKING:
    from connectors.sandbox.salesforce import SalesforceSandbox

API_VERSIONS = ("59.0", "60.0", "61.0", "62.0", "63.0", "64.0", "65.0")
_DATA = r"/services/data/v(?P<ver>\d+\.\d)"
_COLLECTION_LIMIT = 200  # records (or ids) per sObject Collections call


def sf_error(status: int, code: str, message: str) -> Response:
    return Response.json([{"message": message, "errorCode": code}], status)


def _too_many_records() -> Response:
    """Salesforce's answer to a collection call with more than 200 records or ids."""
    return sf_error(
        400,
        "EXCEEDED_ID_LIMIT",
        f"record limit reached. cannot submit more than {_COLLECTION_LIMIT} records into this call",
    )


@dataclass
class QueryCursor:
    """A server-side query cursor: the parsed query, its batch size, and where each page
    that has been handed out starts (so re-reading a ``nextRecordsUrl`` is idempotent)."""

    query: Query
    batch_size: int
    total: int  # ``totalSize``: the same on every page, as in Salesforce
    starts: dict[int, PageState] = field(default_factory=lambda: {0: PageState(None, 0)})


def limit_info(used: int, limit: int) -> str:
    """The ``Sforce-Limit-Info`` header of an org that has made ``used`` of ``limit`` calls."""
    return f"api-usage={min(used, limit * 2)}/{limit}"


def _api(
    sandbox: SalesforceSandbox, handler: Callable[[Request], Response], kind: str
) -> Callable[[Request], Response]:
    """Wrap a data handler: bearer token, daily allowance, ``Sforce-Limit-Info``, and
    responses a test asked to lose after the work is done."""

    def wrapped(request: Request) -> Response:
        auth = request.header("Authorization", "") or ""
        token = auth.removeprefix("Bearer ").strip()
        with sandbox.lock:
            valid = any(hmac.compare_digest(token, t) for t in sandbox.tokens)
        if not valid:
            response = sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        elif sandbox.api_used >= sandbox.daily_api_limit:
            response = sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        else:
            with sandbox.lock:
                sandbox.api_used += 1
            version = request.params.get("ver")
            if version is not None and version not in API_VERSIONS:
                response = sf_error(404, "NOT_FOUND", "The requested resource does not exist")
            else:
                response = handler(request)
                with sandbox.lock:
                    lost = sandbox.lost[kind] > 0
                    sandbox.lost[kind] -= lost
                if lost:
                    raise DropConnection  # the save happened; the client never hears
        used, limit = sandbox.api_used, sandbox.daily_api_limit
        response.headers["Sforce-Limit-Info"] = limit_info(used, limit)
        return response

    return wrapped


def install_rest_routes(sandbox: SalesforceSandbox) -> None:
    """The REST surface as one table: (method, path regex, handler, call kind). Every
    route but the token endpoint and the version list needs a session (``_api``)."""
    obj, rid, job = r"(?P<obj>\w+)", r"(?P<id>\w{15,18})", r"(?P<job>\w+)"
    sandbox.router.add(
        "POST", "/services/oauth2/token", partial(token_endpoint, sandbox), "oauth_token"
    )
    sandbox.router.add("GET", "/services/data/?", partial(_versions, sandbox), "versions")
    sandbox.router.add("POST", r"/services/Soap/m/\d+\.\d/?", sandbox.metadata.handle, "metadata")
    table: list[tuple[str, str, Callable[[Request], Response], str]] = [
        ("GET", "/limits/?", partial(_limits, sandbox), "limits"),
        ("GET", "/(?P<endpoint>query|queryAll)/?", partial(_query, sandbox), "query"),
        (
            "GET",
            "/(?:query|queryAll)/(?P<locator>0r8[^/]+)",
            partial(_query_more, sandbox),
            "query_more",
        ),
        ("GET", "/sobjects/?", partial(_describe_global, sandbox), "describe_global"),
        ("GET", f"/sobjects/{obj}/describe/?", partial(_describe, sandbox), "describe"),
        ("POST", f"/sobjects/{obj}/?", partial(_sobject_create, sandbox), "sobject_create"),
        ("GET", f"/sobjects/{obj}/{rid}", partial(_sobject_get, sandbox), "sobject_get"),
        ("PATCH", f"/sobjects/{obj}/{rid}", partial(_sobject_update, sandbox), "sobject_update"),
        ("DELETE", f"/sobjects/{obj}/{rid}", partial(_sobject_delete, sandbox), "sobject_delete"),
        (
            "PATCH",
            f"/sobjects/{obj}/(?P<field>\\w+__c)/(?P<value>[^/]+)",
            partial(_sobject_upsert, sandbox),
            "sobject_upsert",
        ),
        (
            "PATCH",
            "/composite/sobjects/?",
            partial(_collections_update, sandbox),
            "collections_update",
        ),
        (
            "POST",
            "/composite/sobjects/?",
            partial(_collections_create, sandbox),
            "collections_create",
        ),
        (
            "DELETE",
            "/composite/sobjects/?",
            partial(_collections_delete, sandbox),
            "collections_delete",
        ),
        (
            "PATCH",
            f"/composite/sobjects/{obj}/(?P<field>\\w+)/?",
            partial(_collections_upsert, sandbox),
            "collections_upsert",
        ),
        *bulk_routes(sandbox.bulk, job=job),
    ]
    for method, path, handler, kind in table:
        sandbox.router.add(method, _DATA + path, _api(sandbox, handler, kind), kind)


def _versions(sandbox: SalesforceSandbox, _: Request) -> Response:
    return Response.json(
        [{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v} for v in API_VERSIONS]
    )


def _limits(sandbox: SalesforceSandbox, _: Request) -> Response:
    return Response.json(
        {
            "DailyApiRequests": {
                "Max": sandbox.daily_api_limit,
                "Remaining": max(sandbox.daily_api_limit - sandbox.api_used, 0),
            }
        }
    )


def _query(sandbox: SalesforceSandbox, request: Request) -> Response:
    soql = request.arg("q")
    if not soql:
        return sf_error(400, "MALFORMED_QUERY", "q parameter is required")
    try:
        query = replace(parse(soql), all_rows=request.params["endpoint"] == "queryAll")
        sandbox.org.check_query(query)
    except UnknownObjectError as exc:
        return sf_error(400, "INVALID_TYPE", str(exc))
    except QueryFieldError as exc:
        return sf_error(400, "INVALID_FIELD", str(exc))
    except SoqlError as exc:
        return sf_error(400, "MALFORMED_QUERY", str(exc))
    # a locator as Salesforce mints it: 18 characters, prefix 0r8 (connectors/salesforce/
    # callkinds.py cites the page)
    qid = f"0r8{secrets.token_hex(8).upper()[:15]}"
    with sandbox.lock:
        sandbox.cursors[qid] = QueryCursor(
            query, _batch_size(sandbox, request), sandbox.org.count(query)
        )
        while len(sandbox.cursors) > 10_000:  # cursors live long; keep the newest
            sandbox.cursors.pop(next(iter(sandbox.cursors)))
    return _query_page(sandbox, request, qid, 0)


def _query_more(sandbox: SalesforceSandbox, request: Request) -> Response:
    qid, _, offset = request.params["locator"].partition("-")
    try:
        emitted = int(offset)
    except ValueError:
        emitted = -1
    with sandbox.lock:
        cursor = sandbox.cursors.get(qid)
    if cursor is None or emitted not in cursor.starts:
        return sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    return _query_page(sandbox, request, qid, emitted)


def _batch_size(sandbox: SalesforceSandbox, request: Request) -> int:
    """``Sforce-Query-Options: batchSize=N`` (200..2000) on the first call; it holds
    for every later page of the same cursor."""
    options = request.header("Sforce-Query-Options", "") or ""
    if options.startswith("batchSize=") and options[10:].isdigit():
        return min(max(int(options[10:]), 200), 2000)
    return sandbox.query_batch_size


def _query_page(sandbox: SalesforceSandbox, request: Request, qid: str, emitted: int) -> Response:
    cursor = sandbox.cursors[qid]
    query = cursor.query
    rows, nxt = sandbox.org.page(query, cursor.starts[emitted], cursor.batch_size)
    version = request.params["ver"]
    body: dict[str, Any] = {
        "totalSize": cursor.total,
        "done": nxt is None,
        "records": [sandbox.org.render(query.sobject, v, query.fields, version) for v in rows],
    }
    if nxt is not None:
        with sandbox.lock:
            cursor.starts[nxt.emitted] = nxt
        body["nextRecordsUrl"] = f"/services/data/v{version}/query/{qid}-{nxt.emitted}"
    return Response.json(body)


def _describe_global(sandbox: SalesforceSandbox, _: Request) -> Response:
    return Response.json(
        {
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": [
                {"name": o.name, "label": o.name, "queryable": True, "updateable": True}
                for o in sandbox.org.schema.values()
            ],
        }
    )


def _describe(sandbox: SalesforceSandbox, request: Request) -> Response:
    spec = sandbox.org.schema.get(request.params["obj"])
    if spec is None:
        return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
    return Response.json(spec.describe())


# sObject Collections --------------------------------------------------------------


def _collection_body(
    sandbox: SalesforceSandbox, request: Request
) -> tuple[list[Any], bool] | Response:
    try:
        body = request.json() or {}
    except json.JSONDecodeError as exc:
        return sf_error(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc.msg}")
    records = body.get("records")
    if not isinstance(records, list):
        return sf_error(400, "INVALID_FIELD", "records is required")
    if len(records) > _COLLECTION_LIMIT:
        return _too_many_records()
    return records, bool(body.get("allOrNone", False))


def _collections_update(sandbox: SalesforceSandbox, request: Request) -> Response:
    return _collections_write(sandbox, request, sandbox.org.update)


def _collections_create(sandbox: SalesforceSandbox, request: Request) -> Response:
    return _collections_write(sandbox, request, sandbox.org.create)


def _collections_write(
    sandbox: SalesforceSandbox,
    request: Request,
    write: Callable[[list[Any], bool], list[SaveResult]],
) -> Response:
    """Update and create answer alike: the body's records through ``write``, one result
    per record, without the ``created`` flag that only upsert reports."""
    parsed = _collection_body(sandbox, request)
    if isinstance(parsed, Response):
        return parsed
    results = write(*parsed)
    return Response.json([_no_created(r.as_json()) for r in results])


def _collections_upsert(sandbox: SalesforceSandbox, request: Request) -> Response:
    obj, ext_field = request.params["obj"], request.params["field"]
    spec = sandbox.org.schema.get(obj)
    if spec is None:
        return sf_error(404, "NOT_FOUND", f"The requested resource does not exist: {obj}")
    field_spec = spec.fields.get(ext_field)
    if field_spec is None or not (field_spec.external_id or ext_field == "Id"):
        return sf_error(
            400, "INVALID_FIELD", f"Field {ext_field} is not an external id field on {obj}"
        )
    parsed = _collection_body(sandbox, request)
    if isinstance(parsed, Response):
        return parsed
    records, all_or_none = parsed
    results = sandbox.org.upsert(obj, ext_field, records, all_or_none)
    return Response.json([r.as_json() for r in results])


def _collections_delete(sandbox: SalesforceSandbox, request: Request) -> Response:
    ids = [i for i in (request.arg("ids") or "").split(",") if i]
    if len(ids) > _COLLECTION_LIMIT:
        return _too_many_records()
    all_or_none = (request.arg("allOrNone") or "false").lower() == "true"
    results = sandbox.org.delete(ids, all_or_none)
    return Response.json([_no_created(r.as_json()) for r in results])


# single records ---------------------------------------------------------------------


def _sobject_get(sandbox: SalesforceSandbox, request: Request) -> Response:
    obj, rid = request.params["obj"], request.params["id"]
    view = sandbox.org.get(obj, rid) if obj in sandbox.org.schema else None
    if view is None:
        return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
    fields = tuple(sandbox.org.schema[obj].fields)
    return Response.json(sandbox.org.render(obj, view, fields, request.params["ver"]))


def _single(sandbox: SalesforceSandbox, results: list[Any], created_status: int = 201) -> Response:
    result = results[0]
    if not result.success:
        err = result.errors[0]
        return sf_error(400, err.status_code, err.message)
    if result.created:
        return Response.json(
            {"id": result.id, "success": True, "errors": [], "created": True}, created_status
        )
    return Response.json({"id": result.id, "success": True, "errors": [], "created": False})


def _sobject_create(sandbox: SalesforceSandbox, request: Request) -> Response:
    record = {**(request.json() or {}), "attributes": {"type": request.params["obj"]}}
    result = sandbox.org.create([record], all_or_none=True)[0]
    if not result.success:
        err = result.errors[0]
        return sf_error(400, err.status_code, err.message)
    return Response.json({"id": result.id, "success": True, "errors": []}, 201)


def _sobject_update(sandbox: SalesforceSandbox, request: Request) -> Response:
    record = {
        **(request.json() or {}),
        "attributes": {"type": request.params["obj"]},
        "id": request.params["id"],
    }
    result = sandbox.org.update([record], all_or_none=True)[0]
    if not result.success:
        err = result.errors[0]
        status = 404 if err.status_code == "ENTITY_IS_DELETED" else 400
        return sf_error(status, err.status_code, err.message)
    return Response(204)


def _sobject_upsert(sandbox: SalesforceSandbox, request: Request) -> Response:
    obj, ext_field = request.params["obj"], request.params["field"]
    record = {**(request.json() or {}), ext_field: unquote(request.params["value"])}
    return _single(sandbox, sandbox.org.upsert(obj, ext_field, [record], True))


def _sobject_delete(sandbox: SalesforceSandbox, request: Request) -> Response:
    result = sandbox.org.delete([request.params["id"]], all_or_none=True)[0]
    if not result.success:
        return sf_error(404, result.errors[0].status_code, result.errors[0].message)
    return Response(204)


def _no_created(result: dict[str, Any]) -> dict[str, Any]:
    result.pop("created", None)
    return result
