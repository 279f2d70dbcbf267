"""Every key ``crmtier.toml`` accepts is named in README.md or docs/: an admin reading only
the docs can find each setting (a timeout, a retry bound, a Zoho SDK path) without reading
the config models, and a key added to a model without its line in the docs fails here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from connectors.fxiaoke.config import FxiaokeConfig
from connectors.mapping import unwrap_optional
from connectors.salesforce.config import SalesforceSettings
from connectors.zoho.config import ZohoConfig
from crmtier.config import CrmtierConfig
from webhooks.settings import settings_model

ROOT = Path(__file__).resolve().parents[2]
DOCS = "\n".join(p.read_text("utf-8") for p in [ROOT / "README.md", *ROOT.glob("docs/*.md")])

#: not keys of the file: ``load_config`` sets the first two; ``[writeback]`` collects the
#: last two itself from ``false`` and ``add = false`` entries, which the docs describe
NOT_FILE_KEYS = {"base_dir", "config_file", "switched_off", "remove_only"}

TABLES: list[tuple[str, type[BaseModel]]] = [
    ("", CrmtierConfig),
    ("crm", SalesforceSettings),
    ("crm", ZohoConfig),
    ("crm", FxiaokeConfig),
    ("webhooks", settings_model()),
]


def _keys(model: type[BaseModel], table: str) -> Iterator[tuple[str, str]]:
    for name, field in model.model_fields.items():
        if name in NOT_FILE_KEYS:
            continue
        yield table, name
        inner = unwrap_optional(field.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            yield from _keys(inner, f"{table}.{name}".strip("."))


CASES = sorted({(f"{model.__name__}:{t}", k) for t0, model in TABLES for t, k in _keys(model, t0)})


@pytest.mark.parametrize(("table", "key"), CASES, ids=[f"{t}.{k}" for t, k in CASES])
def test_every_config_key_is_documented(table: str, key: str) -> None:
    named = rf"`[^`\n]*\b{re.escape(key)}\b[^`\n]*`|\b{re.escape(key)} = "  # prose or a TOML line
    assert re.search(named, DOCS), (
        f"{table} {key}: accepted by the config model, named nowhere in README.md or docs/"
    )
