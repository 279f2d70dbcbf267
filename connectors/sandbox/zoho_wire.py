"""Wire details of the Zoho sandbox shared by its route modules: the org's time format
(second resolution, the org's UTC offset), per-record error entries, and request bodies as
zcrmsdk sends them (JSON without a Content-Type).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from connectors.sandbox.server import Request

ORG_TZ = timezone(timedelta(hours=8))  # a bank in China: Zoho renders times in org time
ID_BASE = 5725767000000000000  # Zoho ids: 19 digits


def format_time(ts: datetime) -> str:
    """Zoho date-time: second resolution, org offset (``2026-01-01T08:00:13+08:00``)."""
    return ts.astimezone(ORG_TZ).replace(microsecond=0).isoformat()


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def record_error(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"code": code, "details": details, "message": message, "status": "error"}


def request_body(request: Request) -> dict[str, Any]:
    """zcrmsdk sends JSON bodies without a Content-Type: parse regardless."""
    parsed = json.loads(request.body or b"{}")
    if not isinstance(parsed, dict):
        raise ValueError("body is not an object")
    return parsed
