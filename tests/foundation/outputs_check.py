"""The test oracle for write-back fields: does a default mapping, or a CRM's described
fields, agree with the outputs' declaration (tiering_core/outputs.py)?

Each CRM's described fields are reduced to ``Described`` (its field type, picklist values
and, for Salesforce, whether the picklist is restricted), read from the same describe
answer the connector reads; the expected type is the CRM's own entry for the output's
declared type (``FIELD_TYPES`` in ``connectors/<crm>/mapping.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.fxiaoke.mapping import FIELD_TYPES as FX_TYPES
from connectors.salesforce.mapping import FIELD_TYPES as SF_TYPES
from connectors.zoho.mapping import FIELD_TYPES as ZOHO_TYPES
from tiering_core.outputs import BY_NAME, OUTPUTS, RESTRICTED, OutputKind

#: outputs a default mapping may leave out (``Output.optional``)
OPTIONAL = frozenset(o.name for o in OUTPUTS if o.optional)

#: The field type each CRM's sandbox and setup docs give an output of each declared type.
CREATED_TYPE: dict[str, Mapping[OutputKind, str]] = {
    "salesforce": {kind: types[0] for kind, types in SF_TYPES.items()},
    "zoho": ZOHO_TYPES,
    "fxiaoke": {kind: types[0] for kind, types in FX_TYPES.items()},
}


@dataclass(frozen=True)
class Described:
    type: str
    values: tuple[str, ...] = ()
    restricted: bool = True  # a restricted picklist (Salesforce); others have no such flag


def mapping_disagreements(raw: Mapping[str, Any]) -> list[str]:
    """What a default mapping's ``[writeback]`` (raw TOML, before any defaulting) says
    that the declaration does not: an output missing (unless optional) or undeclared, a
    restricted output not flagged, a flagged output not mapped."""
    writeback = raw.get("writeback", {})
    fields = set(writeback.get("fields", {}))
    flagged = set(writeback.get("restricted", ()))
    return [
        *(f"{o}: declared, not mapped" for o in sorted(set(BY_NAME) - fields - OPTIONAL)),
        *(f"{o}: mapped, not declared" for o in sorted(fields - set(BY_NAME))),
        *(f"{o}: restricted, not flagged" for o in sorted(RESTRICTED - flagged)),
        *(f"{o}: flagged restricted, not mapped" for o in sorted(flagged - fields)),
    ]


def schema_disagreements(
    crm: str, writeback_fields: Mapping[str, str], described: Mapping[str, Described]
) -> list[str]:
    """Where the CRM's fields for the mapped outputs disagree with the declaration."""
    out = []
    for o in OUTPUTS:
        name = writeback_fields.get(o.name)
        if name is None and o.optional:  # written only when mapped
            continue
        field = described.get(name) if name else None
        if field is None:
            out.append(f"{o.name}: no field {name}")
            continue
        wanted = CREATED_TYPE[crm][o.type.kind]
        if field.type != wanted:
            out.append(f"{o.name}: {name} is {field.type}, declared {o.type.describe()}")
        if set(field.values) != set(o.type.values):
            lacks = [v for v in o.type.values if v not in field.values]
            extra = [v for v in field.values if v not in o.type.values]
            out.append(f"{o.name}: {name} lacks {lacks}, has undeclared {extra}")
        if o.type.values and not field.restricted:
            out.append(f"{o.name}: {name} is not a restricted picklist")
    return out


def salesforce_described(describe: Mapping[str, Any]) -> dict[str, Described]:
    """An sObject ``describe`` answer's fields."""
    return {
        f["name"]: Described(
            f["type"],
            tuple(v["value"] for v in f.get("picklistValues") or ()),
            bool(f.get("restrictedPicklist")) or f["type"] != "picklist",
        )
        for f in describe["fields"]
    }


def zoho_described(fields: list[Mapping[str, Any]]) -> dict[str, Described]:
    """A ``/settings/fields`` answer's fields (``-None-`` is Zoho's empty choice)."""
    return {
        f["api_name"]: Described(
            f["data_type"],
            tuple(
                v["actual_value"] for v in f["pick_list_values"] if v["actual_value"] != "-None-"
            ),
        )
        for f in fields
    }


def fxiaoke_described(describe: Mapping[str, Any]) -> dict[str, Described]:
    """An object ``describe``'s fields."""
    return {
        name: Described(f["type"], tuple(o["value"] for o in f.get("options") or ()))
        for name, f in describe["fields"].items()
    }
