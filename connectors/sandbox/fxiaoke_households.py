"""The FXiaoke sandbox's households: a contact (``ContactObj``) row per member of each
generated household, under the primary member's customer (``account_id``), naming the
member's own customer (``field_member_account__c``) and its role
(``field_household_role__c``); connectors/fxiaoke/households.py reads them. A member of two
households has a row under each."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from connectors.fxiaoke.households import CONTACT, HOUSEHOLD_FIELD, MEMBER_FIELD, ROLE_FIELD
from connectors.sandbox.households import SeedLink

if TYPE_CHECKING:
    from connectors.sandbox.fxiaoke_schema import ObjectSpec

__all__ = ["CONTACT", "contact_rows", "without_household_fields"]


def without_household_fields(contact: ObjectSpec) -> ObjectSpec:
    """``ContactObj`` as a tenant has it before its admin adds the two custom fields:
    describe lists neither (``crmtier doctor`` and ``sync`` must say so)."""
    dropped = {MEMBER_FIELD, ROLE_FIELD}
    return replace(contact, fields={k: v for k, v in contact.fields.items() if k not in dropped})


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
