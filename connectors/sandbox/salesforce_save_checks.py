"""The sandbox org's checks of one record before it is saved: each field exists and the
integration user may write it, its value has the field's type, a reference points at a
record that exists, an owner can own the record, and a campaign member is new and points at
one customer. A failed check is a ``SaveError`` with Salesforce's status code.

Apart from ``salesforce_saves.py``, which plans and applies the saves (``allOrNone``,
locked rows, modstamps) and runs these checks on every record it plans.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.sandbox.salesforce_index import SaveIndex
from connectors.sandbox.salesforce_specs import ObjectSpec
from connectors.sandbox.salesforce_wire import PREFIXES, account_of_contact
from connectors.sandbox.store import RecordStore


@dataclass(frozen=True)
class SaveError:
    status_code: str
    message: str
    fields: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "statusCode": self.status_code,
            "message": self.message,
            "fields": list(self.fields),
        }


class SaveChecks:
    """The record checks, on the org state ``SalesforceOrg`` sets up in its ``__init__``."""

    store: RecordStore
    customer_object: str
    accounts_as_members: bool
    index: SaveIndex

    def _check_fields(
        self, spec: ObjectSpec, fields: Mapping[str, Any], *, updating: bool
    ) -> SaveError | None:
        for name, value in fields.items():
            f = spec.fields.get(name)
            if f is None:
                return SaveError(
                    "INVALID_FIELD",
                    f"No such column '{name}' on sobject of type {spec.name}",
                    (name,),
                )
            if not (f.updateable if updating else f.createable):
                return SaveError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    (name,),
                )
            problem = f.check(value)
            if problem is not None:
                return SaveError(problem[0], problem[1], (name,))
            if self._dangling(f.type, value):
                return SaveError(
                    "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {value}", (name,)
                )
            if name == "OwnerId" and value:
                error = self._owner_error(spec.name, str(value))
                if error is not None:
                    return error
        return None

    def _owner_error(self, obj: str, owner: str) -> SaveError | None:
        """An owner must be an active User, or a queue that accepts ``obj``. Codes: an
        inactive owner is ``INACTIVE_OWNER_OR_USER`` ("The user or record owner is not
        active", StatusCode in the SOAP API Developer Guide, "Core Data Types Used in API
        Calls"); a queue without ``obj`` among its QueueSobject types answers as users
        report it for a Task, ``FIELD_INTEGRITY_EXCEPTION`` "Assigned To ID: id value of
        incorrect type" (github.com/salesforcelabs/actionplansv4/issues/51; the message
        text is the sandbox's reading)."""
        wrong_type = SaveError(
            "FIELD_INTEGRITY_EXCEPTION",
            f"Assigned To ID: id value of incorrect type: {owner}",
            ("OwnerId",),
        )
        if owner.startswith(PREFIXES["User"]):
            user = self.store.get("User", owner)
            if user is None:
                return SaveError(
                    "INVALID_CROSS_REFERENCE_KEY",
                    f"invalid cross reference id: {owner}",
                    ("OwnerId",),
                )
            if not user[1].get("IsActive"):
                return SaveError(
                    "INACTIVE_OWNER_OR_USER",
                    f"operation performed with inactive user [{owner}] as owner of {obj.lower()}",
                    ("OwnerId",),
                )
            return None
        if not owner.startswith(PREFIXES["Group"]):
            return wrong_type
        group = self.store.get("Group", owner)
        if group is None or group[1].get("Type") != "Queue":
            return SaveError(
                "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {owner}", ("OwnerId",)
            )
        accepts = {
            data.get("SobjectType")
            for _, _, data in self.store.scan("QueueSobject")
            if data.get("QueueId") == owner
        }
        return None if obj in accepts else wrong_type

    def _dangling(self, field_type: str, value: Any) -> bool:
        """A reference to a customer that does not exist (users and queues are not kept)."""
        return (
            field_type == "reference"
            and isinstance(value, str)
            and value.startswith(PREFIXES.get(self.customer_object, "\0"))
            and not self.store.exists(self.customer_object, value)
        )

    def _check_member(
        self, fields: Mapping[str, Any], claimed: set[tuple[str, str]]
    ) -> SaveError | None:
        campaign = fields.get("CampaignId")
        if not campaign or not self.store.exists("Campaign", str(campaign)):
            return SaveError(
                "REQUIRED_FIELD_MISSING" if not campaign else "INVALID_CROSS_REFERENCE_KEY",
                "Required fields are missing: [CampaignId]"
                if not campaign
                else f"invalid cross reference id: {campaign}",
                ("CampaignId",),
            )
        refs = [f for f in ("ContactId", "LeadId", "AccountId") if fields.get(f)]
        if len(refs) != 1:
            return SaveError(
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: exactly one of ContactId, LeadId"
                + (", AccountId" if self.accounts_as_members else ""),
            )
        member = str(fields[refs[0]])
        owner = _member_account(refs[0], member)
        account = None if owner is None else self.store.get(self.customer_object, owner)
        if owner is not None and (
            account is None or (refs[0] == "ContactId" and not account[1].get("IsPersonAccount"))
        ):
            return SaveError(
                "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {member}", (refs[0],)
            )
        pair = (str(campaign), member)
        if pair in self.index.pairs or ("pair", f"{pair}") in claimed:
            return SaveError("DUPLICATE_VALUE", "Already a campaign member.")
        claimed.add(("pair", f"{pair}"))
        return None


def _member_account(ref_field: str, member: str) -> str | None:
    """The customer (Account) a member reference points at, when it is one."""
    if ref_field == "AccountId":
        return member
    if ref_field == "ContactId":
        return account_of_contact(member)
    return None
