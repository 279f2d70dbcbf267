"""Salesforce Outbound Messages: parse the SOAP notification safely and turn it into events.

An Outbound Message carries no signature (Salesforce SOAP API Developer Guide, "Outbound
Messaging"; docs/targets.md W10): it is authenticated by its ``OrganizationId`` matching the
configured org (plus, optionally, Salesforce's client certificate checked by the TLS-terminating
proxy, see docs/webhooks.md). A mismatch is a 403 and, crucially, no ``<Ack>``, so a misdirected
sender keeps nothing.

The body is attacker-controlled XML, so it is parsed only with defusedxml with DTDs
forbidden (billion laughs, external entities and external DTDs fail before expansion, W9)
and with a nesting-depth limit (a legitimate message is 6 levels deep). ``SessionId`` is
never read: it is a live Salesforce session and must not be logged or stored. Salesforce
sends UTF-8; a body that is not UTF-8, or declares another encoding, is refused (415) before
expat sees it (expat raises ``ValueError``/``LookupError``, not a parse error, for encodings
such as UTF-7 that it cannot handle).

Ids (the org's, each notification's, each record's) are 15 case-sensitive or 18
case-insensitive alphanumeric characters ("Field Types: ID", SOAP API Developer Guide,
developer.salesforce.com/docs/atlas.en-us.api.meta/api/field_types.htm).

Each ``<Notification>`` becomes one ``ChangeEvent`` keyed by its notification ``Id``, which
Salesforce reuses on every retry, so redeliveries dedupe in the inbox (W4). A notification
whose ``sObject`` carries nothing is acknowledged and becomes no event: "If the record is
deleted before the notification is delivered, the notification contains no data" (Salesforce
Help, "Considerations for Outbound Messages", help.salesforce.com/s/articleView?id=
platform.workflow_om_considerations.htm). Refusing it would refuse the whole message, up
to 99 other customers' changes with it, and Salesforce would resend it for 24 hours.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from connectors.webhook_events import ChangeEvent, WebhookRejected, secrets_match

log = logging.getLogger(__name__)

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
OM_NS = "http://soap.sforce.com/2005/09/outbound"
MAX_DEPTH = 16
MAX_NOTIFICATIONS = 100
CONTENT_TYPES = ("text/xml", "application/soap+xml")
RECORD_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
_DECLARED_ENCODING = re.compile(
    rb"(?:\xef\xbb\xbf)?<\?xml\s[^>]*?\bencoding\s*=\s*[\"']([^\"']{0,40})[\"']"
)
_VERSION_FIELDS = ("SystemModstamp", "LastModifiedDate")

#: The acknowledgement Salesforce needs to stop retrying a message.
ACK = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    b"<soapenv:Body>"
    b'<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">'
    b"<Ack>true</Ack></notificationsResponse>"
    b"</soapenv:Body></soapenv:Envelope>"
)


class _DepthLimitedBuilder(TreeBuilder):
    """Builds the tree but refuses documents nested deeper than ``MAX_DEPTH``."""

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0

    def start(self, tag: Any, attrs: Any) -> Element:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise WebhookRejected(400, f"XML nested deeper than {MAX_DEPTH} levels", "too_deep")
        return super().start(tag, attrs)

    def end(self, tag: Any) -> Element:
        self._depth -= 1
        return super().end(tag)


def parse_xml(body: bytes) -> Element:
    """Parse untrusted XML: UTF-8 only, no DTD, no entities, no external references, bounded
    depth."""
    if not _is_utf8(body):
        raise WebhookRejected(415, "XML must be encoded as UTF-8", "xml_encoding")
    parser = DefusedXMLParser(
        target=_DepthLimitedBuilder(), forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(body)
        root: Element = parser.close()
    except DefusedXmlException as exc:
        raise WebhookRejected(
            400, f"forbidden XML construct: {type(exc).__name__}", "xml_forbidden"
        ) from None
    except ParseError:
        raise WebhookRejected(400, "body is not well-formed XML", "not_xml") from None
    return root


def _is_utf8(body: bytes) -> bool:
    """The body is UTF-8 and its XML declaration, if any, says so."""
    declared = _DECLARED_ENCODING.match(body)
    if declared is not None and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def verify_and_parse(body: bytes, *, org_id: str) -> list[ChangeEvent]:
    """The change events of one Outbound Message from the org ``org_id`` (15 or 18 chars).

    Raises ``WebhookRejected``: 400 when the SOAP envelope is malformed, 403 when it comes
    from another org."""
    root = parse_xml(body)
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise WebhookRejected(400, "not a SOAP 1.1 envelope")
    notifications = root.find(f"{{{SOAP_ENV}}}Body/{{{OM_NS}}}notifications")
    if notifications is None:
        raise WebhookRejected(400, "SOAP body holds no outbound-message notifications")
    _check_org(_text(notifications, "OrganizationId"), org_id)
    items = notifications.findall(f"{{{OM_NS}}}Notification")
    if not 1 <= len(items) <= MAX_NOTIFICATIONS:
        raise WebhookRejected(400, f"a message holds 1..{MAX_NOTIFICATIONS} notifications")
    return [event for item in items if (event := _event(item)) is not None]


def _check_org(received: str | None, configured: str) -> None:
    if received is None or not RECORD_ID.fullmatch(received):
        raise WebhookRejected(400, "OrganizationId missing or malformed")
    # A 15-character configured id is the case-sensitive prefix of the 18-character form.
    if not secrets_match(received[: len(configured)], configured):
        raise WebhookRejected(403, "OrganizationId does not match salesforce_org_id")


def _event(notification: Element) -> ChangeEvent | None:
    """The notification's change event; none for one that carries no data (its record was
    deleted before delivery: nothing to re-tier), logged with its notification Id, since
    it leaves no inbox row and no event count behind to show an operator it came."""
    notification_id = _text(notification, "Id")
    if notification_id is None or not RECORD_ID.fullmatch(notification_id):
        raise WebhookRejected(400, "Notification needs an Id")
    sobject = notification.find(f"{{{OM_NS}}}sObject")
    children = () if sobject is None else sobject  # (an Element's truth value is deprecated)
    fields = {_local(child.tag): (child.text or "").strip() for child in children}
    if not any(fields.values()):
        log.info(
            "salesforce notification %s carries no data (its record was deleted before "
            "delivery): acknowledged, no event",
            notification_id,
        )
        return None
    record_id = fields.get("Id", "")
    if not RECORD_ID.fullmatch(record_id):
        raise WebhookRejected(
            400, f"Notification {notification_id}: sObject Id is not a record id", "bad_record_id"
        )
    return ChangeEvent(
        crm="salesforce",
        event_key=f"salesforce:{notification_id}",
        customer_id=record_id,
        operation="update",
        version=_version(fields, notification_id),
    )


def _version(fields: dict[str, str], notification_id: str) -> datetime | None:
    for name in _VERSION_FIELDS:
        if fields.get(name):
            try:
                return datetime.fromisoformat(fields[name].replace("Z", "+00:00"))
            except ValueError:
                raise WebhookRejected(
                    400, f"Notification {notification_id}: {name} is not a dateTime"
                ) from None
    return None


def _text(parent: Element, name: str) -> str | None:
    child = parent.find(f"{{{OM_NS}}}{name}")
    return None if child is None or child.text is None else child.text.strip()


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]
