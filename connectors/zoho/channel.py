"""Zoho's change-notification channel (``/crm/v2/actions/watch``) for ``ZohoConnector``:
register or renew it (``serve`` and ``doctor --fix``), and doctor's check that it is alive.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import SecretStr

from connectors.contract import SchemaCheck
from connectors.errors import ConfigError
from connectors.zoho.client_values import ChannelInfo, RowResult

if TYPE_CHECKING:
    from connectors.zoho.connector import ZohoConnector

#: v2 channels live at most a day; ask for a little less so the request is never refused.
CHANNEL_LIFETIME = timedelta(days=1) - timedelta(minutes=5)
#: docs/targets.md W11: a channel expiring within this window is renewed. A v2 channel lives at most
#: a day, so ``serve``, which checks hourly, renews it on every check.
RENEW_BEFORE = timedelta(hours=24)
#: Doctor warns when a channel has less life left than this: it has missed two of serve's
#: hourly renewals (serve is not running, or Zoho refuses the renewal).
RENEWAL_OVERDUE = CHANNEL_LIFETIME - timedelta(hours=2)
#: The operations a ``{module}.all`` subscription covers ("Enable Notifications").
_ALL = ("create", "edit", "delete")


@dataclass(frozen=True)
class ChannelStatus:
    channel_id: str
    action: Literal["created", "renewed", "unchanged"]
    expiry: datetime | None


def ensure_channel(
    connector: ZohoConnector,
    notify_url: str,
    channel_id: str,
    token: str | SecretStr,
    *,
    now: datetime | None = None,
) -> ChannelStatus:
    """Register the change-notification channel, or renew it when it expires within
    24 h or its URL, events or token differ (W11). Called by ``serve`` on start and
    periodically, and by ``doctor --fix``."""
    now = now or datetime.now(UTC)
    if isinstance(token, SecretStr):
        token = token.get_secret_value()
    desired = ChannelInfo(
        channel_id=str(channel_id),
        events=(f"{connector.module}.all",),
        notify_url=notify_url,
        expiry=(now + CHANNEL_LIFETIME).replace(microsecond=0),
        token=token,
    )
    existing = next(
        (c for c in connector.client.channels() if c.channel_id == desired.channel_id), None
    )
    if existing is not None and not _needs_renewal(existing, desired, now):
        return ChannelStatus(desired.channel_id, "unchanged", existing.expiry)
    answers = connector.client.watch(desired, renew=existing is not None)
    failed = [a for a in answers if not a.ok]
    if failed or not answers:
        problem = failed[0] if failed else RowResult(False, "NO_ANSWER")
        raise ConfigError(
            f"Zoho refused notification channel {desired.channel_id}: {problem.code}"
            f"{' (' + problem.api_name + ')' if problem.api_name else ''}"
        )
    return ChannelStatus(
        desired.channel_id, "renewed" if existing is not None else "created", desired.expiry
    )


def _needs_renewal(existing: ChannelInfo, desired: ChannelInfo, now: datetime) -> bool:
    if existing.expiry is None or existing.expiry - now < RENEW_BEFORE:
        return True
    if existing.notify_url != desired.notify_url or _ops(existing.events) != _ops(desired.events):
        return True
    return not hmac.compare_digest((existing.token or "").encode(), (desired.token or "").encode())


def _ops(events: tuple[str, ...]) -> set[str]:
    """Events as the operations they cover: Zoho lists a ``{module}.all`` subscription as
    ``{module}.create``, ``.edit`` and ``.delete`` (v2 "Get Notification Details" sample),
    so a channel subscribed as asked must not look changed."""
    out: set[str] = set()
    for event in events:
        module, _, op = event.partition(".")
        out |= {f"{module}.{o}" for o in _ALL} if op == "all" else {event}
    return out


def check_channel(connector: ZohoConnector) -> SchemaCheck:
    now = datetime.now(UTC)
    mine = [
        c
        for c in connector.client.channels()
        if any(e.startswith(f"{connector.module}.") for e in c.events)
    ]
    if not mine:
        return SchemaCheck(
            "notifications: channel",
            False,
            f"no notification channel watches {connector.module}",
            fix="run crmtier doctor --fix or crmtier serve",
            severity="warning",
        )
    expiry = min((c.expiry for c in mine if c.expiry), default=None)
    if expiry is None:
        return SchemaCheck("notifications: channel", True, f"{len(mine)} channel(s) active")
    if expiry - now < RENEWAL_OVERDUE:
        return SchemaCheck(
            "notifications: channel",
            True,
            f"expires {expiry:%Y-%m-%d %H:%M} UTC and was not renewed in the last 2 hours",
            fix="keep crmtier serve running: it renews the channel hourly",
            severity="warning",
        )
    return SchemaCheck(
        "notifications: channel",
        True,
        f"{len(mine)} channel(s) active, expires {expiry:%Y-%m-%d %H:%M} UTC "
        "(crmtier serve renews hourly)",
    )
