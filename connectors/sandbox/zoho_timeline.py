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
from connectors.sandbox.zoho_auth import zoho_error

#: Where the Zoho sandbox keeps timeline entries.
ZOHO_TIMELINE = "Timeline"
#: Entries per timeline page at most ("Timeline of a Record": 200).
MAX_TIMELINE_PAGE = 200


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
    """``GET /crm/v5/{module}/{id}/__timeline``, newest first, paged as Zoho pages it
    ("Timeline of a Record", Zoho CRM API v5, zoho.com/crm/developer/docs/api/v5/
    timeline-of-a-record.html): ``per_page`` (≤ 200) on the first page only, later pages by
    the ``page_token`` an answer gives as ``info.next_page_token`` while ``more_records``
    (the ``info`` object of Zoho's own OpenAPI description, github.com/zoho/crm-oas,
    ``timelines.json``); both at once is refused, as the page says they cannot be given
    together."""

    def timeline(request: Request) -> Response:
        rid = request.params["id"]
        start, per_page = _page(request, rid)
        if per_page is None:
            return zoho_error("INVALID_DATA", "invalid per_page or page_token (never both)", 400)
        entries = [
            data for _, _, data in sandbox.store.scan(ZOHO_TIMELINE) if data.get("record_id") == rid
        ]
        entries.sort(key=lambda e: e["audited_time"], reverse=True)
        if not entries:
            return Response(204, b"")
        page = entries[start : start + per_page]
        more = start + per_page < len(entries)
        info: dict[str, Any] = {"per_page": per_page, "count": len(page), "more_records": more}
        if more:
            info["next_page_token"] = _token(rid, start + per_page, per_page)
        body = {
            "__timeline": [{k: v for k, v in e.items() if k != "record_id"} for e in page],
            "info": info,
        }
        return Response.json(body)

    path = r"/crm/v5/(?P<module>[A-Za-z_][A-Za-z0-9_]*)/(?P<id>\d+)/__timeline"
    guarded = sandbox.api._api(timeline, "timeline")  # the sandbox's own checks and credits
    router.add("GET", path, guarded, "timeline")


def _page(request: Request, rid: str) -> tuple[int, int | None]:
    """(first entry, page size) of a request; page size None when the request is refused
    (``per_page`` with a ``page_token``, a token of another record, a bad number)."""
    token, per_page = request.arg("page_token"), request.arg("per_page")
    if token is None:
        asked = per_page or str(MAX_TIMELINE_PAGE)
        fits = asked.isdigit() and 1 <= int(asked) <= MAX_TIMELINE_PAGE
        return 0, int(asked) if fits else None
    record, _, rest = token.partition(":")
    start, _, page = rest.partition(":")
    if per_page is not None or record != rid or not (start.isdigit() and page.isdigit()):
        return 0, None
    return int(start), int(page)


def _token(rid: str, start: int, per_page: int) -> str:
    return f"{rid}:{start}:{per_page}"
