"""The webhook receiver: an ASGI app that verifies, persists durably, and only then acks.

Every notification goes through the same steps, cheapest refusal first, and nothing is
stored unless all of them pass (docs/webhooks.md; docs/targets.md W5, W8):

1. a declared ``Content-Length`` above the route's limit → 413, before reading anything;
2. a ``Content-Type`` the sender never uses → 415;
3. the body is read with a running cap (chunked bodies too) → 413 as soon as it is exceeded,
   so an oversized body is never buffered whole;
4. verification on the raw bytes (signature, token, org id) → 401/403, and parsing with
   explicit bounds (``connectors/webhook_events.py``: digits, nesting, encodings, record id
   formats) → 400/415;
5. a durable, deduplicating insert into the inbox (group-committed, see ``committer.py``);
   if the store is unavailable → 503 so the sender retries;
6. the CRM's acknowledgement (its plugin's ``ack``: a SOAP ``<Ack>``, a plain ``success``).

Each CRM's route, verification and acknowledgement come from its connector plugin
(``connectors/plugin.py``: ``Webhook.endpoint``), so this module names no CRM; the
Standard Webhooks route ``/webhooks/generic`` is the receiver's own.

Every refusal answers ``{"error": <reason>, "code": <reason code>}`` and is counted in
``crmtier_webhook_refusals_total{route,code}``. No CRM call happens on this path: acking
never depends on the CRM's health (W7). A route whose verification values are not
configured is not mounted (404), so an unused CRM cannot be used to fill the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from connectors.plugin import Endpoint, json_ack
from connectors.registry import plugins
from connectors.webhook_events import RECORD_ID, ChangeEvent, WebhookRejected
from sync.inbox import Inbox
from sync.tasks.stats import QueueStats
from webhooks import standard_webhooks
from webhooks.committer import GroupCommitter
from webhooks.deferrer import Deferrer
from webhooks.metrics import Metrics
from webhooks.settings import WebhooksSettings

log = logging.getLogger(__name__)

Headers = Mapping[str, str]
JSON_TYPES = ("application/json",)
EVENTS_METRIC = "crmtier_webhook_events_total"
REFUSALS_METRIC = "crmtier_webhook_refusals_total"
REFUSALS_HELP = "Refused webhook requests by route and reason code."
EVENTS_HELP = "Change events by outcome (receiver: accepted, duplicate; worker: written, ...)."
_CONTENT_LENGTH = re.compile(r"[0-9]{1,12}")


def record_id(crm: str | None) -> re.Pattern[str]:
    """The record id format ``/webhooks/generic`` admits as ``data.id``: the configured
    CRM's (any other sender names records of the CRM crmtier syncs), else the generic one."""
    plugin = plugins().get(crm or "")
    return plugin.webhook.record_id if plugin and plugin.webhook else RECORD_ID


def _endpoints(
    settings: WebhooksSettings, own_fields: frozenset[str], crm: str | None = None
) -> list[Endpoint]:
    """The routes this configuration can verify: each CRM plugin's whose keys are set, then
    the Standard Webhooks one; ``own_fields`` are the CRM fields crmtier writes (a
    notification that only echoes them is dropped); ``crm`` names the CRM whose id format
    generic events must use."""
    window = settings.replay_window_seconds
    context = settings.context(frozenset(own_fields))
    endpoints = []
    for plugin in plugins().values():
        endpoint = plugin.webhook.endpoint(settings, context) if plugin.webhook else None
        if endpoint is not None:
            endpoints.append(endpoint)
    if settings.secrets:
        keys = [(entry.key(), entry) for entry in settings.secrets]
        generic_id = record_id(crm)

        def verify_generic(headers: Headers, body: bytes, now: float) -> list[ChangeEvent]:
            instant = datetime.fromtimestamp(now, UTC)
            active = [key for key, entry in keys if entry.active(instant)]
            msg_id = standard_webhooks.verify(headers, body, active, now_s=now, window_s=window)
            return standard_webhooks.parse(msg_id, body, generic_id)

        endpoints.append(
            Endpoint("generic", JSON_TYPES, settings.max_json_bytes, verify_generic, json_ack)
        )
    return endpoints


def _response(endpoint: Endpoint, new_events: int) -> Response:
    ack = endpoint.ack(new_events)
    return Response(ack.body, media_type=ack.media_type)


