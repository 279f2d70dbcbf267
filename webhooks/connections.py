"""Connection hygiene for the receiver: header timeout, header size cap, connection limit.

uvicorn (0.55, checked) leaves three doors open to a slowloris client, which sends nothing,
or sends its headers a byte at a time:

* no timer runs while a new connection waits for its first request, and any byte cancels
  the keep-alive timer, so an idle or trickling connection is held for ever;
* ``limit_concurrency`` counts open connections, so idle ones make it answer 503 to every
  real request, and without it the process runs out of file descriptors (a common
  systemd default is 1,024) and stops accepting at all;
* the httptools parser has no header size limit (it took a 2 MB header line); uvicorn's
  ``h11_max_incomplete_event_size`` applies to the h11 parser only.

``ConnectionGuard`` closes the gap at the protocol level, where the ASGI app cannot see:
a connection must deliver a request's complete headers within ``header_timeout`` of
opening (or of its previous response) and in at most ``MAX_HEADER_BYTES``; and when
``max_connections`` are open, a new connection evicts the one that has waited longest for
its headers, so idle connections can never crowd out a sender that is actually sending.
Only when every connection is busy with a request is the newcomer refused (503). The
limit is kept below the process's file-descriptor limit. Each refusal is counted in
``crmtier_webhook_connections_closed_total{reason}`` and the limit being reached is logged
(at most every ``LOG_EVERY_S`` seconds, with the counts since the last line).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from webhooks.metrics import Metrics
from webhooks.settings import WebhooksSettings

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
#: File descriptors kept free for the state store, the CRM client, logs and the listener.
RESERVED_FILES = 64
LOG_EVERY_S = 10.0
CLOSED_METRIC = "crmtier_webhook_connections_closed_total"
CLOSED_HELP = "Connections the receiver closed: header_timeout, header_too_large, evicted, refused."
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n"
    b"retry-after: 5\r\nconnection: close\r\n\r\n"
)
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n"
    b"connection: close\r\n\r\n"
)


def receiver_config(
    app: ASGIApp, settings: WebhooksSettings, metrics: Metrics, **options: Any
) -> uvicorn.Config:
    """The uvicorn configuration that serves the receiver ``app`` under ``settings``' limits:
    header timeout, connection limit (as a guard, not ``limit_concurrency``, which would
    turn idle connections into 503s for real senders) and keep-alive timeout."""
    guard = ConnectionGuard(
        max_connections=fit_to_file_limit(settings.max_connections),
        header_timeout_s=settings.header_timeout_seconds,
        metrics=metrics,
    )
    return uvicorn.Config(
        app,
        http=guard.protocol_class(),
        timeout_keep_alive=settings.keep_alive_seconds,
        **options,
    )


def fit_to_file_limit(max_connections: int) -> int:
    """``max_connections``, lowered if the process cannot open that many sockets.

    Raises the soft ``RLIMIT_NOFILE`` towards the hard one first (allowed without
    privileges); what is still missing lowers the limit, with a warning."""
    needed = max_connections + RESERVED_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return max_connections
    fitted = max(1, soft - RESERVED_FILES)
    log.warning(
        "max_connections lowered from %d to %d: the process may open %d files "
        "(raise LimitNOFILE / ulimit -n)",
        max_connections,
        fitted,
        soft,
    )
    return fitted


class ConnectionGuard:
    """One server's limits, and its open connections in the order they began to wait."""

    def __init__(
        self,
        *,
        max_connections: int,
        header_timeout_s: float,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.open: set[GuardedHttpProtocol] = set()
        self._since_log: dict[str, int] = {}
        self._last_log = float("-inf")

    def protocol_class(self) -> type[GuardedHttpProtocol]:
        """The uvicorn ``http`` protocol class bound to this guard."""
        return type("GuardedHttp", (GuardedHttpProtocol,), {"guard": self})

    def admit(self, newcomer: GuardedHttpProtocol) -> bool:
        """Make room for ``newcomer``: True when it may stay (an idle connection may have
        been closed for it), False when every other connection is busy with a request."""
        self.open.add(newcomer)
        if len(self.open) <= self.max_connections:
            return True
        waiting = [c for c in self.open if c is not newcomer and c.waiting_since is not None]
        if not waiting:
            self.open.discard(newcomer)
            self.closed("refused")
            return False
        oldest = min(waiting, key=lambda c: c.waiting_since or 0.0)
        self.open.discard(oldest)
        oldest.transport.close()
        self.closed("evicted")
        return True

    def closed(self, reason: str) -> None:
        self.metrics.inc(CLOSED_METRIC, CLOSED_HELP, reason=reason)
        if reason not in ("evicted", "refused"):
            return
        self._since_log[reason] = self._since_log.get(reason, 0) + 1
        now = self.clock()
        if now - self._last_log >= LOG_EVERY_S:
            counts = ", ".join(f"{n} {what}" for what, n in sorted(self._since_log.items()))
            log.warning(
                "connection limit %d reached: %s (idle connections closed first; "
                "see docs/webhooks.md, reverse proxy)",
                self.max_connections,
                counts,
            )
            self._since_log.clear()
            self._last_log = now


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol under a ``ConnectionGuard`` (set by ``protocol_class``).

    ``waiting_since`` is when the connection began waiting for a request's headers (on
    open, and after each response), None while a request is being handled."""

    guard: ConnectionGuard

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting_since: float | None = None
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for_headers()
        if not self.guard.admit(self):
            transport.write(_REFUSAL)
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.open.discard(self)
        self._stop_waiting()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.waiting_since is not None:
            self._header_bytes += len(data)
        super().data_received(data)
        if self.waiting_since is not None and self._header_bytes > MAX_HEADER_BYTES:
            self.guard.closed("header_too_large")
            self.transport.write(_TOO_LARGE)
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._stop_waiting()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # the next request's headers are already in
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._wait_for_headers()

    def _wait_for_headers(self) -> None:
        self.waiting_since = self.guard.clock()
        self._header_bytes = 0
        self._header_timer = self.loop.call_later(
            self.guard.header_timeout_s, self._headers_too_late
        )

    def _stop_waiting(self) -> None:
        self.waiting_since = None
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_late(self) -> None:
        self._header_timer = None
        if self.waiting_since is not None and not self.transport.is_closing():
            self.guard.closed("header_timeout")
            self.transport.close()
