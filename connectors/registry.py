"""Builds the connector for a ``[crm]`` kind, importing only that CRM's package.

Each CRM package exposes ``connectors.<crm>.connector.build(crm, mapping, writeback)``,
taking the raw ``[crm]`` table of ``crmtier.toml`` (validated by that CRM's own config
model in ``connectors/<crm>/config.py``) and the parsed ``[mapping]``/``[writeback]``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from connectors.contract import Connector
from connectors.errors import ConfigError
from connectors.mapping import FieldMapping, WritebackConfig

KINDS = ("salesforce", "zoho", "fxiaoke")


def build_connector(
    crm: Mapping[str, Any], mapping: FieldMapping, writeback: WritebackConfig
) -> Connector:
    kind = crm.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"crm.kind: must be one of {', '.join(KINDS)}, not {kind!r}")
    module = importlib.import_module(f"connectors.{kind}.connector")
    connector: Connector = module.build(crm, mapping, writeback)
    return connector
