"""The Zoho sandbox's notification-channel routes (``/crm/v2/actions/watch``): enable,
update, list and disable channels, as Zoho CRM v2 "Notification APIs" describe them;
``zoho_notify.py`` keeps the channels and sends the notifications.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connectors.sandbox.server import Request, Response
from connectors.sandbox.zoho_auth import zoho_error
from connectors.sandbox.zoho_notify import Channel, ChannelError, resolve_expiry
from connectors.sandbox.zoho_schema import (
    MODULES,
)
from connectors.sandbox.zoho_wire import (
    ID_BASE,
    format_time,
    parse_time,
    record_error,
    request_body,
)

if TYPE_CHECKING:
    from connectors.sandbox.zoho_api import ZohoApi


def watch_enable(api: ZohoApi, request: Request) -> Response:
    return _watch(api, request, require_existing=False)


def watch_update(api: ZohoApi, request: Request) -> Response:
    return _watch(api, request, require_existing=True)


def _watch(api: ZohoApi, request: Request, *, require_existing: bool) -> Response:
    try:
        items = request_body(request).get("watch") or []
    except ValueError:
        return zoho_error("INVALID_DATA", "body is not valid JSON", 400)
    if not items:
        return zoho_error("MANDATORY_NOT_FOUND", "watch is missing", 400, api_name="watch")
    results = []
    now = datetime.now(UTC)
    for item in items:
        try:
            channel = _channel(api, item, now, require_existing)
        except ChannelError as exc:
            results.append(record_error(exc.code, str(exc), api_name=exc.api_name))
            continue
        api.notifier.upsert(channel)
        results.append(
            {
                "code": "SUCCESS",
                "status": "success",
                "message": "Successfully subscribed for actions-watch of the given module",
                "details": {"events": [_event_json(api, channel, e) for e in channel.events]},
            }
        )
    ok = sum(1 for r in results if r["status"] == "success")
    return Response.json({"watch": results}, 200 if ok else 400)


def _channel(api: ZohoApi, item: Any, now: datetime, require_existing: bool) -> Channel:
    if not isinstance(item, dict):
        raise ChannelError("INVALID_DATA", "watch", "invalid watch entry")
    channel_id = item.get("channel_id")
    if channel_id in (None, ""):
        raise ChannelError("MANDATORY_NOT_FOUND", "channel_id", "channel_id is missing")
    channel_id = str(channel_id)
    existing = api.notifier.get(channel_id)
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


def _event_json(api: ZohoApi, channel: Channel, event: str) -> dict[str, Any]:
    module = event.partition(".")[0]
    return {
        "channel_expiry": format_time(channel.expiry),
        "resource_uri": f"{api._base_url()}/crm/v2/{module}",
        "resource_id": str(ID_BASE + 1000 + MODULES.index(module)),
        "resource_name": module,
        "channel_id": channel.channel_id,
    }


def watch_list(api: ZohoApi, request: Request) -> Response:
    wanted = request.arg("channel_id")
    channels = [c for c in api.notifier.channels() if wanted is None or c.channel_id == wanted]
    if not channels:
        return Response(204)
    base = api._base_url()
    return Response.json(
        {
            "watch": [
                {
                    "channel_id": c.channel_id,
                    "events": listed_events(c.events),
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


def listed_events(events: list[str]) -> list[str]:
    """Events as Zoho lists a channel's: a ``{module}.all`` subscription comes back as its
    operations (v2 "Get Notification Details" sample: channel 1000000068002, enabled with
    ``Deals.all`` in the "Enable Notifications" sample, is listed with ``Deals.edit``,
    ``Deals.create`` and ``Deals.delete``)."""
    out: list[str] = []
    for event in events:
        module, _, op = event.partition(".")
        out += [f"{module}.{o}" for o in ("edit", "create", "delete")] if op == "all" else [event]
    return list(dict.fromkeys(out))


def watch_disable(api: ZohoApi, request: Request) -> Response:
    ids = [i for i in (request.arg("channel_ids") or "").split(",") if i]
    if not ids:
        return zoho_error(
            "MANDATORY_NOT_FOUND", "channel_ids is missing", 400, api_name="channel_ids"
        )
    removed = set(api.notifier.remove(ids))
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
                else record_error("INVALID_DATA", "no such channel", api_name="channel_ids")
                for cid in ids
            ]
        }
    )
