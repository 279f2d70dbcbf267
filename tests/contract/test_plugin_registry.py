"""How CRM plugins are found (connectors/registry.py): the ``crmtier.connectors`` entry
points of every installed distribution, plus this tree's ``connectors/<crm>/plugin.py``;
each broken registration is a one-line error naming its entry point."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from connectors import registry
from connectors.errors import ConfigError
from connectors.plugin import WebhookKeys
from tests.contract.memory_plugin.plugin import PLUGIN as MEMORY
from tests.fresh_python import fresh_python
from webhooks import settings as webhook_settings
from webhooks.settings import load_webhooks, settings_model

BUILT_IN = {"salesforce", "zoho", "fxiaoke"}


def distribution(root: Path, name: str, entry_points: str, module: str = "") -> None:
    """A distribution in ``root``, as pip installs one: its metadata and one module."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[crmtier.connectors]\n{entry_points}\n")
    if module:
        (root / f"{name}.py").write_text(module)


ACME = """
import dataclasses
from tests.contract.memory_plugin.plugin import PLUGIN as _MEMORY

PLUGIN = dataclasses.replace(_MEMORY, name="acme", title="Acme CRM", webhook=None)
NOT_A_PLUGIN = object()
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh site directory on ``sys.path``; the registry searches again around the test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reload()
    yield tmp_path
    monkeypatch.undo()
    sys.modules.pop("acme_crm", None)
    registry.reload()


def test_the_built_in_crms_are_found_even_with_stale_metadata() -> None:
    assert set(registry.kinds()) >= BUILT_IN
    for kind in BUILT_IN:
        assert registry.plugin(kind).name == kind


def test_a_crm_in_a_package_of_its_own_is_one_entry_point(site: Path) -> None:
    distribution(site, "acme_crm", "acme = acme_crm:PLUGIN", ACME)
    registry.reload()
    acme = registry.plugin("acme")
    assert (acme.title, acme.connector) == ("Acme CRM", MEMORY.connector)
    assert list(registry.kinds()) == sorted(registry.kinds())


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("acme = acme_crm:NOT_A_PLUGIN", "is not a connector plugin for kind 'acme'"),
        ("other = acme_crm:PLUGIN", "is not a connector plugin for kind 'other'"),
        ("acme = acme_crm:MISSING", "cannot be loaded: AttributeError"),
        ("acme = no_such_module:PLUGIN", "cannot be loaded: ModuleNotFoundError"),
        ("zoho = tests.contract.memory_plugin.plugin:PLUGIN", "is not a connector plugin"),
    ],
)
def test_a_broken_registration_names_its_entry_point(site: Path, entry: str, message: str) -> None:
    distribution(site, "acme_crm", entry, ACME)
    registry.reload()
    with pytest.raises(registry.PluginError, match=message) as info:
        registry.plugins()
    assert entry.partition(" = ")[2] in str(info.value)


def test_two_plugins_cannot_claim_one_kind(site: Path) -> None:
    module = ACME + '\nZOHO = dataclasses.replace(PLUGIN, name="zoho")\n'
    distribution(site, "acme_crm", "zoho = acme_crm:ZOHO", module)
    registry.reload()
    with pytest.raises(registry.PluginError, match="two plugins claim kind 'zoho'"):
        registry.plugins()


def test_an_unknown_kind_lists_the_known_and_the_nearest() -> None:
    with pytest.raises(ConfigError, match=r"must be one of .*salesforce.*; did you mean zoho\?"):
        registry.plugin("zohoo")
    with pytest.raises(ConfigError, match="not None"):
        registry.build_connector(
            {}, MEMORY.default_mapping().mapping, MEMORY.default_mapping().writeback
        )


class ClashingKeys(WebhookKeys):
    memory_secret: str | None = None


def test_webhook_keys_of_two_crms_must_not_clash(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every CRM's keys share the flat [webhooks] table, so a clash is refused, not merged."""
    assert "memory_secret" in settings_model().model_fields  # conftest registered it
    clash = dataclasses.replace(
        MEMORY, name="clash", webhook=dataclasses.replace(MEMORY.webhook, keys=ClashingKeys)
    )
    monkeypatch.setattr(webhook_settings, "plugins", lambda: {"clash": clash, "memory": MEMORY})
    with pytest.raises(ConfigError, match=r"\[webhooks\] memory_secret: declared by both"):
        load_webhooks({})


@pytest.mark.parametrize("kind", sorted(BUILT_IN))
def test_each_crm_prefixes_its_webhook_keys_with_its_kind(kind: str) -> None:
    """All CRMs share the flat [webhooks] table: the prefix keeps a new CRM from clashing."""
    webhook = registry.plugin(kind).webhook
    assert webhook is not None
    assert all(key.startswith(f"{kind}_") for key in webhook.keys.model_fields)


def test_listing_the_plugins_imports_no_vendor_sdk() -> None:
    """Plugins import their CRM's SDK and sandbox only when asked for a connector or a
    sandbox, so every command pays only for the CRM it uses."""
    code = (
        "import sys; from connectors import registry; registry.plugins(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('zcrmsdk', 'simple_salesforce') or m.startswith('connectors.sandbox.')))"
    )
    assert fresh_python(code).strip() == "[]"
