"""The Zoho sandbox's part of the ``/__sandbox__/`` control API (its own bearer token, never
counted as CRM calls), besides the shared ``/calls``, ``/faults``, ``/reset`` and
``/latency`` of connectors/sandbox/server.py:

=======  =========================  ======================================================
PATCH    /customers/{id}            ``{"changes": {canonical path: value}}``: edit, notify
POST     /customers                 ``{"profile": {...}}`` → add (201)
POST     /notifications             ``{"url", "channel_id"?, "token"?, "events"?, "expiry"?}``
GET      /credits                   credits used, limit, remaining and by call kind
POST     /tokens/expire             every access token dies now (→ 401 INVALID_TOKEN)
POST     /reject                    ``{"ids", "code"?, "api_name"?, "message"?}``: writes
                                    to these records fail per record
=======  =========================  ======================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.sandbox.server import Request, Response

if TYPE_CHECKING:
    from connectors.sandbox.zoho import ZohoSandbox


def install_control_routes(sandbox: ZohoSandbox) -> None:
    control = sandbox.server.control

    def edit(request: Request) -> Response:
        spec = request.json() or {}
        try:
            sandbox.edit_customer(request.params["id"], spec.get("changes", {}))
        except KeyError:
            return Response.json({"error": "no such customer"}, 404)
        except ValueError as exc:
            return Response.json({"error": str(exc)}, 400)
        return Response.json({"id": request.params["id"]})

    def add(request: Request) -> Response:
        spec = request.json() or {}
        return Response.json({"id": sandbox.add_customer(spec.get("profile", {}))}, 201)

    def target(request: Request) -> Response:
        spec = request.json() or {}
        url = spec.pop("url", None)
        if not url:
            return Response.json({"error": "url is required"}, 400)
        sandbox.set_notification_target(url, **spec)
        return Response.json({"channel_id": spec.get("channel_id", sandbox.channel_id)})

    def credits(_: Request) -> Response:
        return Response.json(
            {
                "used": sandbox.credits.used,
                "limit": sandbox.credits.limit,
                "remaining": sandbox.credits.remaining,
                "by_kind": sandbox.credits.by_kind,
            }
        )

    def expire(_: Request) -> Response:
        sandbox.expire_tokens()
        return Response.json({"expired": True})

    def reject(request: Request) -> Response:
        spec = request.json() or {}
        sandbox.reject_records(
            spec.get("ids", []),
            code=spec.get("code", "INVALID_DATA"),
            api_name=spec.get("api_name", "Value_Tier"),
        )
        return Response.json({"rejecting": sorted(sandbox.api.reject)})

    control.add("PATCH", r"/customers/(?P<id>\d+)", edit, "ctl")
    control.add("POST", r"/customers", add, "ctl")
    control.add("POST", r"/notifications", target, "ctl")
    control.add("GET", r"/credits", credits, "ctl")
    control.add("POST", r"/tokens/expire", expire, "ctl")
    control.add("POST", r"/reject", reject, "ctl")
