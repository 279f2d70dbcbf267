"""The test-only fourth CRM as a connector plugin (connectors/plugin.py): everything crmtier
needs of it is here, registered by one entry-point line (``../memory_dist``), with no change
to product code. It passes the connector contract suite and serves webhooks through
``webhooks/app.py`` like the built-in CRMs (tests/contract/test_memory_plugin.py)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import SecretStr, field_validator

from connectors.contract import Connector
from connectors.mapping import DefaultMapping, FieldMapping, WritebackConfig
from connectors.plugin import Endpoint, Plugin, Webhook, WebhookContext, WebhookKeys
from connectors.secrets import SecretRef
from connectors.settings import load_crm_settings
from connectors.webhook_events import ChangeEvent
from tests.contract.memory_plugin import webhook
from tests.contract.memory_plugin.connector import MemoryConnector, MemorySettings
from tests.contract.memory_plugin.sandbox import MemorySandbox


class MemoryKeys(WebhookKeys):
    memory_secret: SecretRef | None = None

    @field_validator("memory_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("memory_secret must be at least 16 characters")
        return value


def default_mapping() -> DefaultMapping:
    text = resources.files(__package__).joinpath("default_mapping.toml").read_text("utf-8")
    return DefaultMapping.model_validate(tomllib.loads(text))


def _connector(
    crm: Mapping[str, Any], mapping: FieldMapping, writeback: WritebackConfig
) -> Connector:
    return MemoryConnector(load_crm_settings(MemorySettings, crm), mapping, writeback)


def _sandbox(*, data_dir: Path, **options: Any) -> MemorySandbox:
    return MemorySandbox(data_dir=data_dir, mapping=default_mapping(), **options)


def _endpoint(keys: MemoryKeys, context: WebhookContext) -> Endpoint | None:
    if keys.memory_secret is None:
        return None
    secret = keys.memory_secret.get_secret_value().encode("utf-8")
    window = context.replay_window_s

    def verify(headers: Mapping[str, str], body: bytes, now: float) -> list[ChangeEvent]:
        return webhook.verify(headers, body, secret=secret, now=now, window=window)

    return Endpoint(webhook.KIND, webhook.CONTENT_TYPES, context.max_json_bytes, verify)


PLUGIN = Plugin(
    name=webhook.KIND,
    title="In-memory test CRM",
    settings=MemorySettings,
    connector=_connector,
    default_mapping=default_mapping,
    sandbox=_sandbox,
    absent_id="C999999999",
    webhook=Webhook(MemoryKeys, webhook.RECORD_ID, _endpoint),
    by_hand="fields are added to the book's schema in tests/contract/memory_plugin",
)
