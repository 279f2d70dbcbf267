"""The FXiaoke sandbox's Open API routes: the checks every call passes, the token
endpoints' own limits, and the data handlers.

Every API call is ``POST`` + JSON with a required ``?thirdTraceId`` and answers HTTP 200
with an ``errorCode`` envelope (FXiaoke Open API v2 docs, developer.fxiaoke.com/openapi_v2).
``_wrap`` applies the platform's checks in its order: trace id, the per-interface window
(14001), the daily quota (30002), authentication, then the handler. The data handlers
(``/cgi/crm/v2/data/query|get|create|update|invalid`` and the ``/cgi/crm/custom/v2/``
twins for ``__c`` objects) work on the sandbox's store and fire the workflow push for
customer changes; an update of a locked record is refused (``fxiaoke_lock``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from connectors.sandbox.fxiaoke_auth import ApiError
from connectors.sandbox.fxiaoke_flow import install_fxiaoke_flow
from connectors.sandbox.fxiaoke_lock import install_fxiaoke_lock, lock_refusal
from connectors.sandbox.fxiaoke_query import QueryError, as_row, parse, run, to_ms
from connectors.sandbox.fxiaoke_schema import ACCOUNT, missing_required, on_the_wire, validate
from connectors.sandbox.server import Request, Response, Router

if TYPE_CHECKING:
    from connectors.sandbox.fxiaoke import FxiaokeSandbox

Payload = dict[str, Any]
_DATA_VERBS = ("query", "get", "create", "update", "invalid", "changeOwner")


def envelope(
    code: int = 0, message: str = "OK", description: str = "success", **payload: Any
) -> Response:
    """FXiaoke's answer: always HTTP 200, success or not."""
    trace = f"E-O.sandbox.{uuid.uuid4().hex[:12]}"
    body = {"errorCode": code, "errorMessage": message, "errorDescription": description}
    return Response.json({**body, "traceId": trace, **payload})


def error_response(code: int, message: str, description: str = "") -> Response:
    """A canned FXiaoke error envelope, e.g. for ``server.inject(response=...)``."""
    return envelope(code, message, description or message)


def install_routes(sandbox: FxiaokeSandbox, router: Router) -> None:
    router.add(
        "POST", "/cgi/corpAccessToken/get/V2", _token(sandbox, sandbox.auth.corp_token), "token"
    )
    router.add(
        "POST", "/oauth2.0/token", _token(sandbox, sandbox.auth.oauth2_token), "oauth2_token"
    )
    router.add(
        "POST",
        "/cgi/crm/v2/object/describe",
        _wrap(sandbox, partial(_describe, sandbox)),
        "describe",
    )
    for verb in _DATA_VERBS:
        handler = partial(_DATA_HANDLERS[verb], sandbox)
        router.add("POST", f"/cgi/crm/v2/data/{verb}", _wrap(sandbox, handler, custom=False), verb)
        router.add(
            "POST",
            f"/cgi/crm/custom/v2/data/{verb}",
            _wrap(sandbox, handler, custom=True),
            f"custom_{verb}",
        )
    install_fxiaoke_flow(sandbox, router, partial(_wrap, sandbox))  # overrides' approvals
    install_fxiaoke_lock(sandbox, router, partial(_wrap, sandbox))  # 锁定 / 解锁
    router.add("POST", "/.*", partial(_unknown_path, sandbox), "unknown")


def _unknown_path(sandbox: FxiaokeSandbox, request: Request) -> Response:
    return error_response(10006, f"the request uri=[{request.path}], apiName=[null] is not exists")


def _wrap(
    sandbox: FxiaokeSandbox, handler: Callable[..., Payload], *, custom: bool | None = None
) -> Callable[[Request], Response]:
    """The checks every FXiaoke API call passes, in the order the platform applies them."""

    def serve(request: Request) -> Response:
        kind = _kind_of(request.path)
        if not request.arg("thirdTraceId"):
            # Required by the current convention; the exact code is our best reading.
            return error_response(10001, "缺少参数thirdTraceId")
        if not sandbox.windows.admit(kind, sandbox.rate_calls, sandbox.rate_window):
            limit = f"单接口调用限制：{sandbox.rate_calls}次/{sandbox.rate_window:g}秒"
            return error_response(14001, "接口调用超过限制", limit)
        if not sandbox.quota.spend():
            return error_response(30002, "当天访问频次超限", "0点重新统计")
        try:
            body = _json_object(request)
            problem = sandbox.auth.authenticate(request, body)
            if problem is not None:
                return error_response(*problem)
            data = body.get("data")
            if not isinstance(data, dict):
                raise ApiError(10001, "缺少参数data")
            args: tuple[Any, ...] = (
                (request, body, data) if custom is None else (request, body, data, custom)
            )
            return envelope(**handler(*args))
        except (ApiError, QueryError) as exc:
            return error_response(exc.code, str(exc), exc.description)

    return serve


