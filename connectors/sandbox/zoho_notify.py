"""Zoho notification channels (``/crm/v2/actions/watch``) and callback delivery.

A channel subscribes a ``notify_url`` to module events (``Contacts.edit``, ``Contacts.all``)
until ``channel_expiry``; v2 allows at most one day and falls back to one hour when the
expiry is omitted or too far out (Zoho CRM "Enable Notifications"). When a record changes, every
live channel whose events match gets one POST per change batch, with ids only, echoing its
``token`` and ``channel_id``; the callback vocabulary is ``insert``/``update``/``delete``
while subscriptions say ``create``/``edit``/``delete``. Delivery runs on a background
thread, like Zoho's, so a slow receiver never slows the API; each attempt is recorded for
tests (Zoho documents no retries, so none are made).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

log = logging.getLogger(__name__)

DEFAULT_EXPIRY = timedelta(hours=1)
MAX_EXPIRY = timedelta(days=1)
MAX_TOKEN_LENGTH = 50
_OPERATION_EVENT = {"insert": "create", "update": "edit", "delete": "delete"}


@dataclass
class Channel:
    channel_id: str
    events: list[str]
    notify_url: str
    expiry: datetime
    token: str | None = None
    return_affected_field_values: bool = False
    resource_ids: dict[str, str] = field(default_factory=dict)

    def wants(self, module: str, operation: str, now: datetime) -> bool:
        if now >= self.expiry:
            return False
        wanted = {f"{module}.all", f"{module}.{_OPERATION_EVENT[operation]}"}
        return any(e in wanted for e in self.events)


@dataclass(frozen=True)
class Delivery:
    channel_id: str
    url: str
    payload: dict[str, Any]
    status: int | None
    error: str | None = None


class ChannelError(ValueError):
    """A watch request Zoho would refuse: ``code`` and the offending field."""

    def __init__(self, code: str, api_name: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.api_name = api_name


def resolve_expiry(requested: datetime | None, now: datetime) -> datetime:
    """v2 rules: omitted or beyond one day → one hour from now; in the past → refused."""
    if requested is None or requested - now > MAX_EXPIRY:
        return now + DEFAULT_EXPIRY
    if requested <= now:
        raise ChannelError("INVALID_DATA", "channel_expiry", "channel_expiry is in the past")
    return requested


class Notifier:
    """Channels by id plus a delivery thread; thread-safe."""

    def __init__(self, *, verify: str | bool = True, timeout: float = 10.0) -> None:
        self._lock = threading.Lock()
        self._channels: dict[str, Channel] = {}
        self._queue: queue.Queue[tuple[Channel, dict[str, Any]] | None] = queue.Queue()
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.verify = verify
        self._timeout = timeout
        self._deliveries: list[Delivery] = []
        self._delivered = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    # --- channels ---------------------------------------------------------------------

    def upsert(self, channel: Channel) -> Channel:
        if channel.token is not None and len(channel.token) > MAX_TOKEN_LENGTH:
            raise ChannelError("INVALID_DATA", "token", "token exceeds 50 characters")
        with self._lock:
            self._channels[channel.channel_id] = channel
        return channel

    def get(self, channel_id: str) -> Channel | None:
        with self._lock:
            return self._channels.get(channel_id)

    def channels(self) -> list[Channel]:
        with self._lock:
            return list(self._channels.values())

    def remove(self, channel_ids: Sequence[str]) -> list[str]:
        with self._lock:
            return [cid for cid in channel_ids if self._channels.pop(cid, None) is not None]

    # --- delivery ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="zoho-notify", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None
        self._session.close()

    def publish(
        self,
        module: str,
        operation: str,
        ids: Sequence[str],
        affected_fields: Sequence[str] = (),
        *,
        resource_base: str,
    ) -> int:
        """Queue one callback per matching live channel; returns how many were queued."""
        now = datetime.now(UTC)
        queued = 0
        for channel in self.channels():
            if not channel.wants(module, operation, now):
                continue
            payload = {
                "server_time": int(time.time() * 1000),
                "query_params": {},
                "module": module,
                "resource_uri": f"{resource_base}/crm/v2/{module}",
                "ids": list(ids),
                "affected_fields": [{rid: list(affected_fields)} for rid in ids]
                if operation == "update"
                else [],
                "operation": operation,
                "channel_id": channel.channel_id,
                "token": channel.token,
            }
            self._queue.put((channel, payload))
            queued += 1
        return queued

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Delivery]:
        """Block until at least ``count`` deliveries were attempted (or the timeout)."""
        with self._delivered:
            self._delivered.wait_for(lambda: len(self._deliveries) >= count, timeout)
            return list(self._deliveries)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            channel, payload = item
            try:
                resp = self._session.post(channel.notify_url, json=payload, timeout=self._timeout)
                result = Delivery(channel.channel_id, channel.notify_url, payload, resp.status_code)
            except requests.RequestException as exc:
                log.info("zoho sandbox: notification delivery failed: %s", type(exc).__name__)
                result = Delivery(
                    channel.channel_id, channel.notify_url, payload, None, type(exc).__name__
                )
            with self._delivered:
                self._deliveries.append(result)
                self._delivered.notify_all()
