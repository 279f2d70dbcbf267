"""The HTTPS server every CRM sandbox runs on: routing, call counting, fault injection, the
``/__sandbox__/`` control API, and modelled latency.

A CRM sandbox (``salesforce.py``, ``zoho.py``, ``fxiaoke.py``) only registers routes that
speak its wire format; everything a test needs to observe or perturb the CRM lives here, so
the three behave the same way under test:

* every request to a CRM route is counted under the route's ``kind`` (``query``,
  ``collections_update``, ...) with its time, so tests assert exact call counts and rates;
* faults are rules matched by kind (or ``*``): answer with a canned response, sleep, drop
  the connection before the call is served, or serve it and then drop the connection (the
  answer lost: the CRM holds the write, the client never hears of it), for the next N
  matching calls, optionally after skipping M;
* ``/__sandbox__/`` endpoints need their own bearer token and are not counted.

It is stdlib ``ThreadingHTTPServer`` with HTTP/1.1 keep-alive on purpose: a sandbox must be
able to reset a connection mid-request, which an ASGI server hides from the application.
Its connections send with Nagle's algorithm off (``disable_nagle_algorithm``; asyncio's,
so uvicorn's, do too): ``BaseHTTPRequestHandler`` writes a response's headers and its body
in two writes, and with Nagle on, the body waited for the client's delayed ACK of the
headers, about 40 ms on Linux, on every call of a keep-alive connection. A first sync of
240 customers on the Zoho sandbox (a call per campaign relate and task insert) spent 10 of
its 12.6 s waiting so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/__sandbox__"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str, default: str | None = None) -> str | None:
        value = self.headers.get(name)
        return value if value is not None else default


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(obj, ensure_ascii=False, default=str).encode("utf-8")
        return cls(
            status, body, {"Content-Type": "application/json;charset=UTF-8", **(headers or {})}
        )

    @classmethod
    def text(
        cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8"
    ) -> Response:
        return cls(status, text.encode("utf-8"), {"Content-Type": content_type})


class DropConnection(Exception):
    """Raised by a handler or a fault: the server resets the TCP connection, no response."""


Handler = Callable[[Request], Response]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    kind: str


class Router:
    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, pattern: str, handler: Handler, kind: str) -> None:
        """``pattern`` is a regex matched against the whole path; named groups become params."""
        self._routes.append(Route(method.upper(), re.compile(pattern), handler, kind))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self._routes:
            m = route.pattern.fullmatch(path)
            if m and route.method == method:
                return route, m.groupdict()
        return None


@dataclass
class Fault:
    """A fault rule. ``kind`` is a route kind or ``*``. ``times`` None means forever."""

    kind: str = "*"
    response: Response | None = None
    delay: float = 0.0
    drop: bool = False
    answer_lost: bool = False  # served, then the connection dropped before the answer
    times: int | None = 1
    after: int = 0
    match: Callable[[Request], bool] | None = None
    id: int = 0


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self._next_id = 1

    def add(self, fault: Fault) -> int:
        with self._lock:
            fault.id = self._next_id
            self._next_id += 1
            self._rules.append(fault)
            return fault.id

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, kind: str, request: Request) -> Fault | None:
        """The first rule that fires for this call; consumes one of its ``times``."""
        with self._lock:
            for rule in self._rules:
                if rule.kind not in ("*", kind):
                    continue
                if rule.match is not None and not rule.match(request):
                    continue
                if rule.after > 0:
                    rule.after -= 1
                    continue
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                return rule
        return None


class CallLog:
    """Counts calls by kind and keeps their times, for exact-count and rate assertions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._times: list[tuple[float, str]] = []

    def record(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] += 1
            self._times.append((time.monotonic(), kind))

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def count(self, *kinds: str) -> int:
        with self._lock:
            return sum(self._counts[k] for k in kinds)

    def max_in_window(self, kind: str, seconds: float) -> int:
        """The most calls of ``kind`` seen in any sliding window of ``seconds``."""
        with self._lock:
            times = [t for t, k in self._times if k == kind]
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] > seconds:
                start += 1
            best = max(best, end - start + 1)
        return best

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._times.clear()


