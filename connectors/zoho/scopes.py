"""The OAuth scopes crmtier's Zoho calls need: the self client's grant (docs/admin-setup.md
and README.md list them; a test holds both to this list, and the Zoho sandbox grants exactly
these unless told otherwise and refuses a call whose scope is missing, as Zoho does).

Each is the scope the Zoho CRM API page of a call names ("Scope"):

* ``ZohoCRM.modules.ALL``: records read, updated and inserted, related records (campaign
  membership: "Update Related Records", "Delink Related Records") and a record's timeline
  ("Timeline of a Record": ``ZohoCRM.modules.{module_name}.READ``).
* ``ZohoCRM.settings.fields.READ``: "Fields Meta Data", read by the connector and by
  zcrmsdk, which types every value by it.
* ``ZohoCRM.settings.related_lists.READ``: "Related Lists Meta Data"
  (zoho.com/crm/developer/docs/api/v2/related-list-meta.html). zcrmsdk reads a module's
  related lists before its first relate or delink (``Utility.get_related_lists``), so
  without it every campaign membership write is refused.
* ``ZohoCRM.notifications.READ``, ``.CREATE`` and ``.WRITE``: listing, enabling and
  renewing the notification channel ("Get Notification Details", "Enable Notifications",
  "Update Details of a Notification").
* ``ZohoCRM.users.READ``: the current user's profile (doctor) and RMs' capacities
  ("Get Users").
* ``ZohoCRM.coql.READ``: the task key look-ups (making and closing tasks) and households
  ("Get Records through COQL Query").
"""

from __future__ import annotations

REQUIRED_SCOPES: tuple[str, ...] = (
    "ZohoCRM.modules.ALL",
    "ZohoCRM.settings.fields.READ",
    "ZohoCRM.settings.related_lists.READ",
    "ZohoCRM.notifications.READ",
    "ZohoCRM.notifications.CREATE",
    "ZohoCRM.notifications.WRITE",
    "ZohoCRM.users.READ",
    "ZohoCRM.coql.READ",
)
