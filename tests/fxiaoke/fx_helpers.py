"""Shared helpers of the FXiaoke connector tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from connectors.contract import FieldUpdate, WritePlan
from connectors.fxiaoke.connector import FxiaokeConnector
from connectors.sandbox.fxiaoke import FxiaokeSandbox
from connectors.sandbox.generator import customer_id
from connectors.sandbox.server import Request

MakeSandbox = Callable[..., FxiaokeSandbox]
Connect = Callable[..., FxiaokeConnector]
ReadIds = Callable[..., list[str]]
PII_FIELDS = {"name", "tel", "email", "field_national_id__c"}


def capture(sandbox: FxiaokeSandbox, kind: str) -> list[dict[str, Any]]:
    """Record the JSON bodies of every call of ``kind`` (a never-firing fault rule)."""
    bodies: list[dict[str, Any]] = []

    def seen(request: Request) -> bool:
        bodies.append(json.loads(request.body))
        return False

    sandbox.server.inject(kind, match=seen, times=None)
    return bodies


def updates(n: int, **fields: Any) -> WritePlan:
    values = fields or {"value_tier": "wealth"}
    return WritePlan(field_updates=tuple(FieldUpdate(customer_id(i), values) for i in range(n)))
