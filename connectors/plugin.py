"""A CRM is one plugin: the one object a ``connectors/<crm>/`` folder exports.

Everything outside ``connectors/`` reaches a CRM through its plugin, found by its ``[crm]
kind`` in ``connectors/registry.py``, and never by the CRM's name: the config loader asks
it for the settings model and the shipped mapping, ``crmtier sync`` for a connector, the
webhook receiver for its endpoint, ``crmtier doctor`` for its fixes, ``crmtier serve``
for its channel renewal, ``crmtier sandbox``/``demo`` for its sandbox. A fourth CRM is a
new folder (or a package of its own) plus one entry-point line (docs/adding-a-crm.md).

The plugin is a record of small parts rather than a base class to inherit from: a
``ConnectorPlugin`` is anything with these attributes, and ``Plugin`` is the frozen
dataclass the built-in CRMs fill in. Optional parts (webhooks, fixes, a channel to keep
registered) are ``None`` where a CRM has none, so callers branch on data, as the sync
layer does on ``Capabilities``. Factories import the CRM's heavy modules (vendor SDKs,
sandbox servers) only when called, so listing the plugins imports no SDK.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypedDict, TypeVar, cast

from pydantic import BaseModel, ConfigDict

from connectors.contract import Connector, SchemaCheck
from connectors.mapping import DefaultMapping, FieldMapping, WritebackConfig, load_default_mapping
from connectors.settings import CrmSettings
from connectors.webhook_events import ChangeEvent

if TYPE_CHECKING:
    from connectors.sandbox.base import Sandbox

Headers = Mapping[str, str]
ConnectorFactory = Callable[[Mapping[str, Any], FieldMapping, WritebackConfig], Connector]


class SandboxFactory(Protocol):
    def __call__(
        self, *, data_dir: Path, host: str, port: int, latency: float, **options: Any
    ) -> Sandbox: ...


# --- webhooks -----------------------------------------------------------------------------


class WebhookKeys(BaseModel):
    """A CRM's keys of the ``[webhooks]`` table (its verification values). The receiver
    merges every plugin's keys into one flat table, so keys must not clash across CRMs:
    prefix them with the kind (``<kind>_secret``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


K = TypeVar("K", bound=WebhookKeys)


@dataclass(frozen=True)
class Ack:
    """What the receiver answers once the events are durably stored."""

    body: bytes
    media_type: str


def json_ack(new_events: int) -> Ack:
    """The JSON acknowledgement most senders accept (any 2xx body)."""
    body = json.dumps({"ok": True, "new_events": new_events}, separators=(",", ":"))
    return Ack(body.encode("utf-8"), "application/json")


@dataclass(frozen=True)
class WebhookContext:
    """What the ``[webhooks]`` table says that any CRM's verifier may need: the replay
    window, the body limits, and the CRM fields crmtier itself writes (a notification that
    only echoes them is crmtier's own write coming back)."""

    replay_window_s: int
    max_json_bytes: int
    max_xml_bytes: int
    own_fields: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Endpoint:
    """One notification route, ``/webhooks/<name>``.

    ``verify(headers, body, now)`` checks the raw bytes (signature, token or org id, in
    constant time) and returns the change events, or refuses by raising
    ``WebhookRejected``; ``now`` is epoch seconds. ``ack(new_events)`` is the answer once
    stored. The receiver enforces ``content_types`` and ``max_bytes`` before reading."""

    name: str
    content_types: tuple[str, ...]
    max_bytes: int
    verify: Callable[[Headers, bytes, float], list[ChangeEvent]]
    ack: Callable[[int], Ack] = json_ack


#: A way to register or renew crmtier's notification channel in the CRM: called, it does
#: so and returns a line saying what it did. A plugin answers a sentence instead where the
#: set-up lacks what the channel needs.
Renewal = Callable[[], str]


@dataclass(frozen=True)
class Webhook(Generic[K]):
    """A CRM's change notifications: its ``[webhooks]`` keys, its record id format (what
    ``/webhooks/generic`` admits when this CRM is the one synced), the endpoint those keys
    configure (``None`` while unconfigured: the route is then not mounted), and, for a CRM
    where crmtier registers its own channel, how to keep it registered."""

    keys: type[K]
    record_id: re.Pattern[str]
    make_endpoint: Callable[[K, WebhookContext], Endpoint | None]
    channel: Callable[[Connector, K, str | None], Renewal | str] | None = None

    def own_keys(self, table: BaseModel) -> K:
        """This CRM's keys out of the receiver's validated settings (already checked, so
        they are taken as they are, secrets still wrapped)."""
        values = {k: getattr(table, k) for k in self.keys.model_fields}
        return cast(K, self.keys.model_construct(**values))

    def endpoint(self, table: BaseModel, context: WebhookContext) -> Endpoint | None:
        return self.make_endpoint(self.own_keys(table), context)

    def renewal(
        self, connector: Connector, table: BaseModel, public_url: str | None
    ) -> Renewal | str | None:
        """The channel renewal (or why there is none yet); None for a CRM without one."""
        if self.channel is None:
            return None
        return self.channel(connector, self.own_keys(table), public_url)


# --- doctor -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FixContext:
    """What ``crmtier doctor --fix`` hands a CRM's fixer: its connector, the checklist it
    answered, and the channel renewal where the CRM has one (or why it cannot run)."""

    connector: Connector
    checks: Sequence[SchemaCheck]
    renewal: Renewal | str | None = None


@dataclass(frozen=True)
class FixReport:
    """What a fixer did (``fixed``, confirmed by the CRM), what is left to an admin
    (``by_hand``), and which check lines those cover (``handled``: doctor prints no generic
    by-hand line for them)."""

    fixed: list[str] = field(default_factory=list)
    by_hand: list[str] = field(default_factory=list)
    handled: frozenset[str] = frozenset()


Fixer = Callable[[FixContext], FixReport]


@dataclass(frozen=True)
class DemoLimit:
    """Above ``customers``, the CRM's own API pace makes the demo slow; ``why`` says so."""

    customers: int
    why: str


# --- the plugin ---------------------------------------------------------------------------


class ConnectorPlugin(Protocol):
    """What a CRM provides. ``name`` is its ``[crm] kind`` (and entry-point name), ``title``
    how output names it; ``absent_id`` is a well-formed id no record has (the contract
    suite asks for it); ``by_hand`` is the one sentence on what an admin creates in the
    CRM's own set-up pages."""

    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def settings(self) -> type[CrmSettings]: ...
    @property
    def connector(self) -> ConnectorFactory: ...
    @property
    def default_mapping(self) -> Callable[[], DefaultMapping]: ...
    @property
    def sandbox(self) -> SandboxFactory: ...
    @property
    def absent_id(self) -> str: ...
    @property
    def webhook(self) -> Webhook[Any] | None: ...
    @property
    def fix(self) -> Fixer | None: ...
    @property
    def by_hand(self) -> str: ...
    @property
    def demo_limit(self) -> DemoLimit | None: ...


@dataclass(frozen=True)
class Plugin:
    """The plugin record the built-in CRMs fill in (any object with these attributes
    serves as well)."""

    name: str
    title: str
    settings: type[CrmSettings]
    connector: ConnectorFactory
    default_mapping: Callable[[], DefaultMapping]
    sandbox: SandboxFactory
    absent_id: str
    webhook: Webhook[Any] | None = None
    fix: Fixer | None = None
    by_hand: str = ""
    demo_limit: DemoLimit | None = None


def checks_named(checks: Sequence[SchemaCheck], *prefixes: str) -> list[SchemaCheck]:
    """The lines of a checklist whose names start with one of ``prefixes``: how a CRM's
    fixer finds its own connector's lines (it named them)."""
    return [c for c in checks if c.name.startswith(prefixes)]


class LazyParts(TypedDict):
    """A built-in CRM's three factories, as ``Plugin`` takes them (``**lazy_parts(...)``)."""

    connector: ConnectorFactory
    default_mapping: Callable[[], DefaultMapping]
    sandbox: SandboxFactory


def lazy_parts(kind: str, sandbox_class: str) -> LazyParts:
    """The connector, mapping and sandbox factories of the built-in CRM ``kind``, laid out
    as ``connectors/<kind>/connector.py`` (its ``build``), ``connectors/<kind>/
    default_mapping.toml`` and ``connectors/sandbox/<kind>.py`` (``sandbox_class``). Each
    imports its module when called, never before, so listing the plugins imports no
    vendor SDK and no sandbox server."""

    def connector(
        crm: Mapping[str, Any], mapping: FieldMapping, writeback: WritebackConfig
    ) -> Connector:
        build: ConnectorFactory = importlib.import_module(f"connectors.{kind}.connector").build
        return build(crm, mapping, writeback)

    def default_mapping() -> DefaultMapping:
        return load_default_mapping(kind)

    def sandbox(*, data_dir: Path, host: str, port: int, latency: float, **options: Any) -> Sandbox:
        made: SandboxFactory = getattr(
            importlib.import_module(f"connectors.sandbox.{kind}"), sandbox_class
        )
        return made(data_dir=data_dir, host=host, port=port, latency=latency, **options)

    return LazyParts(connector=connector, default_mapping=default_mapping, sandbox=sandbox)