def _token(
    sandbox: FxiaokeSandbox, handler: Callable[[Payload], Payload]
) -> Callable[[Request], Response]:
    """A token endpoint: no auth, its own limit (10 calls/minute), never concurrent."""

    def serve(request: Request) -> Response:
        if not request.arg("thirdTraceId"):
            return error_response(10001, "缺少参数thirdTraceId")
        limit = sandbox.token_calls_per_minute
        if limit is not None and not sandbox.windows.admit(_kind_of(request.path), limit, 60.0):
            return error_response(14001, "接口调用超过限制", "本接口每分钟调用应不超过10次")
        if not sandbox.token_busy.acquire(blocking=False):
            return error_response(14001, "接口调用超过限制", "不能并发调用本接口")
        try:
            return envelope(**handler(_json_object(request)))
        except ApiError as exc:
            return error_response(exc.code, exc.message, exc.description)
        finally:
            sandbox.token_busy.release()

    return serve


def _spec(sandbox: FxiaokeSandbox, name: Any, custom: bool) -> Any:
    spec = sandbox.objects.get(str(name))
    if spec is None or str(name).endswith("__c") != custom:
        raise ApiError(15002, f"对象 {name} 不存在或接口不匹配 (object not found on this path)")
    return spec


def _query(
    sandbox: FxiaokeSandbox, request: Request, body: Payload, data: Payload, custom: bool
) -> Payload:
    spec = _spec(sandbox, data.get("dataObjectApiName"), custom)
    query = parse(data.get("search_query_info"))
    want_total = bool(
        data.get("find_explicit_total_num", True)
        or body.get("returnTotalNum") in (1, 2)
        or body.get("need_return_count_num")
    )
    answer = run(sandbox.store, spec.api_name, query, want_total=want_total)
    answer["dataList"] = [on_the_wire(spec, row) for row in answer["dataList"]]
    return {"data": answer}


def _get(
    sandbox: FxiaokeSandbox, request: Request, body: Payload, data: Payload, custom: bool
) -> Payload:
    spec = _spec(sandbox, data.get("dataObjectApiName"), custom)
    rid = str(data.get("objectDataId", ""))
    found = sandbox.store.get(spec.api_name, rid)
    if found is None:
        raise ApiError(32000, f"数据 {rid} 不存在")
    return {"data": {"data": on_the_wire(spec, as_row(rid, *found))}}


def _create(
    sandbox: FxiaokeSandbox, request: Request, body: Payload, data: Payload, custom: bool
) -> Payload:
    values = data.get("object_data")
    if not isinstance(values, dict):
        raise ApiError(10001, "缺少参数object_data")
    spec = _spec(sandbox, values.get("dataObjectApiName"), custom)
    fields = {k: v for k, v in values.items() if k != "dataObjectApiName"}
    fields.setdefault("owner", [_acting_user(sandbox, request, body)])
    problem = validate(spec, fields) or missing_required(spec, fields)
    if problem:
        raise ApiError(32000, problem)
    rid = uuid.uuid4().hex[:24]
    stamp, _ = sandbox.store.upsert(
        spec.api_name,
        rid,
        {
            **fields,
            "create_time": to_ms(datetime.now(UTC)),
            "life_status": "normal",
            "record_type": "default__c",
            "version": 1,
        },
    )
    if spec.api_name == ACCOUNT and body.get("triggerWorkFlow", True):
        sandbox.push.emit("create", ACCOUNT, rid, to_ms(stamp))
    return {"dataId": rid}


def _update(
    sandbox: FxiaokeSandbox, request: Request, body: Payload, data: Payload, custom: bool
) -> Payload:
    values = data.get("object_data")
    if not isinstance(values, dict):
        # Documented failure of sending data.data instead of data.object_data.
        raise ApiError(-2, "java.lang.NullPointerException")
    spec = _spec(sandbox, values.get("dataObjectApiName"), custom)
    rid = str(values.get("_id", ""))
    found = sandbox.store.get(spec.api_name, rid)
    if found is None:
        raise ApiError(32000, f"数据 {rid} 不存在")
    if found[1].get("life_status") == "invalid":
        raise ApiError(32000, f"数据 {rid} 已作废 (the record is invalidated)")
    rejected = sandbox.take_rejection(rid)
    if rejected is not None:
        raise ApiError(*rejected)
    lock_refusal(sandbox, found[1], data)
    fields = {k: v for k, v in values.items() if k not in ("dataObjectApiName", "_id")}
    problem = validate(spec, fields)
    if problem:
        raise ApiError(32000, problem)
    fields["version"] = int(found[1].get("version", 1)) + 1
    stamp = sandbox.store.update(spec.api_name, rid, fields)
    if spec.api_name == ACCOUNT and body.get("triggerWorkFlow", True):
        sandbox.push.emit("update", ACCOUNT, rid, to_ms(stamp))
    return {"dataId": rid}


