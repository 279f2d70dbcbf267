"""``crmtier doctor`` for Salesforce: can every ``[writeback.queues]`` owner own a Task?

Apart from ``checks.py`` because it is the one check that looks past the org's schema at
its records (users, queues and the objects each queue accepts), with its own id rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.contract import SchemaCheck
from connectors.errors import ConnectorError
from connectors.mapping import WritebackConfig
from connectors.salesforce.client import SalesforceClient, select

_USER_PREFIX, _GROUP_PREFIX = "005", "00G"


def owner_checks(client: SalesforceClient, writeback: WritebackConfig) -> list[SchemaCheck]:
    """Every ``[writeback.queues]`` owner can own a Task: a User id must be an active user
    (a task for an inactive one is refused, INACTIVE_OWNER_OR_USER), a queue id a Group of
    Type Queue whose QueueSobject rows list Task among its supported objects (a queue made
    for Leads or Cases refuses a Task). Three queries, whatever the number of owners."""
    if not writeback.queues:
        return []
    ids = sorted(set(writeback.queues.values()))
    users = [i for i in ids if i.startswith(_USER_PREFIX)]
    queues = [i for i in ids if i.startswith(_GROUP_PREFIX)]
    try:
        active = {_id15(r["Id"]): r for r in _rows(client, ["Id", "IsActive"], "User", users)}
        groups = {_id15(r["Id"]): r for r in _rows(client, ["Id", "Type"], "Group", queues)}
        accepts: dict[str, set[str]] = {}
        for row in _rows(client, ["QueueId", "SobjectType"], "QueueSobject", queues, "QueueId"):
            accepts.setdefault(_id15(row["QueueId"]), set()).add(str(row["SobjectType"]))
    except ConnectorError as exc:
        return [
            SchemaCheck(
                "task owners",
                False,
                f"could not read User, Group or QueueSobject: {exc}",
                "grant the integration user read access to users and queues, or check the "
                "[writeback.queues] ids in Setup by hand",
                "warning",
            )
        ]
    return [
        _owner_check(key, owner, active, groups, accepts)
        for key, owner in sorted(writeback.queues.items())
    ]


def _rows(
    client: SalesforceClient, fields: list[str], sobject: str, ids: list[str], key: str = "Id"
) -> list[dict[str, Any]]:
    """The rows of ``sobject`` whose ``key`` is one of ``ids`` (no call for none)."""
    if not ids:
        return []
    return client.query_all(select(fields, sobject, f"WHERE {key} IN {{}}", ids))


def _id15(rid: Any) -> str:
    """Salesforce ids compare on their case-sensitive 15-character form: a config may hold
    either the 15- or the 18-character (case-safe) id."""
    return str(rid)[:15]


def _owner_check(
    key: str,
    owner: str,
    users: Mapping[str, Mapping[str, Any]],
    groups: Mapping[str, Mapping[str, Any]],
    accepts: Mapping[str, set[str]],
) -> SchemaCheck:
    name = f"task owner {key}"
    where = f"[writeback.queues].{key}"
    if owner.startswith(_USER_PREFIX):
        user = users.get(_id15(owner))
        if user is None:
            return SchemaCheck(name, False, f"user {owner} not found", f"fix {where}")
        if not user.get("IsActive"):
            return SchemaCheck(
                name,
                False,
                f"user {owner} is inactive: Salesforce refuses tasks for it",
                f"set {where} to an active user or a Task queue",
            )
        return SchemaCheck(name, True, f"active user {owner}")
    if not owner.startswith(_GROUP_PREFIX):
        return SchemaCheck(
            name,
            False,
            f"{owner} is neither a user (005…) nor a queue (00G…) id",
            f"fix {where}",
        )
    group = groups.get(_id15(owner))
    if group is None or group.get("Type") != "Queue":
        return SchemaCheck(
            name, False, f"queue {owner} not found", f"create the queue in Setup or fix {where}"
        )
    supported = accepts.get(_id15(owner), set())
    if "Task" not in supported:
        return SchemaCheck(
            name,
            False,
            f"queue {owner} does not accept Tasks (supported: "
            f"{', '.join(sorted(supported)) or 'none'})",
            "add Task to the queue's Supported Objects in Setup > Queues, or name a Task "
            f"queue in {where}",
        )
    return SchemaCheck(name, True, f"Task queue {owner}")
