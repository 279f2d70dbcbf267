"""``GET /crm/v2/users`` in the Zoho sandbox: the integration user crmtier acts as
(``type=CurrentUser``) and the org's users (``ActiveUsers``, ``AllUsers``), paged like the
v2 Users API (``page``, ``per_page`` ≤ 200, ``info.more_records``).

The org's users are the integration user, the placeholder owner of unassigned customers,
and the relationship managers the generator names as owners (``U00001`` .. ``U00039``),
each with the custom user field ``RM_Capacity`` (private-equivalent clients) holding the
generator's capacity for them; custom user fields come back among the user's keys, as in
the v2 sample answer (``Single_Line_1``, ``Currency_1``: Zoho CRM API v2, "Get Users").
Nothing personal: names are the user's number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.sandbox.generator import OWNER_NUMBERS, rm_capacity
from connectors.sandbox.server import Request, Response
from connectors.sandbox.zoho_auth import zoho_error
from connectors.sandbox.zoho_wire import ID_BASE

if TYPE_CHECKING:
    from connectors.sandbox.zoho_api import ZohoApi

#: The custom user field holding an RM's capacity.
RM_CAPACITY_FIELD = "RM_Capacity"
#: Owner of customers without a relationship manager (a placeholder user, as banks do).
UNASSIGNED_OWNER = str(ID_BASE + 100000)
INTEGRATION_USER = str(ID_BASE + 90001)
_ORG_TYPES = ("ActiveUsers", "AllUsers")
_PER_PAGE_MAX = 200


def zoho_user_id(owner: str | None) -> str:
    """Generator owners look like ``U00012``; in Zoho they are user ids."""
    if not owner:
        return UNASSIGNED_OWNER
    return str(ID_BASE + 100000 + int(owner.lstrip("U")))


def users(api: ZohoApi, request: Request) -> Response:
    kind = request.arg("type")
    if kind == "CurrentUser":
        return _answer([_integration_user(api)], 1, _PER_PAGE_MAX, more=False)
    if kind not in _ORG_TYPES:
        return zoho_error(
            "INVALID_DATA", f"the sandbox answers type=CurrentUser or {_ORG_TYPES}", 400
        )
    try:
        page = int(request.arg("page") or 1)
        per_page = int(request.arg("per_page") or _PER_PAGE_MAX)
    except ValueError:
        return zoho_error("INVALID_DATA", "page and per_page must be numbers", 400)
    if page < 1 or not 1 <= per_page <= _PER_PAGE_MAX:
        return zoho_error("INVALID_DATA", f"page >= 1, per_page 1..{_PER_PAGE_MAX}", 400)
    org = [_integration_user(api), _user(UNASSIGNED_OWNER, "Unassigned Customers", None)]
    org += [_user(zoho_user_id(f"U{n:05d}"), f"RM {n:05d}", rm_capacity(n)) for n in OWNER_NUMBERS]
    start = (page - 1) * per_page
    return _answer(org[start : start + per_page], page, per_page, more=start + per_page < len(org))


def _integration_user(api: ZohoApi) -> dict[str, Any]:
    ids = {"profile": ID_BASE + 90002, "role": ID_BASE + 90003}
    return {  # the v2 sample answer's keys crmtier and zcrmsdk read, nothing personal
        **_user(INTEGRATION_USER, "crmtier Integration", None),
        "first_name": "crmtier",
        "last_name": "Integration",
        "email": "crmtier-integration@bank.example",
        "role": {"name": api.role, "id": str(ids["role"])},
        "profile": {"name": api.profile, "id": str(ids["profile"])},
    }


def _user(uid: str, name: str, capacity: int | None) -> dict[str, Any]:
    return {
        "id": uid,
        "full_name": name,
        "status": "active",
        "confirm": True,
        "time_zone": "Asia/Shanghai",
        RM_CAPACITY_FIELD: capacity,
    }


def _answer(rows: list[dict[str, Any]], page: int, per_page: int, *, more: bool) -> Response:
    info = {"per_page": per_page, "count": len(rows), "page": page, "more_records": more}
    return Response.json({"users": rows, "info": info})
