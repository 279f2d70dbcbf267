"""``crmtier doctor``'s checks of a Zoho org for ``ZohoConnector``: the connection, every
mapped input and write-back field (exists, type, picklist values, writable), the Tasks key
field and campaign ids, the notification channel (``channel.py``) and the integration
user's profile rights (``rights.py``). Each check names what to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from connectors.contract import SchemaCheck
from connectors.errors import ConnectorError
from connectors.mapping import CANONICAL_TYPES
from connectors.zoho.channel import check_channel
from connectors.zoho.mapping import NUMERIC, OUTPUT_VALUES, FieldInfo, missing_values
from connectors.zoho.rights import check_profile
from connectors.zoho.writes import CAMPAIGN_MODULE, MEMBER_MODULES, TASK_MODULE

if TYPE_CHECKING:
    from connectors.zoho.connector import ZohoConnector


def run_checks(connector: ZohoConnector) -> list[SchemaCheck]:
    try:
        fields = connector.schema(connector.module)
    except ConnectorError as exc:
        return [
            SchemaCheck(
                "zoho: connect and authenticate",
                False,
                str(exc),
                fix="check crm.base_url, crm.accounts_url and the credentials",
            )
        ]
    checks = [SchemaCheck("zoho: connect and authenticate", True, f"module {connector.module}")]
    checks += _check_inputs(connector, fields)
    checks += _check_outputs(connector, fields)
    checks += _check_tasks_and_campaigns(connector)
    checks.append(check_channel(connector))
    checks.append(check_profile(connector.client))
    return checks


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


def _check_tasks_and_campaigns(connector: ZohoConnector) -> list[SchemaCheck]:
    out = []
    if connector.writeback.tasks:
        key = connector.config.task_key_field
        info = connector.schema(TASK_MODULE).get(key)
        out.append(
            SchemaCheck(
                "tasks: dedupe key field",
                info is not None,
                f"Tasks.{key}" if info else f"Tasks has no field {key}",
                fix="" if info else f"create a unique single-line field {key} in Tasks",
            )
        )
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