async def _read_capped(request: Request, limit: int, timeout_s: float) -> bytes:
    """The body, refusing (413) as soon as it exceeds ``limit`` bytes, and (408) a sender
    that takes longer than ``timeout_s`` to send it (a connection held open costs us)."""
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise WebhookRejected(413, f"body exceeds {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise WebhookRejected(408, f"body not received within {timeout_s} s") from None
    return b"".join(chunks)


def _precheck(request: Request, endpoint: Endpoint) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and not _CONTENT_LENGTH.fullmatch(declared):
        raise WebhookRejected(400, "Content-Length must be 1..12 ASCII digits", "bad_header")
    if declared is not None and int(declared) > endpoint.max_bytes:
        raise WebhookRejected(413, f"body exceeds {endpoint.max_bytes} bytes")
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in endpoint.content_types:
        raise WebhookRejected(415, f"content type must be {' or '.join(endpoint.content_types)}")


def create_app(
    settings: WebhooksSettings,
    inbox: Inbox,
    *,
    metrics: Metrics | None = None,
    api_calls: Callable[[], Mapping[str, int]] | None = None,
    own_fields: frozenset[str] = frozenset(),
    crm: str | None = None,
    clock: Callable[[], float] = time.time,
    deferrer: Deferrer | None = None,
    queue: Callable[[datetime], QueueStats] | None = None,
) -> Starlette:
    """The receiver for ``settings``, persisting into ``inbox``.

    ``api_calls`` reports the worker's CRM API usage for ``/metrics``; ``crm`` is the
    configured CRM (``/webhooks/generic`` admits only its record id format); ``clock``
    (epoch seconds) is injectable so replay-window tests need no sleeping. With a task
    engine, ``deferrer`` hands every committed event to it and ``queue`` reads its queue
    for ``/metrics``."""
    metrics = metrics or Metrics()
    committer = GroupCommitter(
        inbox,
        clock=lambda: datetime.fromtimestamp(clock(), UTC),
        on_added=deferrer.offer if deferrer is not None else None,
    )

    def count(endpoint: str, status: int) -> None:
        metrics.inc(
            "crmtier_webhook_requests_total",
            "Webhook requests by route and HTTP status.",
            route=endpoint,
            status=str(status),
        )

    async def receive(endpoint: Endpoint, request: Request) -> Response:
        try:
            _precheck(request, endpoint)
            body = await _read_capped(request, endpoint.max_bytes, settings.body_timeout_seconds)
            events = endpoint.verify(request.headers, body, clock())
        except WebhookRejected as rejected:
            count(endpoint.name, rejected.status)
            metrics.inc(REFUSALS_METRIC, REFUSALS_HELP, route=endpoint.name, code=rejected.code)
            log.info(
                "webhook %s rejected: %s %s: %s",
                endpoint.name,
                rejected.status,
                rejected.code,
                rejected,
            )
            return JSONResponse(
                {"error": rejected.reason, "code": rejected.code}, status_code=rejected.status
            )
        try:
            new = await committer.persist(events) if events else 0
        except sa.exc.SQLAlchemyError as exc:
            count(endpoint.name, 503)
            log.error("webhook %s: inbox unavailable (%s)", endpoint.name, type(exc).__name__)
            return JSONResponse(
                {"error": "inbox unavailable"}, status_code=503, headers={"Retry-After": "5"}
            )
        count(endpoint.name, 200)
        _count_events(metrics, new, len(events) - new)
        return _response(endpoint, new)

    # Both read the store: off the event loop, so a scrape never delays an ack.
    async def healthz(_: Request) -> Response:
        try:
            await asyncio.to_thread(inbox.stats, datetime.fromtimestamp(clock(), UTC))
        except sa.exc.SQLAlchemyError:
            return JSONResponse({"status": "inbox unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def metrics_text(_: Request) -> Response:
        now = datetime.fromtimestamp(clock(), UTC)
        text = await asyncio.to_thread(metrics.render, inbox, api_calls, now, queue)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    routes = [
        Route(f"/webhooks/{endpoint.name}", partial(receive, endpoint), methods=["POST"])
        for endpoint in _endpoints(settings, own_fields, crm)
    ]
    routes += [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_text, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await committer.close()  # requests already verified still get their commit
        if deferrer is not None:
            await deferrer.close()  # and their job, unless the sweep must give it

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.metrics = metrics
    app.state.committer = committer
    return app


def _count_events(metrics: Metrics, new: int, duplicates: int) -> None:
    for outcome, amount in (("accepted", new), ("duplicate", duplicates)):
        if amount:
            metrics.inc(EVENTS_METRIC, EVENTS_HELP, amount, outcome=outcome)


def configured_routes(settings: WebhooksSettings) -> Sequence[str]:
    """The notification routes this configuration mounts (for ``crmtier serve``'s banner)."""
    return [f"/webhooks/{endpoint.name}" for endpoint in _endpoints(settings, frozenset())]
