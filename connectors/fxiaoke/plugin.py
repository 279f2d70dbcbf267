"""FXiaoke (纷享销客) as a connector plugin: what the rest of crmtier knows of it
(connectors/plugin.py).

Change notifications come from a workflow function the admin adds (docs/fxiaoke-apl.md),
signed with HMAC-SHA256 under ``[webhooks] fxiaoke_secret`` and checked against the replay
window (connectors/fxiaoke/webhook.py); the receiver answers ``success``. Nothing is
created through the API, so ``doctor --fix`` leaves the set-up to the admin console.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr, field_validator

from connectors.fxiaoke import webhook
from connectors.fxiaoke.config import FxiaokeConfig
from connectors.plugin import (
    Ack,
    DemoLimit,
    Endpoint,
    Plugin,
    Webhook,
    WebhookContext,
    WebhookKeys,
    lazy_parts,
)
from connectors.secrets import SecretRef
from connectors.webhook_events import ChangeEvent

KIND = "fxiaoke"
MIN_SECRET = 16
#: FXiaoke's per-endpoint pace (connectors/fxiaoke/ratelimit.py), as the demo explains it
RATE = "100 calls per 20 s"


class FxiaokeKeys(WebhookKeys):
    fxiaoke_secret: SecretRef | None = None

    @field_validator("fxiaoke_secret")
    @classmethod
    def _fxiaoke_secret_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET:
            raise ValueError(f"fxiaoke_secret must be at least {MIN_SECRET} characters")
        return value


def _success(_: int) -> Ack:
    return Ack(b"success", "text/plain; charset=utf-8")


def _endpoint(keys: FxiaokeKeys, context: WebhookContext) -> Endpoint | None:
    secret = keys.fxiaoke_secret
    if secret is None:
        return None
    window = context.replay_window_s

    def verify(headers: Mapping[str, str], body: bytes, now: float) -> list[ChangeEvent]:
        webhook.verify(headers, body, secret=secret, now_s=now, window_s=window)
        return webhook.parse(body)

    return Endpoint(KIND, webhook.CONTENT_TYPES, context.max_json_bytes, verify, _success)


PLUGIN = Plugin(
    name=KIND,
    title="FXiaoke",
    settings=FxiaokeConfig,
    **lazy_parts(KIND, "FxiaokeSandbox"),
    absent_id="ffffffffffffffffffffffff",
    webhook=Webhook(FxiaokeKeys, webhook.RECORD_ID, _endpoint),
    by_hand="custom fields, the follow-up object and the workflow function (docs/"
    "fxiaoke-apl.md) are created in the FXiaoke admin console",
    demo_limit=DemoLimit(
        200,
        f"FXiaoke writes one record per call, at most {RATE} per endpoint, as the real API allows",
    ),
)
