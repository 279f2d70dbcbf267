"""Wire details of the Salesforce sandbox shared by its modules: the org's own ids, record
ids (an object's key prefix, then a zero-padded number) and the forms the org writes values
in (datetimes in JSON, multi-select picklists as ``a;b``).

Apart from ``salesforce_schema.py``, which describes the objects and fields: these are what
a record and a response look like, used by the routes, the seeding and the saves alike.
"""

from __future__ import annotations

import re
from typing import Any

ORG_ID = "00D000000000001AAA"
INTEGRATION_USER_ID = "005000000000001AAA"

PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "Task": "00T",
    "Campaign": "701",
    "CampaignMemberStatus": "01Y",
    "CampaignMember": "00v",
    "User": "005",
    "Group": "00G",
    "QueueSobject": "03g",
    "AccountContactRelation": "07k",
}
_ID = re.compile(r"[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?")


def make_id(obj: str, number: int) -> str:
    """An 18-character Salesforce-style id: key prefix, zero-padded number, suffix."""
    return f"{PREFIXES[obj]}{number:012d}AAA"


def id_number(rid: str) -> int:
    return int(rid[3:15])


def person_contact_id(account_id: str) -> str:
    """Person Accounts have a hidden Contact; here it shares the account's number."""
    return make_id("Contact", id_number(account_id))


def account_of_contact(contact_id: str) -> str:
    return make_id("Account", id_number(contact_id))


def is_valid_id(value: Any, obj: str | None = None) -> bool:
    if not isinstance(value, str) or _ID.fullmatch(value) is None:
        return False
    return obj is None or value.startswith(PREFIXES[obj])


def sf_datetime(ts: Any) -> str:
    """``2025-01-15T09:31:02.000+0000``: how Salesforce renders a datetime in JSON."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}+0000"


def to_sf_value(value: Any) -> Any:
    """Canonical sandbox data → how the org stores it (multi-select picklists as ``a;b``)."""
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    return value