class SandboxServer:
    """Runs a router over HTTPS (or HTTP when ``ssl_context`` is None) in a daemon thread."""

    def __init__(
        self,
        router: Router,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        control_token: str | None = None,
        latency: float = 0.0,
    ) -> None:
        self.router = router
        self.faults = Faults()
        self.calls = CallLog()
        self.latency = latency
        self.control_token = control_token or secrets.token_urlsafe(24)
        self.control = Router()
        self._add_control_routes()
        self._httpd = _Httpd((host, port), _make_handler(self))
        if ssl_context is not None:
            self._httpd.socket = ssl_context.wrap_socket(self._httpd.socket, server_side=True)
        self._scheme = "https" if ssl_context is not None else "http"
        self._thread: threading.Thread | None = None
        self.on_reset: list[Callable[[], None]] = []

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{self._scheme}://{host!s}:{port}"

    def start(self) -> SandboxServer:
        # A short poll interval: stop() returns in ~50 ms instead of up to 0.5 s, which
        # adds up over the hundreds of sandboxes a test run starts.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject(self, kind: str = "*", **kwargs: Any) -> int:
        """In-process fault injection; the same as ``POST /__sandbox__/faults``."""
        return self.faults.add(Fault(kind=kind, **kwargs))

    def reset(self) -> None:
        self.faults.clear()
        self.calls.reset()
        for hook in self.on_reset:
            hook()

    # --- dispatch ---------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith(CONTROL_PREFIX):
            return self._dispatch_control(request)
        found = self.router.match(request.method, request.path)
        if found is None:
            return Response.json([{"errorCode": "NOT_FOUND", "message": request.path}], 404)
        route, params = found
        request.params = params
        self.calls.record(route.kind)
        if self.latency:
            time.sleep(self.latency)
        fault = self.faults.take(route.kind, request)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                raise DropConnection
            if fault.response is not None:
                return fault.response
            if fault.answer_lost:
                route.handler(request)
                raise DropConnection
        return route.handler(request)

    def _dispatch_control(self, request: Request) -> Response:
        auth = request.header("Authorization", "") or ""
        expected = f"Bearer {self.control_token}"
        if not secrets.compare_digest(auth.encode(), expected.encode()):
            return Response.json({"error": "control API needs its bearer token"}, 401)
        found = self.control.match(request.method, request.path[len(CONTROL_PREFIX) :])
        if found is None:
            return Response.json({"error": "unknown control endpoint"}, 404)
        route, params = found
        request.params = params
        return route.handler(request)

    def _add_control_routes(self) -> None:
        self.control.add("GET", "/calls", lambda r: Response.json(self.calls.counts()), "ctl")

        def add_fault(request: Request) -> Response:
            spec = request.json() or {}
            response = None
            if "status" in spec:
                response = Response.json(
                    spec.get("body", {}), int(spec["status"]), spec.get("headers")
                )
            fault_id = self.inject(
                spec.get("kind", "*"),
                response=response,
                delay=float(spec.get("delay", 0.0)),
                drop=bool(spec.get("drop", False)),
                answer_lost=bool(spec.get("answer_lost", False)),
                times=spec.get("times", 1),
                after=int(spec.get("after", 0)),
            )
            return Response.json({"id": fault_id}, 201)

        def reset(_: Request) -> Response:
            self.reset()
            return Response.json({"reset": True})

        def set_latency(request: Request) -> Response:
            self.latency = float((request.json() or {}).get("seconds", 0.0))
            return Response.json({"latency": self.latency})

        self.control.add("POST", "/faults", add_fault, "ctl")
        self.control.add("POST", "/reset", reset, "ctl")
        self.control.add("POST", "/latency", set_latency, "ctl")


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("sandbox connection error", exc_info=True)


def _make_handler(server: SandboxServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "crmtier-sandbox"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("sandbox: " + format, *args)

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers=self.headers,
                body=body,
            )
            try:
                response = server.dispatch(request)
            except DropConnection:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            except Exception:
                log.exception("sandbox handler failed")
                response = Response.json([{"errorCode": "UNKNOWN_EXCEPTION"}], 500)
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    return _Handler
