"""Plain Python at the zcrmsdk boundary: the values ``ZohoClient`` hands out (``RowResult``,
``ChannelInfo``, ``CurrentUser``, ``ReadPage``) and the conversions between them and
zcrmsdk's objects (``Record``, ``Choice``, ``User``, action responses). zcrmsdk types every
value by the field's metadata: a picklist value is a ``Choice``, a lookup a ``Record`` with
an id, a date a ``date``; answers come back the same way and leave here as plain values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from zcrmsdk.src.com.zoho.crm.api import record as sdk_record
from zcrmsdk.src.com.zoho.crm.api.users import User
from zcrmsdk.src.com.zoho.crm.api.util import Choice

from connectors.errors import TransientError


@dataclass(frozen=True)
class RowResult:
    """One record's outcome in a write call, in request order."""

    ok: bool
    code: str
    id: str | None = None
    api_name: str | None = None
    action: str | None = None


@dataclass(frozen=True)
class ChannelInfo:
    channel_id: str
    events: tuple[str, ...]
    notify_url: str
    expiry: datetime | None
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CurrentUser:
    """The profile and role of the user crmtier's token acts as (no name, no e-mail)."""

    profile: str
    role: str


@dataclass(frozen=True)
class ReadPage:
    rows: list[dict[str, Any]]
    more: bool


def choice_value(choice: Any) -> Any:
    return choice.get_value() if isinstance(choice, Choice) else choice


def _plain(value: Any) -> Any:
    if isinstance(value, Choice):
        return value.get_value()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, User):
        return {"id": str(value.get_id()), "name": value.get_name()}
    if isinstance(value, sdk_record.Record):
        return {"id": str(value.get_id())}
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return value


def plain_record(record: Any) -> dict[str, Any]:
    row = {key: _plain(value) for key, value in record.get_key_values().items()}
    row["id"] = str(record.get_id())
    return row


def _sdk_value(value: Any, data_type: str | None) -> Any:
    if value is None:
        return None
    if data_type == "picklist":
        return Choice(value)
    if data_type == "multiselectpicklist":
        return [Choice(v) for v in value]
    if data_type in ("ownerlookup", "userlookup"):
        user = User()
        user.set_id(int(value["id"]))
        return user
    if data_type == "lookup":
        target = sdk_record.Record()
        target.set_id(int(value["id"]))
        return target
    if data_type == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    return value


def sdk_record_of(row: Mapping[str, Any], types: Mapping[str, str]) -> Any:
    record = sdk_record.Record()
    for key, value in row.items():
        if key == "id":
            record.set_id(int(value))
        else:
            record.add_key_value(key, _sdk_value(value, types.get(key)))
    return record


def row_result(item: Any) -> RowResult:
    details = item.get_details() or {}
    rid = details.get("id")
    action = getattr(item, "get_action", lambda: None)()
    return RowResult(
        ok=choice_value(item.get_status()) == "success",
        code=str(choice_value(item.get_code())),
        id=None if rid is None else str(rid),
        api_name=details.get("api_name"),
        action=None if action is None else str(choice_value(action)),
    )


def row_results(wrapper: Any, expected: int) -> list[RowResult]:
    items = [] if wrapper is None else wrapper.get_data() or []
    results = [row_result(item) for item in items]
    if len(results) != expected:
        raise TransientError(f"Zoho answered {len(results)} results for {expected} records")
    return results


def channel_info(notification: Any) -> ChannelInfo:
    expiry = notification.get_channel_expiry()
    return ChannelInfo(
        channel_id=str(notification.get_channel_id()),
        events=tuple(notification.get_events() or ()),
        notify_url=str(notification.get_notify_url() or ""),
        expiry=expiry.astimezone(UTC) if isinstance(expiry, datetime) else None,
        token=notification.get_token(),
    )
