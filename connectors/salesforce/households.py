"""Households as Salesforce models them: Person Accounts related through
``AccountContactRelation``.

"The AccountContactRelation object supports person accounts ... A person account can also
be related to another person account as either a related contact or related account"
(Object Reference for the Salesforce Platform, "AccountContactRelation",
developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/
sforce_api_objects_accountcontactrelation.htm). A household is the primary member's Person
Account; each other member's Person Contact is related to it by an active relation whose
``Roles`` (a multi-select picklist) say how, in Financial Services Cloud's words "Client"
for the primary member and "the member's role relative to the primary household member's
role, such as Dependent or Spouse" ("Add Household Members and Relationships (Managed
Package)", help.salesforce.com). Financial Services Cloud's household accounts relate
their members by the same object ("How Financial Services Cloud Models Groups and
Relationships": "Account Contact Relation ... define each individual's role in the
household"), so an org whose households are group accounts is read the same way once those
accounts are left out of the customer read.

API calls: four queries per read, whatever the households' sizes (``IN`` lists chunked at
the connector's batch of 200): the page's Person Contacts, the relations that name them or
their accounts, every relation of the households found, and the Person Accounts of those
relations' contacts (a Person Contact's account is not on the relation).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from connectors.salesforce.batches import BATCH, chunks
from connectors.salesforce.client import SalesforceClient, select
from tiering_core.rules.household import Link

#: ``Roles`` values -> crmtier's household roles (policy ``households.count_roles``).
ROLES = {
    "client": "primary",
    "spouse": "spouse",
    "partner": "partner",
    "dependent": "child",
    "child": "child",
    "parent": "parent",
    "family member": "other_family",
    "business": "business",
}
RELATION = "AccountContactRelation"
RELATION_FIELDS = ("AccountId", "ContactId", "Roles")


def role_of(roles: Any) -> str:
    """crmtier's role for a relation's ``Roles`` (``a;b``): the first one it knows, else
    ``other`` (which no default policy counts)."""
    for value in str(roles or "").split(";"):
        role = ROLES.get(value.strip().lower())
        if role is not None:
            return role
    return "other"


class HouseholdReader:
    """Reads the household links of Person Accounts, in bulk (``sync.households``'s
    ``MemberReader``)."""

    def __init__(self, client: SalesforceClient) -> None:
        self.client = client

    def __call__(self, customers: Collection[str], households: Collection[str]) -> list[Link]:
        """Every link of each household that holds one of ``customers`` (as its primary
        Person Account or as a related member) or is one of ``households``, all members
        included. Four queries per 200 ids, whatever the households' sizes."""
        contacts = set(self._accounts("WHERE Id IN {}", customers))
        heads = {*customers, *households}
        found = self._relations("AccountId", heads) + self._relations("ContactId", contacts)
        wanted = {str(r["AccountId"]) for r in found}
        relations = self._relations("AccountId", wanted)
        account_of = self._accounts(
            "WHERE PersonContactId IN {}", {str(r["ContactId"]) for r in relations}
        )
        return _links(relations, account_of)

    def _relations(self, field: str, ids: Collection[str]) -> list[dict[str, Any]]:
        """Active relations whose ``field`` is one of ``ids``."""
        rows: list[dict[str, Any]] = []
        for chunk in chunks(sorted(ids), BATCH):
            query = select(
                list(RELATION_FIELDS),
                RELATION,
                f"WHERE IsActive = true AND {field} IN {{}}",
                list(chunk),
            )
            rows += self.client.query_all(query)
        return rows

    def _accounts(self, where: str, values: Collection[str]) -> dict[str, str]:
        """Person Account id by Person Contact id, for the accounts ``where`` selects."""
        out: dict[str, str] = {}
        for chunk in chunks(sorted(values), BATCH):
            query = select(["Id", "PersonContactId"], "Account", where, list(chunk))
            for r in self.client.query_all(query):
                if r.get("PersonContactId"):
                    out[str(r["PersonContactId"])] = str(r["Id"])
        return out


def _links(relations: Iterable[dict[str, Any]], account_of: dict[str, str]) -> list[Link]:
    """Links from relations: each related member, and each household's primary member
    (the Person Account the relations point at)."""
    links: dict[tuple[str, str], Link] = {}
    for r in relations:
        household = str(r["AccountId"])
        member = account_of.get(str(r["ContactId"]))
        if member is None or member == household:
            continue  # a business contact, or the account's own relation
        links[(member, household)] = Link(member, household, role_of(r.get("Roles")))
        links.setdefault((household, household), Link(household, household, "primary"))
    return list(links.values())
