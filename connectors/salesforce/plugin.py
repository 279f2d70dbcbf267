"""Salesforce as a connector plugin: what the rest of crmtier knows of it (connectors/plugin.py).

Webhooks are Outbound Messages: SOAP, verified by the org id the message carries
(``[webhooks] salesforce_org_id``) and acknowledged with ``<Ack>true</Ack>``, without which
Salesforce resends for 24 hours ("Outbound Messaging", Salesforce Help). ``doctor --fix``
creates the missing write-back and External ID fields through the Metadata API.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from connectors.contract import Connector
from connectors.mapping import DefaultMapping, FieldMapping, WritebackConfig, load_default_mapping
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
)
from connectors.salesforce import webhook
from connectors.salesforce.config import SalesforceSettings

if TYPE_CHECKING:
    from connectors.sandbox.base import Sandbox

KIND = "salesforce"
_ORG_ID = r"^00D[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$"
#: the check lines (connectors/salesforce/schema_check.py) the Metadata API fix can mend
_FIXABLE = ("write-back ", "external id ")


class SalesforceKeys(WebhookKeys):
    salesforce_org_id: str | None = Field(default=None, pattern=_ORG_ID)


def _connector(
    crm: Mapping[str, Any], mapping: FieldMapping, writeback: WritebackConfig
) -> Connector:
    from connectors.salesforce.connector import build  # the SDK loads only when used

    return build(crm, mapping, writeback)


def _sandbox(*, data_dir: Path, host: str, port: int, latency: float, **options: Any) -> Sandbox:
    from connectors.sandbox.salesforce import SalesforceSandbox

    return SalesforceSandbox(data_dir=data_dir, host=host, port=port, latency=latency, **options)


def _default_mapping() -> DefaultMapping:
    return load_default_mapping(KIND)


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
    connector=_connector,
    default_mapping=_default_mapping,
    sandbox=_sandbox,
    absent_id="001999999999999AAA",
    webhook=Webhook(SalesforceKeys, webhook.RECORD_ID, _endpoint),
    fix=_fix,
    by_hand="input fields hold the bank's own data, so crmtier never creates them "
    "(fix [mapping.fields] or add them in Setup); campaigns are named by id in "
    "[writeback.campaigns], so create a missing one in Salesforce and put its id there",
)
