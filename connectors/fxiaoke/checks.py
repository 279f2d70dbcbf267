"""``crmtier doctor``'s checks of an FXiaoke tenant for ``FxiaokeConnector``: the API and
credentials, every mapped input field, each write-back field's type, and the objects and
市场活动 (MarketingEventObj) records that tasks and campaign memberships need. Each check
names what to fix.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from connectors.contract import HOUSEHOLDS_CHECK, SchemaCheck, WriteKind
from connectors.errors import ConfigError, ConnectorError
from connectors.fxiaoke.campaigns import (
    INVALID,
    MARKETING_EVENT,
    campaign_states,
    removal_only_campaigns,
)
from connectors.fxiaoke.client import DESCRIBE_PATH
from connectors.fxiaoke.households import (
    CONTACT,
    HOUSEHOLD_FIELD,
    MEMBER_FIELD,
    ROLE_FIELD,
    ROLES,
)
from connectors.fxiaoke.mapping import FIELD_TYPES, TENANT_ZONE_NAMES, missing_options
from tiering_core.outputs import output_type

if TYPE_CHECKING:
    from connectors.fxiaoke.connector import FxiaokeConnector


def run_checks(connector: FxiaokeConnector) -> list[SchemaCheck]:
    checks: list[SchemaCheck] = []
    try:
        fields = _describe(connector, connector.mapping.object)
    except ConnectorError as exc:
        return [
            SchemaCheck(
                "FXiaoke API and credentials",
                False,
                str(exc),
                "check crm.base_url, app_id, app_secret, permanent_code and open_user_id",
            )
        ]
    checks.append(SchemaCheck("FXiaoke API and credentials", True, connector.mapping.object))
    for path, name in sorted(connector.mapping.fields.items()):
        checks.append(
            SchemaCheck(
                f"read {path}",
                name in fields,
                f"{connector.mapping.object}.{name}",
                "" if name in fields else f"create field {name} or fix [mapping.fields]",
            )
        )
    for output, name in sorted(connector.writeback.fields.items()):
        checks.append(_writable(connector, output, name, fields))
    if connector.writeback.tasks:
        checks.extend(write_checks(connector, ["task"]))
    if connector.writeback.campaign_memberships:
        checks.extend(write_checks(connector, ["membership"]))
    return checks


def write_checks(connector: FxiaokeConnector, kinds: Collection[WriteKind]) -> list[SchemaCheck]:
    """What these write kinds need beyond the mapped fields, the same lines ``run_checks``
    prints: tasks (and their closures) the follow-up object with every field crmtier writes
    on it (one describe), memberships the campaign-member object with its fields (one
    describe) and every configured campaign (one query); on either object, no required
    custom field crmtier leaves empty. Without them the run stops at the first task look-up
    (an object the tenant lacks: 15002, a configuration error) or dead-letters every create
    (a field it lacks or requires, a campaign id no live 市场活动 has: 32000), one letter per
    customer, after tier fields were written (``sync.write_readiness`` refuses the start
    instead, with one line)."""
    cfg = connector.config
    out = []
    if "task" in kinds or "task_close" in kinds:
        names = cfg.followup_fields.model_dump()
        out.append(
            _object_check(connector, cfg.followup_object, "follow-up tasks", names, "followup")
        )
    if "membership" in kinds:
        names = cfg.campaign_member_fields.model_dump()
        out.append(
            _object_check(
                connector,
                cfg.campaign_member_object,
                "campaign memberships",
                names,
                "campaign_member",
            )
        )
        out.extend(_campaign_checks(connector))
    return out


def _campaign_checks(connector: FxiaokeConnector) -> list[SchemaCheck]:
    """Every configured campaign key names a live MarketingEventObj record (one query by
    ``_id`` per 100 ids, so no answer outgrows its one page; an invalidated one,
    ``life_status`` invalid, is no campaign to join: its fix is to restore it, or to stop
    adding to it (``add = false``; ``false`` once the store holds no member crmtier made
    in it, which ``sync.write_readiness`` checks), after which only removals remain and an
    invalidated campaign is a warning, as with memberships off), a line per key as
    Salesforce's and Zoho's doctors print them; one failed ``campaigns`` line when FXiaoke
    refuses the read (a configuration error: the app's user cannot read 市场活动). None,
    and no call, without campaigns."""
    wanted = connector.writeback.campaigns
    if not wanted:
        return []
    try:
        found = campaign_states(connector.client, wanted.values())
    except ConfigError as exc:  # one line, as household_check's, not a bare error
        return [
            SchemaCheck(
                "campaigns",
                False,
                f"{MARKETING_EVENT} is not readable ({exc})",
                f"give the app's acting user read on {MARKETING_EVENT} (市场活动) in its role",
            )
        ]

    removals_only = removal_only_campaigns(connector.writeback)

    def line(key: str, event_id: str) -> SchemaCheck:
        detail = f"{MARKETING_EVENT} {event_id}"
        if event_id not in found:
            return SchemaCheck(
                f"campaign {key}",
                False,
                f"{detail}: no such 市场活动",
                f"fix writeback.campaigns.{key}",
            )
        if found[event_id] == INVALID and key in removals_only:
            why = "it takes no new member (add = false)"
            if not connector.writeback.campaign_memberships:
                why = "memberships are off"
            return SchemaCheck(
                f"campaign {key}",
                True,
                f"{detail} is invalidated (作废): {why}, and crmtier skips its "
                "removals from it, a failed write each",
                severity="warning",
            )
        if found[event_id] == INVALID:
            return SchemaCheck(
                f"campaign {key}",
                False,
                f"{detail} is invalidated (作废)",
                "restore it from the recycle bin, or stop adding to it: writeback.campaigns."
                f'{key} = {{ id = "{event_id}", add = false }} (its removals are then skipped '
                f"while it stays invalidated), or writeback.campaigns.{key} = false once "
                "crmtier holds no member there",
            )
        return SchemaCheck(f"campaign {key}", True, detail)

    return [line(key, event_id) for key, event_id in sorted(wanted.items())]


def _writable(
    connector: FxiaokeConnector, output: str, name: str, fields: Mapping[str, Any]
) -> SchemaCheck:
    field = fields.get(name)
    label = f"write {output}"
    if not isinstance(field, Mapping):
        return SchemaCheck(label, False, name, f"create field {name} on {connector.mapping.object}")
    allowed = FIELD_TYPES[output_type(output).kind]
    kind = str(field.get("type", ""))
    if kind not in allowed:
        return SchemaCheck(
            label, False, f"{name} is {kind}", f"use a field of type {' or '.join(allowed)}"
        )
    lacks = missing_options(output, field)
    if lacks:
        listed = ", ".join(lacks)
        return SchemaCheck(
            label, False, f"{name} lacks options {listed}", f"add {listed} to {name}'s options"
        )
    # Warnings add up on the one line: a restricted date field outside UTC+8 needs both.
    notes = []
    zone = field.get("time_zone")
    if kind == "date" and zone and zone not in TENANT_ZONE_NAMES:
        notes.append(
            f"has time_zone {zone}; crmtier writes a date as midnight UTC+8: "
            "check that a written date shows the intended day"
        )
    if output in connector.writeback.restricted:
        notes.append("restricted: make it visible to compliance roles only")
    if notes:
        return SchemaCheck(label, True, f"{name} ({kind}); {'; '.join(notes)}", severity="warning")
    return SchemaCheck(label, True, f"{name} ({kind})")


def _object_check(
    connector: FxiaokeConnector, obj: str, purpose: str, names: Mapping[str, str], key: str
) -> SchemaCheck:
    """The object exists and has every field crmtier writes on it (``names``: the
    ``[crm] <key>_fields`` table). FXiaoke's docs name neither the campaign member's fields
    nor a follow-up object's, so these are the tenant's api names or our defaults; a name
    the tenant lacks would fail every create of that object (32000), so it is named here,
    from the object's describe, before the first sync."""
    try:
        fields = _describe(connector, obj)
    except ConfigError as exc:  # refused; a failure to reach FXiaoke raises, as any call
        return SchemaCheck(purpose, False, str(exc), f"create object {obj} or configure it")
    missing = sorted(f"{name} ({role})" for role, name in names.items() if name not in fields)
    if missing:
        return SchemaCheck(
            purpose,
            False,
            f"{obj} has no field {', '.join(missing)}",
            f"create the field on {obj}, or set [crm.{key}_fields] to the tenant's api names",
        )
    filled = {name for role, name in names.items() if role not in SOMETIMES_EMPTY}
    unfilled = required_unfilled(fields, filled)
    if unfilled:
        return SchemaCheck(
            purpose,
            False,
            f"{obj} requires {', '.join(unfilled)}, which crmtier does not fill",
            "make these fields optional or give them a default value",
        )
    return SchemaCheck(purpose, True, obj)


#: Roles whose field a create may leave empty: the queue of a task for a named owner is "".
SOMETIMES_EMPTY = frozenset({"queue"})


def required_unfilled(fields: Mapping[str, Any], filled: set[str]) -> list[str]:
    """Custom fields (``__c``) the describe marks ``is_required`` with no default value,
    that crmtier's create does not fill: every create would be refused. Preset fields are
    left out: which of them FXiaoke fills itself (owner, record type, numbering) is not
    documented."""
    return sorted(
        name
        for name, field in fields.items()
        if name.endswith("__c")
        and name not in filled
        and isinstance(field, Mapping)
        and field.get("is_required") is True
        and field.get("default_value") in (None, "")
    )


def _describe(connector: FxiaokeConnector, obj: str) -> Mapping[str, Any]:
    """The object's fields. ``includeDetail`` is a required Boolean of 查询对象描述 ("Object
    Description Query", fxiaoke.com/mob/guide/openapi/dist/en/pages/open-api/collection/
    common/object-describe/describe/); crmtier reads no detail (从对象) objects."""
    answer = connector.client.call(DESCRIBE_PATH, {"apiName": obj, "includeDetail": False})
    describe = (answer.get("data") or {}).get("describe") or {}
    fields = describe.get("fields") or {}
    return fields if isinstance(fields, Mapping) else {}


def household_check(connector: FxiaokeConnector) -> SchemaCheck:
    """Households are contact rows (``ContactObj``) under the household's customer, naming
    the member's own customer and role in two custom fields (connectors/fxiaoke/
    households.py). A custom field's API name is the admin's choice with FXiaoke's ``__c``
    suffix, so the ones crmtier reads must exist under exactly these names. One describe
    call ("查询对象描述", ``/cgi/crm/v2/object/describe``): a refusal means the app cannot
    read ``ContactObj``; otherwise every field the reads name must be listed."""
    try:
        fields = _describe(connector, CONTACT)
    except ConfigError as exc:
        return SchemaCheck(
            HOUSEHOLDS_CHECK,
            False,
            f"{CONTACT} is not readable ({exc})",
            f"give the app's acting user read on {CONTACT} (联系人) in its role",
        )
    missing = [f for f in (HOUSEHOLD_FIELD, MEMBER_FIELD, ROLE_FIELD) if f not in fields]
    if missing:
        return SchemaCheck(
            HOUSEHOLDS_CHECK,
            False,
            f"{CONTACT} has no field {', '.join(missing)}",
            f"add to {CONTACT}: {MEMBER_FIELD} (查找关联 to the customer object) and "
            f"{ROLE_FIELD} (单选: {', '.join(ROLES)}), with exactly these API names",
        )
    return SchemaCheck(HOUSEHOLDS_CHECK, True, f"{CONTACT}.{MEMBER_FIELD}, {ROLE_FIELD}")
