"""The CRMs crmtier knows: connector plugins, found by entry point, looked up by kind.

A plugin (``connectors/plugin.py``) registers under the entry-point group
``crmtier.connectors`` with its ``[crm] kind`` as the name, so a CRM can ship as a package
of its own (docs/adding-a-crm.md)::

    [project.entry-points."crmtier.connectors"]
    mycrm = "mycrm_connector.plugin:PLUGIN"

The CRMs in this repository register the same way (pyproject.toml). So that they are found
even where the installed metadata is older than the tree (an editable install not re-run
after a CRM was added), every ``connectors/<crm>/plugin.py`` exporting ``PLUGIN`` is
found too. Plugins are loaded once per process; ``reload()`` forgets them (tests that add
a distribution to ``sys.path``).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import pkgutil
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType
from typing import Any

from connectors.config_text import did_you_mean
from connectors.contract import Connector
from connectors.errors import ConfigError
from connectors.mapping import DefaultMapping, FieldMapping, WritebackConfig
from connectors.plugin import ConnectorPlugin, Plugin

GROUP = "crmtier.connectors"
#: what an object must have to be taken for a plugin: every part ``Plugin`` has
_ATTRIBUTES = tuple(part.name for part in dataclasses.fields(Plugin))


class PluginError(ConfigError):
    """A registered plugin cannot be used (it fails to import, is not a plugin, or two
    claim one kind); the message names the entry point."""


@functools.cache
def plugins() -> Mapping[str, ConnectorPlugin]:
    """Every registered plugin by kind, sorted by kind."""
    found: dict[str, ConnectorPlugin] = {}
    origin: dict[str, str] = {}
    for entry in entry_points(group=GROUP):
        _add(found, origin, _load(entry), f"entry point {entry.name} = {entry.value}")
    for where, plugin in _in_tree():
        if found.get(plugin.name) is not plugin:
            _add(found, origin, plugin, where)
    return MappingProxyType(dict(sorted(found.items())))


def reload() -> None:
    """Forget the loaded plugins; the next lookup searches again."""
    plugins.cache_clear()


def kinds() -> tuple[str, ...]:
    return tuple(plugins())


def plugin(kind: object) -> ConnectorPlugin:
    """The plugin of ``[crm] kind``; an unknown kind is a one-line error naming the known."""
    known = plugins()
    if not isinstance(kind, str) or kind not in known:
        choices = ", ".join(known)
        hint = did_you_mean(kind, known) if isinstance(kind, str) else ""
        raise ConfigError(f"crm.kind: must be one of {choices}, not {kind!r}{hint}")
    return known[kind]


def default_mapping(kind: str) -> DefaultMapping:
    """The shipped ``[mapping]``/``[writeback]`` of this CRM, matching its sandbox."""
    return plugin(kind).default_mapping()


def build_connector(
    crm: Mapping[str, Any], mapping: FieldMapping, writeback: WritebackConfig
) -> Connector:
    """The connector for a raw ``[crm]`` table (validated by the CRM's own settings model)."""
    return plugin(crm.get("kind")).connector(crm, mapping, writeback)


def _load(entry: EntryPoint) -> ConnectorPlugin:
    try:
        loaded = entry.load()
    except Exception as exc:  # any import failure of a third-party package: name it
        raise PluginError(
            f"entry point {entry.name} = {entry.value} ({GROUP}) cannot be loaded: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not _is_plugin(loaded) or loaded.name != entry.name:
        raise PluginError(
            f"entry point {entry.name} = {entry.value} ({GROUP}) is not a connector plugin "
            f"for kind {entry.name!r}"
        )
    plugin_: ConnectorPlugin = loaded
    return plugin_


def _is_plugin(obj: object) -> bool:
    return all(hasattr(obj, attr) for attr in _ATTRIBUTES)


def _add(
    found: dict[str, ConnectorPlugin],
    origin: dict[str, str],
    plugin_: ConnectorPlugin,
    where: str,
) -> None:
    if plugin_.name in found and found[plugin_.name] is not plugin_:
        raise PluginError(
            f"two plugins claim kind {plugin_.name!r}: {origin[plugin_.name]}, {where}"
        )
    found[plugin_.name] = plugin_
    origin[plugin_.name] = where


def _in_tree() -> list[tuple[str, ConnectorPlugin]]:
    """``connectors/<crm>/plugin.py`` modules of this tree and their ``PLUGIN``."""
    import connectors

    out = []
    for info in pkgutil.iter_modules(connectors.__path__):
        name = f"connectors.{info.name}.plugin"
        if info.ispkg and importlib.util.find_spec(name) is not None:
            loaded = importlib.import_module(name).PLUGIN
            if not _is_plugin(loaded):
                raise PluginError(f"{name}.PLUGIN is not a connector plugin")
            out.append((name, loaded))
    return out
