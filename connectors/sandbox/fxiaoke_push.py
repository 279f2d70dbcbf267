"""The workflow push of the FXiaoke sandbox: what the admin's APL function sends.

FXiaoke documents no CRM record-change webhook (FXiaoke Open API v2 docs,
developer.fxiaoke.com/openapi_v2); real time comes
from a workflow (工作流) on create/update whose custom function calls ``Fx.http.post``
(docs/fxiaoke-apl.md). The sandbox plays that function: on every customer change made in
the CRM (not by crmtier's own ``triggerWorkFlow: false`` writes) it POSTs

    {"eventId", "event", "tenantId", "objectApiName", "dataId", "timestamp", "data"}

with ``X-Fx-Timestamp`` (epoch ms) and ``X-Fx-Signature`` = lowercase hex HMAC-SHA256 under
the shared secret of the timestamp string followed directly by the raw body (docs/webhooks.md).
``data`` carries only the modification stamp: no customer data leaves in a push, the
receiver re-fetches. Delivery is asynchronous, from one sender thread in event order; a
failed delivery (no 2xx, timeout, reset) is retried once, as ``Fx.http.post(..., retry=true,
retryCount=1)`` does, and then dropped: the scheduled sync is the safety net.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 3.0  # FXiaoke-side callers give up after a few seconds
RETRY_DELAY_SECONDS = 0.2


def signature(secret: str, timestamp_ms: str, body: bytes) -> str:
    """``X-Fx-Signature``: hex HMAC-SHA256(secret, timestamp string + raw body)."""
    return hmac.new(
        secret.encode("utf-8"), timestamp_ms.encode("ascii") + body, hashlib.sha256
    ).hexdigest()


@dataclass
class Delivery:
    event_id: str
    data_id: str
    event: str
    attempts: int = 0
    delivered: bool = False
    status: int | None = None


@dataclass
class _Target:
    url: str
    secret: str
    verify: str | bool = True


@dataclass
class WorkflowPush:
    tenant_id: str
    deliveries: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._target: _Target | None = None
        self._queue: queue.Queue[tuple[Delivery, bytes] | None] = queue.Queue()
        self._idle = threading.Condition()
        self._pending = 0
        self._session = requests.Session()
        self._session.trust_env = False
        self._thread = threading.Thread(target=self._run, name="fxiaoke-push", daemon=True)
        self._thread.start()

    def configure(self, url: str, secret: str, *, ca_bundle: str | None = None) -> None:
        self._target = _Target(url, secret, ca_bundle or True)

    @property
    def configured(self) -> bool:
        return self._target is not None

    def emit(self, event: str, object_api_name: str, data_id: str, modified_ms: int) -> None:
        """Queue one event (a no-op until a target is configured)."""
        if self._target is None:
            return
        now_ms = int(time.time() * 1000)
        delivery = Delivery(event_id=uuid.uuid4().hex, data_id=data_id, event=event)
        payload: dict[str, Any] = {
            "eventId": delivery.event_id,
            "event": event,
            "tenantId": self.tenant_id,
            "objectApiName": object_api_name,
            "dataId": data_id,
            "timestamp": now_ms,
            "data": {"last_modified_time": modified_ms},
        }
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        with self._idle:
            self._pending += 1
            self.deliveries.append(delivery)
        self._queue.put((delivery, body))

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)
        self._session.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            delivery, body = item
            try:
                for attempt in range(2):  # the first try and FXiaoke's one retry
                    if attempt:
                        time.sleep(RETRY_DELAY_SECONDS)
                    delivery.attempts += 1
                    if self._send(delivery, body):
                        delivery.delivered = True
                        break
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _send(self, delivery: Delivery, body: bytes) -> bool:
        target = self._target
        if target is None:
            return False
        timestamp = str(int(time.time() * 1000))
        headers = {
            "Content-Type": "application/json",
            "X-Fx-Timestamp": timestamp,
            "X-Fx-Signature": signature(target.secret, timestamp, body),
        }
        try:
            response = self._session.post(
                target.url,
                data=body,
                headers=headers,
                timeout=TIMEOUT_SECONDS,
                verify=target.verify,
            )
        except requests.RequestException:
            log.info("fxiaoke sandbox push failed", extra={"event_id": delivery.event_id})
            return False
        delivery.status = response.status_code
        return 200 <= response.status_code < 300
