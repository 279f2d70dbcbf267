"""``crmtier doctor``'s checks of a Zoho org for ``ZohoConnector``: the connection, every
mapped input and write-back field (exists, type, picklist values, writable), one read naming
every mapped field as the sync's reads do, the Tasks key field and campaign ids, the
notification channel (``channel.py``) and the integration user's profile rights
(``rights.py``). Each check names what to fix.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from connectors.contract import HOUSEHOLDS_CHECK, SchemaCheck, WriteKind
from connectors.errors import ConfigError, ConnectorError
from connectors.mapping import CANONICAL_TYPES
from connectors.zoho.channel import check_channel
from connectors.zoho.closures import SETTING as CLOSED_SETTING
from connectors.zoho.closures import unknown_statuses, unknown_text
from connectors.zoho.households import ROLE_FIELD
from connectors.zoho.mapping import (
    LATER_VERSIONS_FIELDS_CAP,
    NUMERIC,
    OUTPUT_VALUES,
    TEXT_TYPES,
    FieldInfo,
    missing_values,
    read_fields,
)
from connectors.zoho.rights import check_profile
from connectors.zoho.task_keys import TASK_MODULE
from connectors.zoho.writes import CAMPAIGN_MODULE, MEMBER_MODULES
from tiering_core.outputs import LONG_TEXT_LENGTH

if TYPE_CHECKING:
    from connectors.zoho.connector import ZohoConnector


def run_checks(connector: ZohoConnector) -> list[SchemaCheck]:
    try:
        fields = connector.schema(connector.module)
    except ConnectorError as exc:
        return [
            SchemaCheck(
                "zoho: connect and authenticate", False, str(exc), fix=_connect_fix(connector)
            )
        ]
    checks = [SchemaCheck("zoho: connect and authenticate", True, f"module {connector.module}")]
    checks += _check_inputs(connector, fields)
    checks += _check_outputs(connector, fields)
    checks.append(_check_named_read(connector))
    checks += _check_tasks_and_campaigns(connector)
    checks.append(check_channel(connector))
    checks.append(check_profile(connector.client))
    return checks


def _connect_fix(connector: ZohoConnector) -> str:
    """What to check when the first call fails: the API host Zoho Accounts gave when it is
    not ``crm.base_url`` (another data centre's, ``transport.data_centre_mismatch``)."""
    elsewhere = connector.client.data_centre_mismatch()
    return elsewhere or "check crm.base_url, crm.accounts_url and the credentials"


def _check_inputs(connector: ZohoConnector, fields: Mapping[str, FieldInfo]) -> list[SchemaCheck]:
    out = []
    for path, api_name in sorted(connector.mapping.fields.items()):
        info = fields.get(api_name)
        typ = CANONICAL_TYPES.get(path)
        if info is None:
            out.append(
                SchemaCheck(
                    f"mapping {path}",
                    False,
                    f"no field {api_name}",
                    fix=f"create {api_name} in {connector.module} or fix [mapping]",
                )
            )
        elif typ in (int, float) and info.data_type not in NUMERIC:
            out.append(
                SchemaCheck(
                    f"mapping {path}",
                    False,
                    f"{api_name} is {info.data_type}, expected a number",
                    fix="values that are not numbers become data-quality issues; make it "
                    "an Integer or Decimal field once its values are clean",
                    severity="warning",
                )
            )
        else:
            out.append(SchemaCheck(f"mapping {path}", True, api_name))
    return out


def _check_outputs(connector: ZohoConnector, fields: Mapping[str, FieldInfo]) -> list[SchemaCheck]:
    out = []
    for output, api_name in sorted(connector.writeback.fields.items()):
        info = fields.get(api_name)
        name = f"writeback {output}"
        if info is None:
            out.append(
                SchemaCheck(
                    name,
                    False,
                    f"no field {api_name}",
                    fix=f"create {api_name} in {connector.module}",
                )
            )
            continue
        if info.read_only:
            out.append(SchemaCheck(name, False, f"{api_name} is read-only"))
            continue
        short = _length_check(connector, output, info)
        if short is not None:
            out.append(short)
            continue
        labels = connector.config.picklist_labels.get(output, {})
        wanted = [labels.get(v, v) for v in OUTPUT_VALUES.get(output, ())]
        missing = missing_values(info, wanted) if info.data_type == "picklist" else []
        if missing:
            out.append(
                SchemaCheck(
                    name,
                    False,
                    f"{api_name} picklist lacks {', '.join(missing)}",
                    fix="add the values to the picklist or map them in crm.picklist_labels",
                )
            )
        elif output in connector.writeback.restricted:
            out.append(
                SchemaCheck(
                    name,
                    True,
                    f"{api_name}: restricted output",
                    fix="make sure only compliance profiles can read it",
                    severity="warning",
                )
            )
        else:
            out.append(SchemaCheck(name, True, api_name))
    return out


def _length_check(connector: ZohoConnector, output: str, info: FieldInfo) -> SchemaCheck | None:
    """A text field shorter than what crmtier may write to it, by its metadata ``length``
    (the writer refuses a longer text before its call, failing that customer's update:
    ``mapping.zoho_value``). The explanation's cap is the config's, so a field shorter
    fails; the reasons' is the policy's ``strategy.reasons_max_chars``, which doctor does
    not read, so a field shorter than the longest reasons the config check allows is a
    warning naming the most it may be."""
    if not info.length or info.data_type not in TEXT_TYPES:
        return None
    name, api_name, length = f"writeback {output}", info.api_name, info.length
    cap = connector.writeback.explanation_max_chars
    if output == "explanation" and length < cap:
        return SchemaCheck(
            name,
            False,
            f"{api_name} holds {length} characters, explanation_max_chars is {cap}",
            fix=f"lengthen {api_name} in Zoho, or set explanation_max_chars = {length} or less",
        )
    if output == "reasons" and length < LONG_TEXT_LENGTH:
        return SchemaCheck(
            name,
            True,
            f"{api_name} holds {length} characters",
            fix=f"keep the policy's strategy.reasons_max_chars at {length} or less: a longer "
            "reasons text fails its customer's write, dead-lettered",
            severity="warning",
        )
    return None


def _check_named_read(connector: ZohoConnector) -> SchemaCheck:
    """One read of one record naming every field the sync reads, as its reads do. The v2 API
    documents no cap on a read's ``fields``; later versions cap it at 50, and an org that
    applies that cap refuses every read of a larger mapping, so this says so before the first
    sync does (crmtier never falls back to a read of every field: data minimisation)."""
    names = read_fields(connector.mapping, connector.writeback)
    name = "zoho: read the mapped fields by name"
    try:
        connector.client.read_page(connector.module, names, modified_after=None, page=1, per_page=1)
    except ConnectorError as exc:
        over = len(names) > LATER_VERSIONS_FIELDS_CAP
        return SchemaCheck(
            name,
            False,
            f"a read naming {len(names)} fields was refused: {exc}",
            fix=(
                f"this org may cap a read at {LATER_VERSIONS_FIELDS_CAP} field names: unmap "
                "unused [mapping.fields] inputs or set unused [writeback.fields] outputs to false"
                if over
                else "check the integration user's read rights on the mapped fields"
            ),
        )
    return SchemaCheck(name, True, f"{len(names)} fields")


def _check_tasks_and_campaigns(connector: ZohoConnector) -> list[SchemaCheck]:
    out = []
    if connector.writeback.tasks:
        key = connector.config.task_key_field
        info = connector.schema(TASK_MODULE).get(key)
        out.append(_check_task_key(key, info))
        if info is not None:
            out.append(_check_task_lookup(connector, key))
        out.append(_check_closed_statuses(connector))
    if connector.writeback.campaign_memberships and connector.writeback.campaigns:
        if connector.module not in MEMBER_MODULES:
            out.append(
                SchemaCheck(
                    "campaigns",
                    False,
                    f"{connector.module} cannot be a campaign member",
                    fix="set writeback.campaign_memberships = false",
                )
            )
            return out
        out.append(_check_membership_lookup(connector))
        ids = sorted(set(connector.writeback.campaigns.values()))
        found = {
            str(r["id"]) for r in connector.client.fetch(CAMPAIGN_MODULE, ids, ["Campaign_Name"])
        }
        missing = [k for k, v in sorted(connector.writeback.campaigns.items()) if v not in found]
        out.append(
            SchemaCheck(
                "campaigns",
                not missing,
                f"missing {', '.join(missing)}" if missing else f"{len(ids)} campaigns found",
                fix="fix writeback.campaigns ids" if missing else "",
            )
        )
    return out


def coql_fix(module: str) -> str:
    """What a COQL query of ``module`` (tasks' key look-ups, households) needs: "scope=
    ZohoCRM.coql.READ (and) scope=ZohoCRM.modules.{operation_type} (or) scope=ZohoCRM.
    modules.{module_name}.{operation_type}", ALL or READ ("Get Records through a COQL
    Query", Zoho CRM API v2, www.zoho.com/crm/developer/docs/api/v2/Get-Records-through-
    COQL-Query.html): both halves, since a grant narrowed to other modules' scopes is
    refused too. The fix names the two crmtier's guides grant (``ZohoCRM.modules.READ``
    serves the query too, but not crmtier's writes)."""
    return (
        f"add the scope ZohoCRM.coql.READ and a scope of {module}, ZohoCRM.modules.ALL or "
        f"ZohoCRM.modules.{module.lower()}.READ (a COQL query needs both), to the self "
        "client's grant and generate a new refresh token (docs/admin-setup.md)"
    )


def _check_task_key(key: str, info: FieldInfo | None) -> SchemaCheck:
    """The Tasks field holding crmtier's task keys must exist and be unique ("Fields Meta
    Data": ``unique`` names ``casesensitive`` only for a unique field): a task is inserted
    after a look-up finds its key absent, and only a unique field refuses the second of two
    processes inserting the same key at once (``writes._write_tasks``); without it both are
    stored, and each later look-up of that key spends its 50 rows on the copies."""
    name = "tasks: dedupe key field"
    if info is None:
        return SchemaCheck(
            name,
            False,
            f"Tasks has no field {key}",
            f"create a unique single-line field {key} in Tasks",
        )
    if not info.unique:
        return SchemaCheck(
            name,
            False,
            f"Tasks.{key} allows duplicate values",
            f"mark Tasks.{key} unique (Do not allow duplicate values) in the field's properties",
        )
    return SchemaCheck(name, True, f"Tasks.{key} (unique)")


def _check_task_lookup(connector: ZohoConnector, key: str) -> SchemaCheck:
    """Making or closing a task looks its key up by COQL first (``writes._held_tasks``):
    one COQL query of one Task, shaped as that look-up, proves the grant holds
    ``ZohoCRM.coql.READ`` and a Tasks scope (``coql_fix``). Without them no follow-up task
    could be made, and a sanctions hit could not withdraw the customer's sales tasks."""
    name = "tasks: key look-up"
    try:
        connector.client.query(
            f"select {key}, Status from {TASK_MODULE} where {key} is not null limit 1"  # noqa: S608
        )
    except ConfigError as exc:
        return SchemaCheck(
            name, False, f"a COQL query of Tasks was refused ({exc})", coql_fix(TASK_MODULE)
        )
    return SchemaCheck(name, True, f"Tasks.{key} readable by COQL")


def _check_closed_statuses(connector: ZohoConnector) -> SchemaCheck:
    """Each of ``crm.task_closed_statuses`` must be a value of the org's Tasks ``Status``
    picklist (``closures.py``: Zoho marks no value closed, so the org's closed values are
    configuration). From the Tasks field metadata, read once a connector: in doctor the key
    field's line has read it, at start this reads it."""
    name = "tasks: closed statuses"
    unknown, values = unknown_statuses(connector)
    if unknown:
        fix = (
            f"set {CLOSED_SETTING} to the org's closed values, or add the value in Setup > "
            "Modules and Fields > Tasks"
        )
        return SchemaCheck(name, False, unknown_text(unknown, values), fix)
    statuses = connector.config.task_closed_statuses
    return SchemaCheck(name, True, f"closing writes {statuses[0]!r}; closed: {', '.join(statuses)}")


def _check_membership_lookup(connector: ZohoConnector) -> SchemaCheck:
    """zcrmsdk reads the module's related lists before it adds or removes a campaign
    membership ("Related Lists Meta Data", scope ``ZohoCRM.settings.related_lists.READ``):
    the same read here proves the grant holds the scope and the module relates Campaigns,
    before a sync's first membership write is refused."""
    name = "campaigns: related list"
    try:
        lists = connector.client.related_lists(connector.module)
    except ConfigError as exc:
        fix = (
            "add the scope ZohoCRM.settings.related_lists.READ to the self client's grant and "
            "generate a new refresh token (docs/admin-setup.md)"
        )
        return SchemaCheck(name, False, f"reading the related lists was refused ({exc})", fix)
    if CAMPAIGN_MODULE not in lists:
        missing = f"{connector.module} has no {CAMPAIGN_MODULE} related list"
        return SchemaCheck(name, False, missing, "set writeback.campaign_memberships = false")
    return SchemaCheck(name, True, f"{connector.module}.{CAMPAIGN_MODULE}")


def write_checks(connector: ZohoConnector, kinds: Collection[WriteKind]) -> list[SchemaCheck]:
    """What these write kinds need beyond the mapped fields, each line one call, the same
    lines ``run_checks`` prints: tasks (and their closures) the ``ZohoCRM.coql.READ``
    scope of the key look-up every task write starts with, and the closed statuses the org's
    Tasks picklist must hold (one read of the Tasks field metadata, which the first task
    write reads anyway), the default ``Completed`` too: an org that renamed it would
    otherwise start and meet it at its first closure, a sanctions hit, where the run stops
    after its field writes, run after run; memberships the related lists zcrmsdk reads
    before a membership write (``ZohoCRM.settings.related_lists.READ``)."""
    out = []
    if "task" in kinds or "task_close" in kinds:
        out.append(_check_task_lookup(connector, connector.config.task_key_field))
        out.append(_check_closed_statuses(connector))
    if "membership" in kinds:
        out.append(_check_membership_lookup(connector))
    return out


def household_check(connector: ZohoConnector) -> SchemaCheck:
    """Households are customer Contacts under an Account with a ``Household_Role``
    (connectors/zoho/households.py), read by COQL. The field comes from the module's field
    metadata, already read by ``run_checks`` (no call in ``doctor``); then one COQL query
    of one row proves the grant holds ``ZohoCRM.coql.READ`` and a scope of the module."""
    module = connector.module
    if ROLE_FIELD not in connector.schema(module):
        return SchemaCheck(
            HOUSEHOLDS_CHECK,
            False,
            f"{module} has no field {ROLE_FIELD}",
            f"add a picklist {ROLE_FIELD} to {module} (Primary, Spouse, Partner, Child, "
            "Parent, Family Member, Business) in Setup > Modules and Fields",
        )
    try:
        connector.household_links.probe()
    except ConfigError as exc:
        return SchemaCheck(
            HOUSEHOLDS_CHECK, False, f"a COQL query was refused ({exc})", coql_fix(module)
        )
    return SchemaCheck(HOUSEHOLDS_CHECK, True, f"{module}.{ROLE_FIELD}, COQL readable")
