"""The Salesforce sandbox's field history tracking of the tier override fields: one
``AccountHistory`` row (``<Object>__History`` for a custom object) per field a user
changes, with the user as ``CreatedById`` and the time as ``CreatedDate``, queried with
SOQL like any object (docs/overrides.md; ``connectors/sandbox/override_trail.py`` edits as
a user and calls this)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.salesforce.override_audit import history_object
from connectors.sandbox.salesforce_wire import sf_datetime


def record_history(
    sandbox: Any, customer_id: str, fields: Mapping[str, Any], user: str, at: datetime
) -> None:
    sobject: str = sandbox.org.customer_object
    name, parent = history_object(sobject)
    rows = [
        (
            f"017{uuid.uuid4().int % 10**12:012d}AAA",
            at,
            {
                parent: customer_id,
                "Field": field,
                "OldValue": None,
                "NewValue": value,
                "CreatedById": user,
                "CreatedDate": sf_datetime(at.astimezone(UTC)),
                "IsDeleted": False,
            },
        )
        for field, value in fields.items()
    ]
    sandbox.store.insert_many(name, rows)