def _invalid(
    sandbox: FxiaokeSandbox, request: Request, body: Payload, data: Payload, custom: bool
) -> Payload:
    spec = _spec(sandbox, data.get("dataObjectApiName"), custom)
    rid = str(data.get("object_data_id", ""))
    if not sandbox.store.exists(spec.api_name, rid):
        raise ApiError(32000, f"数据 {rid} 不存在")
    sandbox.store.update(spec.api_name, rid, {"life_status": "invalid"})
    return {}


def _describe(sandbox: FxiaokeSandbox, request: Request, body: Payload, data: Payload) -> Payload:
    """查询对象描述: ``data.apiName`` and ``data.includeDetail`` are both required (Boolean)
    ("Object Description Query", fxiaoke.com/mob/guide/openapi/dist/en/pages/open-api/
    collection/common/object-describe/describe/). The code for a missing one is not
    documented; 10001 (缺少参数) is our best reading, as for the other missing parameters."""
    if not isinstance(data.get("includeDetail"), bool):
        raise ApiError(10001, "缺少参数includeDetail")
    name = str(data.get("apiName", ""))
    spec = sandbox.objects.get(name)
    if spec is None:
        raise ApiError(15002, f"对象 {name} 不存在")
    return {"data": {"describe": spec.describe()}}


def _acting_user(sandbox: FxiaokeSandbox, request: Request, body: Payload) -> str:
    return str(
        request.header("x-fs-userid") or body.get("currentOpenUserId") or sandbox.open_user_id
    )


def _change_owner(
    sandbox: FxiaokeSandbox, request: Request, body: Payload, data: Payload, custom: bool
) -> Payload:
    """``changeOwner`` ("变更负责人", the only way to change an owner: ``update`` cannot):
    ``data.Data`` lists ``{"objectDataId", "ownerId": [employee id]}``; all or nothing. A
    locked record (or one under approval) is refused as its update is (``fxiaoke_lock``)."""
    spec = _spec(sandbox, data.get("dataObjectApiName"), custom)
    entries = data.get("Data")
    if not isinstance(entries, list) or not entries:
        raise ApiError(10001, "缺少参数Data")
    changes: list[tuple[str, list[str], int]] = []
    for entry in entries:
        rid = str(entry.get("objectDataId", "")) if isinstance(entry, dict) else ""
        owner = entry.get("ownerId") if isinstance(entry, dict) else None
        if not isinstance(owner, list) or len(owner) != 1 or not isinstance(owner[0], str):
            raise ApiError(10001, "参数ownerId错误 (one employee id in a list)")
        found = sandbox.store.get(spec.api_name, rid)
        if found is None or found[1].get("life_status") == "invalid":
            raise ApiError(32000, f"数据 {rid} 不存在")
        lock_refusal(sandbox, found[1], {})  # a locked record's owner is no more editable
        changes.append((rid, owner, int(found[1].get("version", 1)) + 1))
    for rid, owner, version in changes:
        stamp = sandbox.store.update(spec.api_name, rid, {"owner": owner, "version": version})
        if spec.api_name == ACCOUNT:
            sandbox.push.emit("update", ACCOUNT, rid, to_ms(stamp))
    return {}


_DATA_HANDLERS: dict[str, Callable[..., Payload]] = {
    "query": _query,
    "get": _get,
    "create": _create,
    "update": _update,
    "invalid": _invalid,
    "changeOwner": _change_owner,
}


def _kind_of(path: str) -> str:
    if path == "/cgi/corpAccessToken/get/V2":
        return "token"
    if path == "/oauth2.0/token":
        return "oauth2_token"
    verb = path.rsplit("/", 1)[-1]
    return f"custom_{verb}" if "/custom/" in path else verb


def _json_object(request: Request) -> Payload:
    try:
        body = request.json()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(32000, "请求体不是合法的JSON (body is not JSON)") from None
    if not isinstance(body, dict):
        raise ApiError(32000, "请求体必须是JSON对象 (body must be a JSON object)")
    return body
