"""docs/targets.md S6 for Zoho: is crmtier's integration user an Administrator?

Zoho grants module, field and setup permissions through the user's *profile*. What the API
tells the running user about itself is ``GET /crm/v2/users?type=CurrentUser``: its profile
and role by name. The built-in "Administrator" profile can change every record, field and
setting of the org, far more than the manifest (Read on the input fields, Edit only on the
tier fields, Create on Tasks and campaign memberships), so it is a warning. A custom profile
is reported by name: whether it grants more than the manifest is not visible through the
user API, so doctor does not claim it is least privilege, only that it is not the admin's.
"""

from __future__ import annotations

from connectors.contract import RIGHTS_CHECK, RIGHTS_DOC, SchemaCheck
from connectors.errors import ConnectorError
from connectors.zoho.client import ZohoClient

NAME = f"{RIGHTS_CHECK}: profile"
#: Zoho's built-in full-access profile. Our reading: the name is the built-in one as Zoho
#: shows it (profile names are not localised in API answers); a renamed copy is not caught.
ADMINISTRATOR = "Administrator"
FIX = (
    "give the integration user a custom profile with Read on the mapped fields, Edit only "
    f"on the tier fields and Create on Tasks ({RIGHTS_DOC})"
)


def check_profile(client: ZohoClient) -> SchemaCheck:
    try:
        user = client.current_user()
    except ConnectorError as exc:
        return SchemaCheck(
            NAME,
            False,
            f"could not read the current user: {exc}",
            "grant the scope ZohoCRM.users.READ, or check the user's profile in Setup > Users",
            "warning",
        )
    if user is None:
        return SchemaCheck(
            NAME, False, "Zoho returned no current user", "check Setup > Users", "warning"
        )
    detail = f"profile {user.profile or '(none)'}, role {user.role or '(none)'}"
    if user.profile.strip().casefold() == ADMINISTRATOR.casefold():
        return SchemaCheck(NAME, False, detail, FIX, "warning")
    return SchemaCheck(NAME, True, detail)
