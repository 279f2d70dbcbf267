"""The Zoho sandbox's record timeline: a timeline entry per edit a user makes (``done_by``,
``audited_time``, ``field_history``), served at ``GET /crm/v5/{module}/{id}/__timeline``
behind the sandbox's usual checks and credits ("Timeline of a Record", Zoho CRM API v5;
docs/overrides.md; ``connectors/sandbox/override_trail.py`` edits as a user and calls
``record_timeline``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.sandbox.server import Request, Response, Router

#: Where the Zoho sandbox keeps timeline entries.
ZOHO_TIMELINE = "Timeline"


def record_timeline(
    sandbox: Any, customer_id: str, fields: Mapping[str, Any], user: str, at: datetime
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
