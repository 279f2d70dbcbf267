"""Notification bodies as each CRM sends them, built the way the CRM builds them, for tests
and the bench. Signing uses the same functions a sender would use."""

from __future__ import annotations

import json
from collections.abc import Sequence

from connectors.fxiaoke import webhook as fx
from webhooks import standard_webhooks as sw

ORG_ID = "00D5g000004ABCDEAZ"
ZOHO_CHANNEL = "1000000068001"
ZOHO_TOKEN = "tiering-plugin-token-7f3a9c0e5d"
FX_SECRET = "fx-shared-secret-0123456789abcdef"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WHSEC_NEW = "whsec_" + "bmV3LXNlY3JldC1rZXktMDEyMzQ1Njc4OWFiY2RlZg=="


def salesforce_om(
    records: Sequence[tuple[str, str]],
    *,
    org_id: str = ORG_ID,
    modstamp: str | None = "2026-11-28T10:00:00.000Z",
    session_id: str = "00Dxx!SESSION-SECRET",
) -> bytes:
    """An Outbound Message with one Notification per (notification id, record id)."""
    stamp = f"<sf:SystemModstamp>{modstamp}</sf:SystemModstamp>" if modstamp else ""
    notes = "".join(
        f"<Notification><Id>{nid}</Id>"
        f'<sObject xsi:type="sf:Account" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"<sf:Id>{rid}</sf:Id>{stamp}</sObject></Notification>"
        for nid, rid in records
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{org_id}</OrganizationId><ActionId>04k5g000000ABCDAAA</ActionId>"
        f"<SessionId>{session_id}</SessionId>"
        "<EnterpriseUrl>https://x.my.salesforce.com/services/Soap/c/59.0</EnterpriseUrl>"
        "<PartnerUrl>https://x.my.salesforce.com/services/Soap/u/59.0</PartnerUrl>"
        f"{notes}</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


def zoho_callback(
    ids: Sequence[str],
    *,
    token: str = ZOHO_TOKEN,
    channel_id: str = ZOHO_CHANNEL,
    operation: str = "update",
    server_time: int = 1718117126473,
) -> bytes:
    return json.dumps(
        {
            "server_time": server_time,
            "query_params": {},
            "module": "Accounts",
            "resource_uri": "https://www.zohoapis.com/crm/v2/Accounts",
            "ids": list(ids),
            "affected_fields": [],
            "operation": operation,
            "channel_id": channel_id,
            "token": token,
        }
    ).encode()


def fxiaoke_push(
    event_id: str, data_id: str, *, now_s: float, secret: str = FX_SECRET, event: str = "update"
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "eventId": event_id,
            "event": event,
            "tenantId": "fs-tenant-1",
            "objectApiName": "AccountObj",
            "dataId": data_id,
            "timestamp": int(now_s * 1000),
        }
    ).encode()
    ts = str(int(now_s * 1000))
    return body, {
        "content-type": "application/json",
        "x-fx-timestamp": ts,
        "x-fx-signature": fx.sign(secret.encode(), ts, body),
    }


def generic_event(
    msg_id: str, customer_id: str, *, now_s: float, secrets: Sequence[str] = (WHSEC,)
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"type": "customer.updated", "data": {"id": customer_id}}).encode()
    ts = str(int(now_s))
    signature = " ".join(sw.sign(sw.decode_secret(s), msg_id, ts, body) for s in secrets)
    return body, {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": signature,
    }


# --- hostile XML (docs/targets.md W9) -----------------------------------------------------

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
        for i in range(1, 10)
    )
    + b"]><lolz>&lol9;</lolz>"
)
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<soapenv:Envelope xmlns:soapenv='http://schemas.xmlsoap.org/soap/envelope/'>&xxe;</soapenv:Envelope>"
)
EXTERNAL_DTD = b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://127.0.0.1:9/evil.dtd"><x/>'
QUADRATIC = (
    b'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "'
    + b"a" * 1000
    + b'">]><q>'
    + b"&a;" * 1000
    + b"</q>"
)
DEEP = b"<a>" * 100_000 + b"</a>" * 100_000
