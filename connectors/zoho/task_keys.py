"""Finding crmtier's Tasks in Zoho by their keys: what task writes (``writes.py``) and task
closures (``closures.py``) share.

crmtier keeps each task's dedupe key in a unique text field of Tasks (``crm.task_key_field``)
and finds Tasks by it with COQL (``POST /crm/v2/coql``, "Get Records through COQL Query"),
``KEYS_PER_QUERY`` keys a query: Zoho has no upsert for Tasks ("Insert or Update Records
(Upsert)" lists no activity module), so every write of a task starts with this look-up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from connectors.errors import ConfigError

if TYPE_CHECKING:
    from connectors.zoho.connector import ZohoConnector

TASK_MODULE = "Tasks"
#: Keys a task look-up puts in one COQL ``in``: "in (up to 50 values)" (Zoho CRM v2,
#: "Query API - Limitations").
KEYS_PER_QUERY = 50
#: What a key must be to go into a COQL text literal as is (crmtier's keys are hex digests).
QUOTABLE = re.compile(r"[\w:.-]+")


@dataclass(frozen=True)
class HeldTask:
    """A Task the CRM holds under one of crmtier's keys."""

    id: str
    status: str


def task_key_field(connector: ZohoConnector) -> str:
    """``crm.task_key_field``, once the Tasks field metadata shows the field exists."""
    key_field = connector.config.task_key_field
    if key_field not in connector.schema(TASK_MODULE):
        raise ConfigError(
            f"crm.task_key_field: Zoho Tasks has no field {key_field!r}; create a unique "
            "single-line field for crmtier's task keys (see crmtier doctor)"
        )
    return key_field


def look_up(connector: ZohoConnector, key_field: str, keys: Sequence[str]) -> dict[str, HeldTask]:
    """The Tasks held under these (``QUOTABLE``) keys, by key, ``KEYS_PER_QUERY`` a query.
    The key field is unique, so a query answers at most one row a key, within a page."""
    found: dict[str, HeldTask] = {}
    for start in range(0, len(keys), KEYS_PER_QUERY):
        values = ", ".join(f"'{k}'" for k in keys[start : start + KEYS_PER_QUERY])
        page = connector.client.query(  # keys are QUOTABLE: nothing to escape
            f"select {key_field}, Status from {TASK_MODULE} "  # noqa: S608
            f"where {key_field} in ({values}) limit {KEYS_PER_QUERY}"
        )
        found.update(
            (str(row[key_field]), HeldTask(str(row["id"]), str(row.get("Status") or "")))
            for row in page.rows
            if row.get(key_field)
        )
    return found
