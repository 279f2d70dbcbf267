"""Households as Zoho CRM models them: customer Contacts under one Account.

crmtier's Zoho customers are Contacts (``default_mapping.toml``: ``object = "Contacts"``),
and a Contact's standard ``Account_Name`` lookup names the one Account it belongs to, so a
household is an Account and its members are the Contacts under it ("Contacts" module,
Zoho CRM v2 API "Modules API"). A Contact under a company Account is the company's staff,
not its family: members are the Contacts with a ``Household_Role`` (a custom picklist:
Primary, Spouse, Partner, Child, Parent, Family Member, Business), and only they are read.
A Contact has one Account, so in Zoho a customer sits in at most one household.

Both reads are COQL (``POST /crm/v2/coql``, Zoho CRM v2 "Get Records through COQL Query"),
under its v2 limits ("Query API - Limitations", zoho.com/crm/developer/docs/api/v2/
COQL-Limitations.html): ``in`` takes up to 50 values and a call returns at most 200
records, so ids go 50 to a query and a household query pages by ``limit 200 offset n``.
Ids go into the ``in`` list quoted, as Zoho's own COQL samples compare record ids
(``'What_Id->Leads.id' in ('4876876000000900134','4876678000000900987')``, Kaizen #81
"COQL API - Part II"); no page read shows them unquoted.
API calls per read: one per 50 customers (their Accounts), then one per 50 households
plus one per further 200 members (households are small: a 50-household query seldom
needs a second page).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any, Protocol

from connectors.zoho.client_values import ReadPage
from tiering_core.rules.household import Link

#: COQL v2: "in (up to 50 values)"; "a maximum of 200 records per API call".
IN_LIMIT = 50
ROW_LIMIT = 200
ACCOUNT_FIELD = "Account_Name"
ROLE_FIELD = "Household_Role"
#: ``Household_Role`` values -> crmtier's household roles (policy ``households.count_roles``).
ROLES = {
    "primary": "primary",
    "spouse": "spouse",
    "partner": "partner",
    "child": "child",
    "parent": "parent",
    "family member": "other_family",
    "business": "business",
}


class CoqlClient(Protocol):
    def query(self, select_query: str) -> ReadPage: ...


def _chunks(ids: Collection[str]) -> Iterator[list[str]]:
    """Numeric ids (no other id can exist in Zoho, and only digits go into a query) in
    sorted runs of ``IN_LIMIT``."""
    numeric = sorted(i for i in ids if str(i).isdigit())
    for start in range(0, len(numeric), IN_LIMIT):
        yield numeric[start : start + IN_LIMIT]


class HouseholdReader:
    """Reads the household links of customer Contacts, in bulk (``sync.households``'s
    ``MemberReader``)."""

    def __init__(self, client: CoqlClient, module: str = "Contacts") -> None:
        self.client = client
        self.module = module

    def __call__(self, customers: Collection[str], households: Collection[str]) -> list[Link]:
        """Every link of each household (Account) that holds one of ``customers`` or is
        one of ``households``, all members included."""
        accounts = {a for r in self._select("id", customers) if (a := _account(r))}
        rows = self._select(ACCOUNT_FIELD, accounts | set(households))
        links: dict[tuple[str, str], Link] = {}
        for r in rows:
            household = _account(r)
            if household is not None:
                links[(r["id"], household)] = Link(str(r["id"]), household, role_of(r))
        return list(links.values())

    def probe(self) -> None:
        """One COQL query of one member, shaped as the reads are: what Zoho refuses here
        (no ``ZohoCRM.coql.READ`` scope, no ``Household_Role``) it would refuse them."""
        self.client.query(
            f"select {ACCOUNT_FIELD}, {ROLE_FIELD} from {self.module} "  # noqa: S608
            f"where {ROLE_FIELD} is not null limit 1"
        )

    def _select(self, field: str, ids: Collection[str]) -> list[dict[str, Any]]:
        """Household members whose ``field`` is one of ``ids``, every page."""
        out: list[dict[str, Any]] = []
        for chunk in _chunks(ids):
            offset = 0
            while True:
                values = ", ".join(f"'{i}'" for i in chunk)
                where = f"({field} in ({values}) and {ROLE_FIELD} is not null)"
                page = self.client.query(  # ids are digits only (_chunks): nothing to escape
                    f"select {ACCOUNT_FIELD}, {ROLE_FIELD} from {self.module} where {where} "  # noqa: S608
                    f"limit {ROW_LIMIT} offset {offset}"
                )
                out += page.rows
                if not page.more:
                    break
                offset += ROW_LIMIT
        return out


def _account(row: dict[str, Any]) -> str | None:
    value = row.get(ACCOUNT_FIELD)
    account = value.get("id") if isinstance(value, dict) else value
    return str(account) if account else None


def role_of(row: dict[str, Any]) -> str:
    """crmtier's role for a member's ``Household_Role``; ``other`` (counted by no default
    policy) for a value it does not know."""
    return ROLES.get(str(row.get(ROLE_FIELD) or "").strip().lower(), "other")
