"""Outbound Message delivery, the way a Salesforce org does it (Salesforce SOAP API
Developer Guide, "Outbound Messaging").

A record change that matches the workflow rule queues a notification; a background thread
POSTs them as a SOAP ``notifications`` envelope (≤ 100 per message) to the registered
endpoint and retries the *same* message (same notification ``Id``s) with exponential
back-off until the listener answers 200 with ``<Ack>true</Ack>``, or the message is older
than ``max_age`` (24 h in Salesforce), when it is dropped. Delivery is therefore
at-least-once and may reorder, exactly what the webhook receiver has to cope with.

Each attempt sends the records as they are then: "If the information in the record changes
after the notification is sent, but before the notification is delivered, only the updated
information is delivered. If the record is deleted before the notification is delivered,
the notification contains no data" (Salesforce Help, "Considerations for Outbound
Messages"): a deleted record's notification goes out with an empty ``sObject``.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from xml.sax.saxutils import escape

import requests

from connectors.sandbox.store import format_ts

log = logging.getLogger(__name__)

_ENVELOPE_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
    " <soapenv:Body>\n"
    '  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">\n'
)
_ENVELOPE_TAIL = "  </notifications>\n </soapenv:Body>\n</soapenv:Envelope>\n"
MAX_PER_MESSAGE = 100


@dataclass(frozen=True)
class Notification:
    id: str
    sobject: str
    fields: Mapping[str, Any]


@dataclass
class Target:
    url: str
    verify: str | bool = True
    backoff_base: float = 1.0
    backoff_cap: float = 7200.0  # Salesforce backs off up to a 2-hour interval
    max_age: float = 24 * 3600.0
    timeout: float = 60.0


@dataclass
class DeliveryStats:
    attempts: int = 0
    acked_messages: int = 0
    acked_notifications: int = 0
    dropped_notifications: int = 0
    bodies: deque[bytes] = field(default_factory=lambda: deque(maxlen=100))


def message_fields(view: Mapping[str, Any]) -> dict[str, Any]:
    """What the sandbox's outbound message sends of a customer: ``Id``, ``SystemModstamp``
    (an xsd:dateTime) and ``OwnerId``."""
    return {
        "Id": view["Id"],
        "SystemModstamp": format_ts(view["SystemModstamp"]),
        "OwnerId": view.get("OwnerId"),
    }


def envelope(org_id: str, action_id: str, base_url: str, notes: list[Notification]) -> bytes:
    parts = [
        _ENVELOPE_HEAD,
        f"   <OrganizationId>{org_id}</OrganizationId>\n",
        f"   <ActionId>{action_id}</ActionId>\n",
        '   <SessionId xsi:nil="true"/>\n',
        f"   <EnterpriseUrl>{escape(base_url)}/services/Soap/c/59.0/{org_id}</EnterpriseUrl>\n",
        f"   <PartnerUrl>{escape(base_url)}/services/Soap/u/59.0/{org_id}</PartnerUrl>\n",
    ]
    for note in notes:
        parts.append(f"   <Notification>\n    <Id>{note.id}</Id>\n")
        parts.append(
            f'    <sObject xsi:type="sf:{note.sobject}" '
            'xmlns:sf="urn:sobject.enterprise.soap.sforce.com">\n'
        )
        for name, value in note.fields.items():
            if value is None:
                parts.append(f'     <sf:{name} xsi:nil="true"/>\n')
            else:
                text = str(value).lower() if isinstance(value, bool) else str(value)
                parts.append(f"     <sf:{name}>{escape(text)}</sf:{name}>\n")
        parts.append("    </sObject>\n   </Notification>\n")
    parts.append(_ENVELOPE_TAIL)
    return "".join(parts).encode("utf-8")


def is_ack(response: requests.Response) -> bool:
    return response.status_code == 200 and b"<Ack>true</Ack>" in response.content


class OutboundMessenger:
    """Queues notifications and delivers them from one daemon thread."""

    def __init__(
        self,
        org_id: str,
        action_id: str,
        base_url: str,
        current: Callable[[str, str], Mapping[str, Any] | None] | None = None,
    ) -> None:
        #: the record as the org holds it now (None once deleted), read at each attempt
        self.current = current
        self.org_id = org_id
        self.action_id = action_id
        self.base_url = base_url
        self.stats = DeliveryStats()
        self._target: Target | None = None
        self._queue: deque[tuple[float, Notification]] = deque()
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._session = requests.Session()
        self._session.trust_env = False

    def set_target(self, target: Target | None) -> None:
        with self._cond:
            self._target = target
            self._cond.notify_all()

    @property
    def target(self) -> Target | None:
        return self._target

    def notify(self, sobject: str, fields: Mapping[str, Any]) -> None:
        """Queue one notification, if an endpoint is registered (as with a workflow rule)."""
        with self._cond:
            if self._target is None:
                return
            note = Notification(f"04l{next(self._ids):012d}AAA", sobject, dict(fields))
            self._queue.append((time.monotonic(), note))
            self._cond.notify_all()
        self._ensure_thread()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued notification was acked or dropped (tests)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue:  # a message leaves the queue only once acked or dropped
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._session.close()

    def _ensure_thread(self) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sf-outbound", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        attempt = 0
        while True:
            with self._cond:
                while not self._stopped and (not self._queue or self._target is None):
                    self._cond.wait()
                if self._stopped:
                    return
                target = self._target
                assert target is not None
                now = time.monotonic()
                while self._queue and now - self._queue[0][0] > target.max_age:
                    self._queue.popleft()  # 24 h old: Salesforce gives up on it
                    self.stats.dropped_notifications += 1
                    self._cond.notify_all()
                batch = [n for _, n in itertools.islice(self._queue, MAX_PER_MESSAGE)]
            if not batch:
                continue
            if self._deliver(target, batch):
                attempt = 0
                with self._cond:
                    for _ in batch:
                        self._queue.popleft()
                    self.stats.acked_messages += 1
                    self.stats.acked_notifications += len(batch)
                    self._cond.notify_all()
                continue
            delay = min(target.backoff_cap, target.backoff_base * 2**attempt)
            attempt += 1
            with self._cond:
                self._cond.wait_for(lambda: self._stopped, timeout=delay)

    def _as_sent(self, note: Notification) -> Notification:
        """``note`` with its record's fields as they are now, none once it is deleted."""
        if self.current is None:
            return note
        view = self.current(note.sobject, str(note.fields["Id"]))
        return replace(note, fields={} if view is None else message_fields(view))

    def _deliver(self, target: Target, batch: list[Notification]) -> bool:
        notes = [self._as_sent(note) for note in batch]
        body = envelope(self.org_id, self.action_id, self.base_url, notes)
        with self._cond:
            self.stats.attempts += 1
            self.stats.bodies.append(body)
        try:
            response = self._session.post(
                target.url,
                data=body,
                headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
                timeout=target.timeout,
                verify=target.verify,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            log.info("outbound message not delivered: %s", type(exc).__name__)
            return False
        return is_ack(response)
