"""Advisor coverage on Salesforce (issue 21 §2): the relationship managers' capacities
from their User records, and the opt-in owner changes.

A bank keeps each RM's capacity in a custom field on ``User`` (the User sObject takes
custom fields like any other: "Create Custom Fields", Salesforce Help), named in
crmtier.toml ``[coverage] capacity_field``. Only users whose field holds a value are RMs,
so the integration user and other staff never enter the roster; one SOQL query (paged by
``query_all``) reads them. Owner changes set the customer's ``OwnerId`` (no field-level
security applies to it; the integration user needs Transfer Record) through sObject
Collections of ≤ 200, where Salesforce checks per record that the new owner is an active
User.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from connectors.contract import OwnerChange, WriteResult
from connectors.errors import ConfigError
from connectors.mapping import FieldMapping
from connectors.salesforce.batches import chunks, result_of
from connectors.salesforce.client import SalesforceClient, select

#: A field API name SOQL takes as it is (custom: ``RM_Capacity__c``).
_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def read_users(client: SalesforceClient, capacity_field: str) -> list[dict[str, Any]]:
    """``{"id", "active", "capacity"}`` of every User whose ``capacity_field`` is set."""
    if not _FIELD.match(capacity_field):
        raise ConfigError(f"[coverage] capacity_field: {capacity_field!r} is not a field name")
    # the field name is checked above; no value is pasted into the query
    rows = client.query_all(
        select(("Id", "IsActive", capacity_field), "User", f"WHERE {capacity_field} != null")
    )
    return [
        {"id": r["Id"], "active": bool(r.get("IsActive")), "capacity": r.get(capacity_field)}
        for r in rows
    ]


def change_owners(
    client: SalesforceClient, mapping: FieldMapping, changes: Sequence[OwnerChange]
) -> list[WriteResult]:
    """The customers' owner field (``OwnerId``, or the mapped ``owner_id``) set in
    collections of ≤ 200; one result per change, keyed by customer id."""
    owner_field = mapping.fields.get("owner_id", "OwnerId")
    results: list[WriteResult] = []
    for chunk in chunks(changes):
        records = [
            {"attributes": {"type": mapping.object}, "id": c.customer_id, owner_field: c.owner_id}
            for c in chunk
        ]
        saved = client.collection(
            "PATCH", "composite/sobjects", {"allOrNone": False, "records": records}
        )
        results += [
            result_of("field_update", c.customer_id, r, mapping.object)
            for c, r in zip(chunk, saved, strict=True)
        ]
    return results
