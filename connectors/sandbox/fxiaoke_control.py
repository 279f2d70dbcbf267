"""The FXiaoke sandbox's part of the ``/__sandbox__/`` control API (bearer token of its own,
never counted as CRM calls). Customer edits here behave like a CRM user's: the modstamp
moves and the workflow push fires.

=======  =================================  ============================================
POST     /customers/{id}                    ``{"changes": {canonical path: value},
                                            "modstamp"?: ISO}`` → edit
POST     /customers                         ``{"changes": {...}, "id"?}`` → add (201)
POST     /customers/{id}/invalidate         作废: to the recycle bin (push ``delete``)
GET      /customers/{id}/written            write-back values by canonical name
GET      /tasks, /memberships               follow-up tasks; (customer, campaign key) pairs
POST     /notifications/target              ``{"url", "secret"?, "ca_bundle"?}``
POST     /tokens/expire                     every issued token expires now (→ 20016)
POST     /records/{id}/reject               ``{"code"?, "message"?, "times"?}``: updates of
                                            the record fail (validation rule, lock)
=======  =================================  ============================================

Faults (5xx, latency, drops, canned errorCodes), call counters and reset are the shared
``/faults``, ``/calls``, ``/reset`` and ``/latency`` of connectors/sandbox/server.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING

from connectors.sandbox.server import Request, Response, Router

if TYPE_CHECKING:
    from connectors.sandbox.fxiaoke import FxiaokeSandbox


def _guarded(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """An unknown customer is a 404 and a bad change a 400, with the reason."""

    def serve(request: Request) -> Response:
        try:
            return handler(request)
        except KeyError as exc:
            return Response.json({"error": str(exc.args[0] if exc.args else exc)}, 404)
        except (ValueError, TypeError) as exc:
            return Response.json({"error": str(exc)}, 400)

    return serve


def install_control_routes(sandbox: FxiaokeSandbox, control: Router) -> None:
    def edit(request: Request) -> Response:
        spec = request.json() or {}
        stamp = spec.get("modstamp")
        sandbox.edit_customer(
            request.params["id"],
            spec.get("changes") or {},
            modstamp=datetime.fromisoformat(stamp) if stamp else None,
        )
        return Response.json({"id": request.params["id"]})

    def add(request: Request) -> Response:
        spec = request.json() or {}
        return Response.json(
            {"id": sandbox.add_customer(spec.get("changes") or {}, spec.get("id"))}, 201
        )

    def invalidate(request: Request) -> Response:
        sandbox.invalidate_customer(request.params["id"])
        return Response.json({"invalidated": request.params["id"]})

    def written(request: Request) -> Response:
        return Response.json(sandbox.written(request.params["id"]))

    def tasks(_: Request) -> Response:
        return Response.json([asdict(t) for t in sandbox.tasks()])

    def memberships(_: Request) -> Response:
        return Response.json(sorted(list(pair) for pair in sandbox.memberships()))

    def target(request: Request) -> Response:
        spec = request.json() or {}
        if not spec.get("url"):
            raise ValueError("url is required")
        sandbox.set_notification_target(
            str(spec["url"]), secret=spec.get("secret"), ca_bundle=spec.get("ca_bundle")
        )
        return Response.json({"url": spec["url"]})

    def expire(_: Request) -> Response:
        sandbox.expire_tokens()
        return Response.json({"expired": True})

    def reject(request: Request) -> Response:
        spec = request.json() or {}
        times = spec.get("times")
        sandbox.reject_record(
            request.params["id"],
            code=int(spec.get("code", 32000)),
            message=str(spec.get("message", "")),
            times=int(times) if times is not None else None,
        )
        return Response.json({"rejecting": request.params["id"]})

    routes: list[tuple[str, str, Callable[[Request], Response]]] = [
        ("POST", r"/customers/(?P<id>[^/]+)", edit),
        ("POST", "/customers", add),
        ("POST", r"/customers/(?P<id>[^/]+)/invalidate", invalidate),
        ("GET", r"/customers/(?P<id>[^/]+)/written", written),
        ("GET", "/tasks", tasks),
        ("GET", "/memberships", memberships),
        ("POST", "/notifications/target", target),
        ("POST", "/tokens/expire", expire),
        ("POST", r"/records/(?P<id>[^/]+)/reject", reject),
    ]
    for method, pattern, handler in routes:
        control.add(method, pattern, _guarded(handler), "ctl")
