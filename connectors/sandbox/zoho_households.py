"""The Zoho sandbox's households: an Account per generated household, its members the
customer Contacts whose ``Account_Name`` names it, each with a ``Household_Role``
(connectors/zoho/households.py reads them); and the COQL route they are read through.

A Contact has one Account, so a generated member of two households (a parent also in a
grown child's household) stays in its first: the second link is what Zoho cannot hold.

COQL (``POST /crm/v2/coql``) answers the subset crmtier sends, under v2's limits ("Query
API - Limitations", zoho.com/crm/developer/docs/api/v2/COQL-Limitations.html): ``select
<fields> from <module> where (<criteria joined by and>) limit <n> offset <m>``, criteria
``<field> in (<up to 50 values>)``, ``<field> is not null`` and ``<field> = <value>``, at
most 200 records a call, ordered by record id (the documented default).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from connectors.sandbox.households import SeedLink
from connectors.sandbox.server import Request, Response
from connectors.sandbox.store import RecordStore
from connectors.sandbox.zoho_auth import zoho_error
from connectors.sandbox.zoho_schema import CUSTOMER_MODULE, MODULES
from connectors.sandbox.zoho_scopes import coql_module_refusal
from connectors.sandbox.zoho_wire import ID_BASE, request_body

if TYPE_CHECKING:
    from connectors.sandbox.zoho_api import ZohoApi

ACCOUNTS = "Accounts"
IN_LIMIT = 50
ROW_LIMIT = 200
#: Generator roles as ``Household_Role`` values.
ZOHO_ROLES = {
    "primary": "Primary",
    "spouse": "Spouse",
    "partner": "Partner",
    "child": "Child",
    "parent": "Parent",
    "other_family": "Family Member",
    "business": "Business",
}
_QUERY = re.compile(
    r"^\s*select\s+(?P<fields>[\w\s,.]+?)\s+from\s+(?P<module>\w+)"
    r"(?:\s+where\s+(?P<where>.+?))?"
    r"(?:\s+limit\s+(?P<limit>\d+)(?:\s+offset\s+(?P<offset>\d+))?)?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_CRITERION = re.compile(
    r"^(?P<field>\w+)\s+(?:(?P<null>is\s+not\s+null)|in\s*\((?P<values>[^)]*)\)|=\s*(?P<value>\S+))$",
    re.IGNORECASE,
)


def household_account_id(household: int) -> str:
    """The Account id of the household whose primary member is generated customer
    ``household``."""
    return str(ID_BASE + 3_000_000 + household)


def seed_households(
    store: RecordStore, links: Iterable[SeedLink], contact_id: Any, name: Any
) -> None:
    """Accounts for the generated households, and each member Contact's ``Account_Name``
    and ``Household_Role`` (its modstamp kept: seeding is not an edit)."""
    placed: set[int] = set()
    accounts: dict[int, str] = {}
    with store.transaction():
        for link in links:
            if link.member in placed:
                continue  # a Contact has one Account
            placed.add(link.member)
            rid = contact_id(link.member)
            found = store.get(CUSTOMER_MODULE, rid)
            if found is None:
                continue
            if link.household not in accounts:
                accounts[link.household] = f"{name(found[1])} Household"
            account = {"id": household_account_id(link.household), "name": accounts[link.household]}
            fields = {"Account_Name": account, "Household_Role": ZOHO_ROLES[link.role]}
            store.update(CUSTOMER_MODULE, rid, fields, modstamp=found[0])
        stamp = store.clock()
        store.insert_many(
            ACCOUNTS,
            ((household_account_id(h), stamp, {"Account_Name": n}) for h, n in accounts.items()),
        )


def coql(api: ZohoApi, request: Request) -> Response:
    """``POST /crm/v2/coql``: the select query in ``select_query``."""
    try:
        text = str(request_body(request).get("select_query") or "")
    except ValueError:
        return zoho_error("INVALID_DATA", "body is not JSON", 400)
    match = _QUERY.match(text)
    if match is None or match["module"] not in MODULES:
        return zoho_error("SYNTAX_ERROR", "error occurred while parsing the query", 400)
    refused = coql_module_refusal(match["module"], api.scopes)
    if refused is not None:
        return refused
    limit = int(match["limit"] or ROW_LIMIT)
    if limit > ROW_LIMIT:
        return zoho_error("LIMIT_EXCEEDED", "limit exceeded", 400, limit=ROW_LIMIT)
    criteria = _criteria(match["where"] or "")
    if criteria is None:
        return zoho_error("SYNTAX_ERROR", "error occurred while parsing the where clause", 400)
    if any(len(values) > IN_LIMIT for _, values in criteria if values is not None):
        return zoho_error("LIMIT_EXCEEDED", "more than 50 values in an in clause", 400)
    fields = {f.strip() for f in match["fields"].split(",")}
    module = match["module"]
    rows = sorted(
        (
            (rid, stamp, data)
            for rid, stamp, data in api.store.scan(module)
            if _keep(data, rid, criteria)
        ),
        key=lambda r: int(r[0]),
    )
    offset = int(match["offset"] or 0)
    chunk = rows[offset : offset + limit]
    if not chunk:
        return Response(204)
    data = [api.render(module, rid, st, d, fields | {"id"}) for rid, st, d in chunk]
    more = len(rows) > offset + limit
    return Response.json({"data": data, "info": {"count": len(data), "more_records": more}})


def _criteria(where: str) -> list[tuple[str, set[str] | None]] | None:
    """``(field, values)`` per criterion (``values`` None: is not null), None if any is
    outside the subset, or if more than two criteria are not bracketed in pairs: "If WHERE
    has more than two criteria such as A, B, and C, use them as (A and (B and C)) or ((A and
    B) and C)" ("Query API - Limitations", v2), so ``A and B and C`` is a syntax error."""
    groups = re.sub(r"\bin\s*\([^)]*\)", "in", where, flags=re.IGNORECASE).count("(")
    out: list[tuple[str, set[str] | None]] = []
    for part in re.split(r"\s+and\s+", where, flags=re.IGNORECASE):
        text = part.strip()
        while text.startswith("(") and text.count("(") > text.count(")"):
            text = text[1:].strip()  # the brackets around the criteria
        while text.endswith(")") and text.count(")") > text.count("("):
            text = text[:-1].strip()
        m = _CRITERION.match(text)
        if m is None:
            return None
        raw = m["values"] if m["values"] is not None else m["value"]
        values = None if m["null"] else {v.strip().strip("'\"") for v in raw.split(",")}
        out.append((m["field"], values))
    return out if len(out) <= 2 or groups >= len(out) - 1 else None


def _keep(data: dict[str, Any], rid: str, criteria: list[tuple[str, set[str] | None]]) -> bool:
    for field, values in criteria:
        value = rid if field == "id" else data.get(field)
        if isinstance(value, dict):
            value = value.get("id")
        if value in (None, "") or (values is not None and str(value) not in values):
            return False
    return True
