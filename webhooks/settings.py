"""The ``[webhooks]`` section of crmtier.toml, validated.

```toml
[webhooks]
listen = "127.0.0.1:8080"
secrets = ["env:CRMTIER_WEBHOOK_SECRET",                          # Standard Webhooks keys
           { ref = "env:CRMTIER_WEBHOOK_SECRET_OLD", not_after = "2026-12-01T00:00:00Z" }]
salesforce_org_id = "00D5g000004ABCDEAZ"
zoho_token = "env:CRMTIER_ZOHO_TOKEN"
zoho_channel_id = "1000000068001"
fxiaoke_secret = "env:CRMTIER_FXIAOKE_SECRET"
replay_window_seconds = 300
```

Secrets are ``env:``/``file:`` references (literals refused, docs/targets.md S1). Rotation (W14):
list the new and the old Standard Webhooks secret together; an entry with ``not_after`` stops being
accepted at that instant, so the grace period ends without a redeploy. A route whose verification
values are not configured answers 404, so an unconfigured CRM cannot be used to fill the inbox.

Each CRM's verification keys (``salesforce_org_id`` above, ...) belong to its connector
plugin (``connectors/<crm>/plugin.py``): ``load_webhooks`` validates the table against
``WebhooksSettings`` merged with every registered plugin's keys, so a key is checked by the
CRM that uses it and a new CRM adds its keys without a change here.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.errors import ConfigError
from connectors.plugin import WebhookContext, WebhookKeys
from connectors.registry import plugins
from connectors.secrets import SecretRef
from webhooks.standard_webhooks import decode_secret


class RotatingSecret(BaseModel):
    """A Standard Webhooks secret that expires at ``not_after`` (end of a rotation)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    ref: SecretRef
    not_after: AwareDatetime | None = None

    @field_validator("ref")
    @classmethod
    def _whsec(cls, value: SecretStr) -> SecretStr:
        decode_secret(value.get_secret_value())
        return value

    def key(self) -> bytes:
        return decode_secret(self.ref.get_secret_value())

    def active(self, now: datetime) -> bool:
        return self.not_after is None or now < self.not_after


def _as_rotating(value: object) -> object:
    return {"ref": value} if isinstance(value, str | SecretStr) else value


class WebhooksSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    listen: str = "127.0.0.1:8080"
    #: the receiver's address as the CRM reaches it (behind the TLS proxy); needed where
    #: crmtier registers the callback itself (Zoho watch channels)
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/\S*)?$")
    secrets: tuple[RotatingSecret, ...] = ()
    replay_window_seconds: int = Field(default=300, ge=1, le=300)
    max_json_bytes: int = Field(default=256 * 1024, ge=1024, le=1024 * 1024)
    max_soap_bytes: int = Field(default=1024 * 1024, ge=64 * 1024, le=4 * 1024 * 1024)
    body_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    #: a connection must deliver a request's complete headers this soon after opening
    #: (or after its previous response); slowloris clients are closed (webhooks/connections)
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    #: an idle keep-alive connection is closed after this long (set the proxy's upstream
    #: keep-alive timeout below it)
    keep_alive_seconds: int = Field(default=5, ge=1, le=300)
    #: open connections at most; at the limit the longest-idle one is closed for a newcomer
    max_connections: int = Field(default=512, ge=8, le=65536)
    dedupe_days: int = Field(default=7, ge=7, le=90)
    batch_size: int = Field(default=200, ge=1, le=2000)
    batch_window_ms: int = Field(default=200, ge=0, le=10_000)
    max_attempts: int = Field(default=8, ge=1, le=100)
    #: how long a worker's claim on a batch of events lasts; a worker that dies mid-batch
    #: (SIGKILL) holds its events this long, then any worker takes them again. It must
    #: exceed the longest batch (a fetch and the writes of ``batch_size`` customers), or a
    #: slow batch is taken twice
    claim_lease_seconds: int = Field(default=300, ge=1, le=3600)

    @field_validator("secrets", mode="before")
    @classmethod
    def _entries(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            return [_as_rotating(item) for item in value]
        return value

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("listen must be HOST:PORT, e.g. 127.0.0.1:8080")
        return value

    def context(self, own_fields: frozenset[str] = frozenset()) -> WebhookContext:
        """What every CRM's endpoint may need of this table (``connectors/plugin.py``)."""
        return WebhookContext(
            self.replay_window_seconds, self.max_json_bytes, self.max_soap_bytes, own_fields
        )

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


def settings_model() -> type[WebhooksSettings]:
    """``WebhooksSettings`` with every registered CRM's keys: one flat table, each key
    validated by the plugin that declares it."""
    return _merged(tuple(p.webhook.keys for p in plugins().values() if p.webhook is not None))


def load_webhooks(table: Mapping[str, Any]) -> WebhooksSettings:
    """The ``[webhooks]`` table, validated (raises pydantic's ``ValidationError``, whose
    locations are the table's keys)."""
    return settings_model().model_validate(dict(table))


@functools.cache
def _merged(keys: tuple[type[WebhookKeys], ...]) -> type[WebhooksSettings]:
    owner: dict[str, str] = {name: "[webhooks]" for name in WebhooksSettings.model_fields}
    for model in keys:
        for name in model.model_fields:
            if name in owner:
                raise ConfigError(
                    f"[webhooks] {name}: declared by both {owner[name]} and {model.__name__}"
                )
            owner[name] = model.__name__
    merged: type[WebhooksSettings] = types.new_class(
        "WebhooksSettings",
        (WebhooksSettings, *keys),
        exec_body=lambda ns: ns.update(__module__=__name__, __qualname__="WebhooksSettings"),
    )
    return merged
