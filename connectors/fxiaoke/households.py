"""Households as FXiaoke (纷享销客) models them: contact (联系人, ``ContactObj``) rows under the
household's customer.

crmtier's FXiaoke customers are customers (客户, ``AccountObj``: ``default_mapping.toml``),
and FXiaoke's preset contact object (``ContactObj``, "联系人对象接口" in the FXiaoke Open API
docs) hangs each contact under one customer by its ``account_id`` reference (所属客户; the
field name is our best reading, as for ``CampaignMembersObj.account_id``). A household is
the primary member's customer; each member, the primary included, is a contact row under it
whose custom reference ``field_member_account__c`` names the member's own customer record
and whose ``field_household_role__c`` (单选: primary, spouse, partner, child, parent,
other_family, business) says how. A customer may be the member of several households (one
contact row under each); a contact without ``field_member_account__c`` is an ordinary
contact person, not a household member, and is not read.

Both reads use the object query API (``/cgi/crm/v2/data/query``, ``search_query_info``
filters AND-ed; the connector's ``query.py``): ``IN`` filters of at most 100 ids (the
page size, as ``fetch`` uses) and pages of 100 rows, continued by ``_id GT <last>`` (the
deep-paging FAQ's ``_id`` paging, developer.fxiaoke.com/openapi_v2/FAQ/deep-paging.html).
API calls per read: one per 100 customers (the households they are members of), then one
per 100 households plus one per further 100 members.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from connectors.fxiaoke.client import FxiaokeClient, data_path
from connectors.fxiaoke.query import ID, PAGE_LIMIT, Row, asc, flt, rows_of, search_query_info
from tiering_core.rules.household import Link

CONTACT = "ContactObj"
HOUSEHOLD_FIELD = "account_id"
MEMBER_FIELD = "field_member_account__c"
ROLE_FIELD = "field_household_role__c"
#: ``field_household_role__c`` options: crmtier's household roles themselves.
ROLES = ("primary", "spouse", "partner", "child", "parent", "other_family", "business")
_PROJECTION = [ID, HOUSEHOLD_FIELD, MEMBER_FIELD, ROLE_FIELD]


class HouseholdReader:
    """Reads the household links of customers, in bulk (``sync.households``'s
    ``MemberReader``)."""

    def __init__(self, client: FxiaokeClient) -> None:
        self.client = client

    def __call__(self, customers: Collection[str], households: Collection[str]) -> list[Link]:
        """Every link of each household that holds one of ``customers`` or is one of
        ``households``, all members included."""
        found = self._members(MEMBER_FIELD, customers)
        heads = {*households, *(_ref(r, HOUSEHOLD_FIELD) for r in found)} - {""}
        return _links(self._members(HOUSEHOLD_FIELD, heads))

    def _members(self, field: str, ids: Collection[str]) -> list[Row]:
        """Live member contacts whose ``field`` is one of ``ids``, every page."""
        rows: list[Row] = []
        wanted = sorted(ids)
        for start in range(0, len(wanted), PAGE_LIMIT):
            chunk = wanted[start : start + PAGE_LIMIT]
            after: str | None = None
            while True:
                filters = [
                    flt(field, "IN", *chunk),
                    flt(MEMBER_FIELD, "ISN"),
                    flt("life_status", "N", "invalid"),
                ]
                if after is not None:
                    filters.append(flt(ID, "GT", after))
                info = search_query_info(filters, [asc(ID)], _PROJECTION)
                data = {"dataObjectApiName": CONTACT, "search_query_info": info}
                page = rows_of(self.client.call(data_path(CONTACT, "query"), data))
                rows += page
                if len(page) < PAGE_LIMIT:
                    break
                after = str(page[-1][ID])
        return rows


def _ref(row: Row, field: str) -> str:
    """An object reference's id (FXiaoke returns the id; a list of one is taken too)."""
    value: Any = row.get(field)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value else ""


def _links(rows: Iterable[Row]) -> list[Link]:
    links: dict[tuple[str, str], Link] = {}
    for r in rows:
        member, household = _ref(r, MEMBER_FIELD), _ref(r, HOUSEHOLD_FIELD)
        if member and household:
            role = str(r.get(ROLE_FIELD) or "")
            links[(member, household)] = Link(member, household, role if role in ROLES else "other")
    return list(links.values())
