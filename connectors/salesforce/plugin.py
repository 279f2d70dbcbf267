"""Salesforce as a connector plugin: what the rest of crmtier knows of it (connectors/plugin.py).

Webhooks are Outbound Messages: SOAP, verified by the org id the message carries
(``[webhooks] salesforce_org_id``) and acknowledged with ``<Ack>true</Ack>``, without which
Salesforce resends for 24 hours ("Outbound Messaging", Salesforce Help). ``doctor --fix``
creates the missing write-back and External ID fields through the Metadata API.
"""

from __future__ import annotations

from pydantic import Field

from connectors.plugin import (
    Ack,
    Endpoint,
    FixContext,
    FixReport,
    Plugin,
    Webhook,
    WebhookContext,
    WebhookKeys,
    checks_named,
    lazy_parts,
)
from connectors.salesforce import webhook
from connectors.salesforce.config import SalesforceSettings

KIND = "salesforce"
_ORG_ID = r"^00D[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$"
#: the check lines (connectors/salesforce/schema_check.py) the Metadata API fix can mend
_FIXABLE = ("write-back ", "external id ")


class SalesforceKeys(WebhookKeys):
    salesforce_org_id: str | None = Field(default=None, pattern=_ORG_ID)


def _soap_ack(_: int) -> Ack:
    return Ack(webhook.ACK, "text/xml; charset=utf-8")


def _endpoint(keys: SalesforceKeys, context: WebhookContext) -> Endpoint | None:
    org_id = keys.salesforce_org_id
    if not org_id:
        return None
    return Endpoint(
        KIND,
        webhook.CONTENT_TYPES,
        context.max_xml_bytes,
        lambda _h, body, _now: webhook.verify_and_parse(body, org_id=org_id),
        _soap_ack,
    )


def _fix(context: FixContext) -> FixReport:
    """Create the write-back and External ID fields the checklist found missing."""
    from connectors.salesforce.connector import SalesforceConnector
    from connectors.salesforce.metadata import fix_schema

    if not any(not c.ok for c in checks_named(context.checks, *_FIXABLE)):
        return FixReport()
    connector = context.connector
    if not isinstance(connector, SalesforceConnector):
        return FixReport(by_hand=["this Salesforce connector cannot create fields"])
    done = fix_schema(
        connector.client, connector.settings, connector.mapping.object, connector.writeback
    )
    handled = {c.name for c in context.checks if c.name.rpartition(" ")[2] in done.handled}
    return FixReport(done.fixed, done.by_hand, frozenset(handled))


PLUGIN = Plugin(
    name=KIND,
    title="Salesforce",
    settings=SalesforceSettings,
    **lazy_parts(KIND, "SalesforceSandbox"),
    absent_id="001999999999999AAA",
    webhook=Webhook(SalesforceKeys, webhook.RECORD_ID, _endpoint),
    fix=_fix,
    by_hand="input fields hold the bank's own data, so crmtier never creates them "
    "(fix [mapping.fields] or add them in Setup); campaigns are named by id in "
    "[writeback.campaigns], so create a missing one in Salesforce and put its id there",
)
