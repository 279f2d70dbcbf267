"""The Salesforce sandbox's part of the ``/__sandbox__/`` control API (its own bearer
token, never counted as CRM calls), besides the shared ``GET /calls``, ``POST /faults``,
``POST /reset`` and ``POST /latency`` of ``server.py``:

=========================================  ================================================
``POST /__sandbox__/customers/{id}``       ``{"changes": {canonical path: value},
                                           "modstamp"?: ISO}``: edit, bump, notify
``GET  /__sandbox__/customers/{id}/written``  the write-back fields, by canonical name
``POST /__sandbox__/notifications/target``  ``{"url", "ca_bundle"?, "backoff_base"?}``
``POST /__sandbox__/sessions/expire``      every issued token becomes invalid
``POST /__sandbox__/locks``                ``{"ids": [...], "times": n}``: UNABLE_TO_LOCK_ROW
``POST /__sandbox__/limits``               ``{"daily"?: n, "used"?: n}``: the API allowance
``GET  /__sandbox__/writes``               tasks, memberships and the write-call count
=========================================  ================================================
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from connectors.sandbox.server import Request, Response

if TYPE_CHECKING:
    from connectors.sandbox.salesforce import SalesforceSandbox


def install_control_routes(sandbox: SalesforceSandbox) -> None:
    c = sandbox.server.control

    def edit(request: Request) -> Response:
        body = request.json() or {}
        stamp = body.get("modstamp")
        try:
            sandbox.edit_customer(
                request.params["id"],
                body.get("changes", {}),
                modstamp=datetime.fromisoformat(stamp) if stamp else None,
            )
        except KeyError as exc:
            return Response.json({"error": str(exc)}, 404)
        return Response.json({"edited": request.params["id"]})

    def written(request: Request) -> Response:
        try:
            return Response.json(sandbox.written(request.params["id"]))
        except KeyError:
            return Response.json({"error": "no such customer"}, 404)

    def target(request: Request) -> Response:
        body = request.json() or {}
        if not body.get("url"):
            return Response.json({"error": "url is required"}, 400)
        sandbox.set_notification_target(str(body.pop("url")), **body)
        return Response.json({"target": True})

    def expire(_: Request) -> Response:
        sandbox.expire_session()
        return Response.json({"expired": True})

    def locks(request: Request) -> Response:
        body = request.json() or {}
        sandbox.lock_rows(list(body.get("ids", [])), times=int(body.get("times", 1)))
        return Response.json({"locked": len(body.get("ids", []))})

    def limits(request: Request) -> Response:
        body = request.json() or {}
        sandbox.daily_api_limit = int(body.get("daily", sandbox.daily_api_limit))
        sandbox.api_used = int(body.get("used", sandbox.api_used))
        return Response.json({"daily": sandbox.daily_api_limit, "used": sandbox.api_used})

    def listing(_: Request) -> Response:
        return Response.json(
            {
                "tasks": [t.__dict__ for t in sandbox.tasks()],
                "memberships": sorted(sandbox.memberships()),
                "write_calls": sandbox.write_calls(),
            }
        )

    c.add("POST", "/customers/(?P<id>\\w+)", edit, "ctl")
    c.add("GET", "/customers/(?P<id>\\w+)/written", written, "ctl")
    c.add("POST", "/notifications/target", target, "ctl")
    c.add("POST", "/sessions/expire", expire, "ctl")
    c.add("POST", "/locks", locks, "ctl")
    c.add("POST", "/limits", limits, "ctl")
    c.add("GET", "/writes", listing, "ctl")
