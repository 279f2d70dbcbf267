"""Zoho CRM as a connector plugin: what the rest of crmtier knows of it (connectors/plugin.py).

Zoho signs no notification: crmtier subscribes a watch channel itself ("Notification APIs",
Zoho CRM API v2 documentation) with a token of 1..50 characters that each callback echoes
(``[webhooks] zoho_token``, ``zoho_channel_id``). The channel lapses within a day, so
``crmtier serve`` renews it hourly and ``doctor --fix`` registers it, at ``[webhooks]
public_url`` + ``/webhooks/zoho``.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from connectors.contract import Connector
from connectors.errors import ConfigError, ConnectorError
from connectors.plugin import (
    Endpoint,
    FixContext,
    FixReport,
    Plugin,
    Renewal,
    Webhook,
    WebhookContext,
    WebhookKeys,
    checks_named,
    lazy_parts,
)
from connectors.secrets import SecretRef
from connectors.zoho import webhook
from connectors.zoho.config import ZohoConfig

KIND = "zoho"
#: the connector's check line about the channel (connectors/zoho/connector.py)
CHANNEL_CHECK = "notifications"


class ZohoKeys(WebhookKeys):
    zoho_token: SecretRef | None = None
    zoho_channel_id: str | None = Field(default=None, pattern=r"^[0-9]{1,19}$")

    @field_validator("zoho_token")
    @classmethod
    def _zoho_token_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not 0 < len(value.get_secret_value()) <= webhook.MAX_TOKEN:
            raise ValueError(f"Zoho accepts a channel token of 1..{webhook.MAX_TOKEN} characters")
        return value


def _endpoint(keys: ZohoKeys, context: WebhookContext) -> Endpoint | None:
    token, channel = keys.zoho_token, keys.zoho_channel_id
    if token is None or not channel:
        return None
    return Endpoint(
        KIND,
        webhook.CONTENT_TYPES,
        context.max_json_bytes,
        lambda _h, body, _now: webhook.verify_and_parse(
            body, token=token, channel_id=channel, own_fields=context.own_fields
        ),
    )


def _channel(connector: Connector, keys: ZohoKeys, public_url: str | None) -> Renewal | str:
    """Register or renew the watch channel pointing at this receiver."""
    from connectors.zoho.connector import ZohoConnector  # loaded already: it built ``connector``

    if not isinstance(connector, ZohoConnector):
        return "this Zoho connector cannot register notification channels"
    token, channel = keys.zoho_token, keys.zoho_channel_id
    if not (public_url and channel and token):
        return "set [webhooks] public_url, zoho_channel_id and zoho_token"
    url = public_url.rstrip("/") + f"/webhooks/{KIND}"

    def renew() -> str:
        status = connector.ensure_channel(url, channel, token)
        expiry = f", expires {status.expiry:%Y-%m-%d %H:%M} UTC" if status.expiry else ""
        return f"notification channel {status.channel_id} {status.action}{expiry}"

    return renew


def _fix(context: FixContext) -> FixReport:
    """Register the channel when the checklist says it is missing or about to lapse."""
    lines = checks_named(context.checks, CHANNEL_CHECK)
    handled = frozenset(c.name for c in lines)
    if not any(not c.ok or c.severity == "warning" for c in lines):
        return FixReport(handled=handled)
    renewal = context.renewal
    if renewal is None or isinstance(renewal, str):
        why = renewal or "no channel to register"
        return FixReport(by_hand=[f"{why}, then rerun crmtier doctor --fix"], handled=handled)
    try:
        return FixReport(fixed=[renewal()], handled=handled)
    except (ConfigError, ConnectorError) as exc:
        return FixReport(by_hand=[str(exc)], handled=handled)


PLUGIN = Plugin(
    name=KIND,
    title="Zoho CRM",
    settings=ZohoConfig,
    **lazy_parts(KIND, "ZohoSandbox"),
    absent_id="999999999999999999",
    webhook=Webhook(ZohoKeys, webhook.RECORD_ID, _endpoint, _channel),
    fix=_fix,
    by_hand="fields and campaigns are created in Zoho CRM Setup > Modules and Fields",
)
