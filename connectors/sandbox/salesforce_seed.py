"""Seeding the Salesforce sandbox: the generator's customers as Account rows, their owners
as User rows.

``flattener`` is ``generator.to_crm_fields`` specialised once per mapping (a test holds the
two equal), so seeding a million customers stays cheap; owners become Salesforce User ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from connectors.sandbox.generator import (
    OWNER_NUMBERS,
    TEXT_IMPORTED_INPUTS,
    SyntheticCustomer,
    rm_capacity,
)
from connectors.sandbox.households import SeedLink
from connectors.sandbox.salesforce_schema import RM_CAPACITY_FIELD
from connectors.sandbox.salesforce_wire import (
    id_number,
    make_id,
    person_contact_id,
    sf_datetime,
    to_sf_value,
)


def flattener(fields: Mapping[str, str]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """``generator.to_crm_fields`` with the paths split once, values in Salesforce form:
    the same result (a test holds them equal), fast enough to seed a million customers."""
    paths = [(crm_field, tuple(path.split("."))) for path, crm_field in fields.items()]
    texts = {crm_field for path, crm_field in fields.items() if path in TEXT_IMPORTED_INPUTS}

    def flatten(profile: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for crm_field, parts in paths:
            node: Any = profile
            for part in parts:
                node = node.get(part) if type(node) is dict else None
            if crm_field in texts and type(node) in (int, float):
                node = str(node)  # a Text field holds the number as its text
            out[crm_field] = to_sf_value(node)
        return out

    return flatten


def account_row(
    rid: str,
    c: SyntheticCustomer,
    flatten: Callable[[Mapping[str, Any]], dict[str, Any]],
    fields: Mapping[str, str],
    owners: set[str],
) -> tuple[str, datetime, dict[str, Any]]:
    """Account ``rid`` (a Person Account unless corporate) for the generator's customer ``c``;
    its owner joins ``owners`` so seeding can add the Users."""
    person = c.profile.get("kind") != "corporate"
    data = flatten(c.profile)
    owner = c.profile.get("owner_id")
    if "owner_id" in fields:
        data[fields["owner_id"]] = user_id(owner)
    data.update(
        {
            "Name": c.pii["name"],
            "Phone": c.pii["phone"],
            "PersonEmail": c.pii["email"] if person else None,
            "National_ID__c": c.pii["national_id"],
            "IsPersonAccount": person,
            "PersonContactId": person_contact_id(rid) if person else None,
            "OwnerId": user_id(owner) or make_id("User", 1),
            "CreatedDate": sf_datetime(c.modstamp),
        }
    )
    owners.add(data["OwnerId"])
    return rid, c.modstamp, data


#: Generator owner ``U<n>`` is the Salesforce User numbered ``n + USER_NUMBER_BASE``.
USER_NUMBER_BASE = 100


def user_id(owner: Any) -> str | None:
    """Generator owner ids (``U00012``) as Salesforce User ids."""
    if not owner:
        return None
    text = str(owner)
    if text.startswith("U") and text[1:].isdigit():
        return make_id("User", int(text[1:]) + USER_NUMBER_BASE)
    return text


#: Generator roles as the ``Roles`` values of a household relation.
SF_ROLES = {
    "spouse": "Spouse",
    "partner": "Partner",
    "child": "Dependent",
    "parent": "Parent",
    "other_family": "Family Member",
    "business": "Business",
}


def relation_rows(
    links: Iterable[SeedLink], account_id: Callable[[int], str], stamp: datetime
) -> Iterator[tuple[str, datetime, dict[str, Any]]]:
    """``AccountContactRelation`` rows of the generated households: each member's Person
    Contact related to the primary member's Person Account (the household), with its role.
    The primary member is the account itself and needs no row."""
    for number, link in enumerate((lk for lk in links if lk.role != "primary"), start=1):
        yield (
            make_id("AccountContactRelation", number),
            stamp,
            {
                "AccountId": account_id(link.household),
                "ContactId": person_contact_id(account_id(link.member)),
                "Roles": SF_ROLES[link.role],
                "IsActive": True,
                "IsDirect": False,
            },
        )


def user_row(sf_user_id: str) -> dict[str, Any]:
    """A User; one made for a generator owner (``U00012``) is a relationship manager whose
    ``RM_Capacity__c`` holds the generator's capacity for them."""
    row: dict[str, Any] = {"Name": f"User {sf_user_id[-6:-3]}", "IsActive": True}
    number = id_number(sf_user_id) - USER_NUMBER_BASE
    if number in OWNER_NUMBERS:
        row[RM_CAPACITY_FIELD] = float(rm_capacity(number))
    return row


#: Each sandbox campaign's member statuses, (Label, IsDefault): the values its
#: CampaignMember.Status takes here (``salesforce_schema.py``'s picklist).
MEMBER_STATUSES = (("Sent", True), ("Responded", False))


def member_statuses(
    campaign_id: str, n: int, stamp: datetime
) -> list[tuple[str, datetime, dict[str, Any]]]:
    """The ``CampaignMemberStatus`` rows of the ``n``th campaign, ready to insert."""
    return [
        (
            make_id("CampaignMemberStatus", len(MEMBER_STATUSES) * n + i + 1),
            stamp,
            {"CampaignId": campaign_id, "Label": label, "IsDefault": default},
        )
        for i, (label, default) in enumerate(MEMBER_STATUSES)
    ]
