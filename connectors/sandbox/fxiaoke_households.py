"""The FXiaoke sandbox's households: a contact (``ContactObj``) row per member of each
generated household, under the primary member's customer (``account_id``), naming the
member's own customer (``field_member_account__c``) and its role
(``field_household_role__c``); connectors/fxiaoke/households.py reads them. A member of two
households has a row under each."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from connectors.fxiaoke.households import CONTACT, HOUSEHOLD_FIELD, MEMBER_FIELD, ROLE_FIELD
from connectors.sandbox.households import SeedLink

__all__ = ["CONTACT", "contact_rows"]


def contact_rows(
    links: Iterable[SeedLink], customer_id: Callable[[int], str], stamp: datetime, now_ms: int
) -> Iterator[tuple[str, datetime, dict[str, Any]]]:
    """Store rows of the member contacts, ids ``K000000001``... in link order."""
    for number, link in enumerate(links, start=1):
        yield (
            f"K{number:09d}",
            stamp,
            {
                "name": f"{link.role} of {customer_id(link.household)}",
                HOUSEHOLD_FIELD: customer_id(link.household),
                MEMBER_FIELD: customer_id(link.member),
                ROLE_FIELD: link.role,
                "create_time": now_ms,
                "life_status": "normal",
                "record_type": "default__c",
                "version": 1,
            },
        )
