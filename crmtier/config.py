"""``crmtier.toml``: one file, validated up front, secrets only by reference.

README.md and docs/admin-setup.md describe the file.

Sections: ``[crm]`` and ``[webhooks]`` stay raw tables here and are validated by their
owners (the CRM's connector plugin, found by ``[crm] kind`` in ``connectors/registry.py``;
``webhooks/settings.py``), which know their keys; ``[mapping]``/``[writeback]`` default to
the CRM's shipped mapping; ``[policy]``, ``[state]``, ``[sync]``, ``[privacy]``,
``[coverage]`` and ``[workers]`` are validated here, each by its model in
``crmtier/config_sections.py``.

A secret written literally in the file is refused with a one-line error naming the key
(docs/targets.md S1): every key that names a secret (``*secret*``, ``*token*``, ``*password*``,
``*_key``, ``permanent_code``) must be ``env:NAME`` or ``file:PATH``. The state URL
may not carry a password either; put the whole URL in the environment instead
(``url = "env:CRMTIER_STATE_URL"``); ``[state] encryption_key`` (and, while changing keys,
``old_encryption_key``) and ``audit_key`` (with ``old_audit_keys``) must be references
too, and must hold 32 random bytes (hex or base64), checked at load so a bad key fails
before any store is opened. Relative paths
(SQLite file, policy file) are taken relative to the config file, so a scheduled job finds
the same store from any directory.

Environment variables ``CRMTIER_<SECTION>__<KEY>`` override the file (pydantic-settings),
e.g. ``CRMTIER_SYNC__WRITE_CONCURRENCY=2``.
"""

from __future__ import annotations

import logging
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url

from connectors.config_text import did_you_mean, sentence, where
from connectors.contract import Connector
from connectors.coverage import mapping_problems, writeback_notices, writeback_problems
from connectors.errors import ConfigError
from connectors.mapping import FieldMapping, WritebackConfig, unwrap_optional
from connectors.registry import build_connector, default_mapping, kinds, plugin
from connectors.secrets import SecretRefError, resolve_secret
from crmtier.config_sections import (
    CoverageSection,
    PolicySection,
    PrivacySection,
    StateSection,
    SyncSection,
    WorkersSection,
)
from crmtier.store_failures import opening
from sync.audit import AuditKeys
from sync.crypto import StoreCipher, parse_key
from sync.shared_limits import share as share_limits
from sync.store import StateStore
from tiering_core.policy import PolicyError, load_policy

log = logging.getLogger("crmtier.config")

_SECRET_KEY = re.compile(r"secret|token|password|passwd|permanent_code|(^|_)key$", re.I)


class ConfigFileError(ConfigError):
    """The config file is missing, malformed or unsafe; one line per problem, each naming
    the file actually read."""


class _Problem(ValueError):
    """A problem found while checking the file; ``load_config`` adds the file's name."""


class CrmtierConfig(BaseSettings):
    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        env_prefix="CRMTIER_",
        env_nested_delimiter="__",
        hide_input_in_errors=True,
    )

    crm: dict[str, Any]
    mapping: FieldMapping | None = None
    writeback: WritebackConfig | None = None
    policy: PolicySection = PolicySection()
    state: StateSection = StateSection()
    sync: SyncSection = SyncSection()
    webhooks: dict[str, Any] = Field(default_factory=dict)
    privacy: PrivacySection = PrivacySection()
    coverage: CoverageSection = CoverageSection()
    workers: WorkersSection = WorkersSection()
    base_dir: Path = Path(".")
    #: the file this config was read from, named in every error about it
    config_file: Path = Path("crmtier.toml")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return env_settings, init_settings

    @property
    def kind(self) -> str:
        return str(self.crm.get("kind", ""))

    @property
    def stream(self) -> str:
        """The change stream this config syncs: ``<crm>:<object>``."""
        return f"{self.kind}:{self.field_mapping().object}"

    def field_mapping(self) -> FieldMapping:
        return self.mapping or default_mapping(self.kind).mapping

    def writeback_config(self) -> WritebackConfig:
        return self.writeback or default_mapping(self.kind).writeback

    def connector(self) -> Connector:
        """The CRM's connector for this file; a ``[crm]`` table the CRM's own settings
        refuse (a missing key, an unset secret variable) is an error about this file."""
        try:
            return build_connector(self.crm, self.field_mapping(), self.writeback_config())
        except ConfigFileError:
            raise
        except ConfigError as exc:
            raise ConfigFileError(f"{self.config_file}: {exc}") from None

    def policy_path(self) -> Path | None:
        if not self.policy.file:
            return None
        path = Path(self.policy.file).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def state_url(self) -> SecretStr:
        """The state store URL (a secret: a PostgreSQL URL may name a user and host). A
        reference to an unset variable or an unreadable file is an error about this file
        (exit 2, naming it and the key): resolved only when a store is opened, so it was
        the one secret whose absence escaped every command but ``sync`` as a traceback."""
        url = self.state.url
        if url.startswith(("env:", "file:")):
            try:
                return resolve_secret(url, name="[state] url")
            except SecretRefError as exc:
                raise ConfigFileError(f"{self.config_file}: {exc}") from None
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            db = Path(parsed.database).expanduser()
            if not db.is_absolute():
                parsed = parsed.set(database=str(self.base_dir / db))
        return SecretStr(parsed.render_as_string(hide_password=False))

    def open_state_store(self) -> StateStore:
        """The state store this file names, opened with its cipher (``[state]
        encryption_key``): every command opens it here, so none can miss the key. A
        PostgreSQL store also holds the CRM's limits for every worker that opens it
        (``sync/shared_limits.py``): connectors built after this share them. A store it
        cannot reach or use raises naming it (``crmtier.store_failures``)."""
        url = self.state_url().get_secret_value()
        with opening(url):
            store = StateStore.open(url, cipher=self.state_cipher(), audit_keys=self.audit_keys())
        share_limits(store)
        return store

    def audit_keys(self) -> AuditKeys | None:
        """The audit chain's keys from ``[state] audit_key`` and ``old_audit_keys``;
        ``None`` without a key (the store then signs with one it generated)."""
        current, old = self.state.audit_key, self.state.old_audit_keys
        if current is None:
            if old:
                raise ConfigFileError(
                    f"{self.config_file}: [state] old_audit_keys: set only with audit_key"
                )
            return None
        try:
            return AuditKeys(
                parse_key(current.get_secret_value(), name="[state] audit_key"),
                tuple(
                    parse_key(k.get_secret_value(), name=f"[state] old_audit_keys[{i}]")
                    for i, k in enumerate(old)
                ),
            )
        except ValueError as exc:
            raise ConfigFileError(f"{self.config_file}: {exc}") from None

    def state_cipher(self) -> StoreCipher | None:
        """The state store's cipher from ``[state] encryption_key``; ``None`` without one."""
        current, old = self.state.encryption_key, self.state.old_encryption_key
        if current is None:
            if old is not None:
                raise ConfigFileError(
                    f"{self.config_file}: [state] old_encryption_key: set only with encryption_key"
                )
            return None
        try:
            key = parse_key(current.get_secret_value(), name="[state] encryption_key")
            previous = (
                [parse_key(old.get_secret_value(), name="[state] old_encryption_key")]
                if old is not None
                else []
            )
        except ValueError as exc:
            raise ConfigFileError(f"{self.config_file}: {exc}") from None
        return StoreCipher(key, previous)

    def pseudonym_key(self) -> bytes | None:
        key = self.privacy.pseudonym_key
        return None if key is None else key.get_secret_value().encode("utf-8")


def _refuse_literal_secrets(section: str, table: Any, path: str = "") -> None:
    if isinstance(table, dict):
        for key, value in table.items():
            where = f"{path}.{key}" if path else str(key)
            if _SECRET_KEY.search(str(key)):
                _require_refs(section, where, value)
            else:
                _refuse_literal_secrets(section, value, where)
    elif isinstance(table, list):
        for value in table:
            _refuse_literal_secrets(section, value, path)


def _require_refs(section: str, key: str, value: Any) -> None:
    values = value if isinstance(value, list) else [value]
    for item in values:
        if isinstance(item, dict):  # {ref = "env:...", not_after = ...}
            item = item.get("ref")
        if not isinstance(item, str) or not re.match(r"^(env|file):\S", item):
            raise _Problem(
                f"[{section}] {key}: literal secrets are not allowed; "
                "use 'env:VARIABLE' or 'file:/path'"
            )


def _check_state_url(state: Any) -> None:
    url = state.get("url") if isinstance(state, dict) else None
    if not isinstance(url, str) or url.startswith(("env:", "file:")):
        return
    try:
        parsed = make_url(url)
    except Exception:
        raise _Problem("[state] url: not a database URL") from None
    if parsed.password:
        raise _Problem(
            "[state] url: contains a password; put the whole URL in the "
            'environment and write url = "env:CRMTIER_STATE_URL"'
        )


def _problem_text(err: ErrorDetails) -> str:
    """One pydantic error as ``[table] key: problem``, with a did-you-mean for a key the
    table does not have."""
    text = sentence(err, _keys_at(err["loc"][:-1]))
    return text if text.startswith("[") else f"{where(err['loc'])}: {text}"


def _keys_at(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the table at ``loc`` accepts (a top-level key: the sections)."""
    model: type[BaseModel] = CrmtierConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        inner = unwrap_optional(field.annotation) if field else None
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return []
        model = inner
    return [k for k in model.model_fields if k not in _INTERNAL]


#: fields ``load_config`` sets itself, not keys of the file
_INTERNAL = ("base_dir", "config_file")


def load_config(path: Path | str) -> CrmtierConfig:
    """Read, check and validate the config file; every problem is a ``ConfigFileError``
    naming ``path``. Beyond the keys' types this checks that ``[mapping]`` names canonical
    fields and that ``[writeback]`` gives a CRM target (or ``false``) for every output,
    campaign and task queue the active policy can produce (``connectors/coverage.py``)."""
    path = Path(path).expanduser()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigFileError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigFileError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid TOML: {exc}") from None
    try:
        config = _validate(data, path)
    except _Problem as exc:
        raise ConfigFileError(f"{path}: {exc}") from None
    problems = _coverage_problems(config, path)
    if problems:
        raise ConfigFileError("\n".join(f"{path}: {p}" for p in problems))
    return config


def _validate(data: dict[str, Any], path: Path) -> CrmtierConfig:
    if not isinstance(data.get("crm"), dict) or not data["crm"].get("kind"):
        raise _Problem(f"[crm] kind: required (one of {', '.join(kinds())})")
    for key in _INTERNAL:
        if key in data:
            raise _Problem(f"{key}: unknown key")
    for section in ("crm", "webhooks", "privacy", "state"):
        _refuse_literal_secrets(section, data.get(section, {}))
    _check_state_url(data.get("state", {}))
    try:
        config = CrmtierConfig(**data, base_dir=path.resolve().parent, config_file=path)
        config.state_cipher()
        config.audit_keys()
    except SecretRefError as exc:
        raise _Problem(str(exc)) from None
    except ValidationError as exc:
        raise _Problem(_problem_text(exc.errors()[0])) from None
    try:
        config.sync.interval()
    except ValueError as exc:
        raise _Problem(f"[sync] every: {exc}") from None
    _check_crm_keys(config.crm)
    _check_workers(config)
    return config


def _check_crm_keys(crm: dict[str, Any]) -> None:
    """A ``[crm]`` key the CRM's settings model does not have stops every command here,
    not only those that build the connector (``explain``, ``report`` ran on a file the
    next sync refused). Names only: validating the values would resolve the secrets,
    which a command that never calls the CRM does not need. An unknown kind is
    reported with the coverage problems."""
    if crm.get("kind") not in kinds():
        return
    known = plugin(crm["kind"]).settings.model_fields
    for key in crm:
        if key not in known:
            raise _Problem(f"crm.{key}: unknown key{did_you_mean(key, known)}")


def _check_workers(config: CrmtierConfig) -> None:
    """A task engine keeps its queue in the state store's database: PostgreSQL only."""
    if config.workers.engine == "inline":
        return
    url = config.state_url().get_secret_value()  # its ConfigFileError names the file
    try:
        backend = make_url(url).get_backend_name()
    except Exception:
        raise _Problem("[state] url: not a database URL") from None
    if backend != "postgresql":
        raise _Problem(
            f'[workers] engine: "{config.workers.engine}" keeps its job queue in a PostgreSQL '
            'state store ([state] url); with SQLite use engine = "inline"'
        )


def _coverage_problems(config: CrmtierConfig, path: Path) -> list[str]:
    """What the mapping and write-back leave unnamed or misname, against the policy the
    config uses (a policy that does not load is the one problem then). A deprecated key
    that still says what the policy does is logged as a warning naming ``path``, once
    per load, so an upgraded file keeps working while it says what to delete."""
    try:
        policy = load_policy(config.policy_path())
    except PolicyError as exc:
        return [f"[policy] file: {exc}"]
    known = kinds()
    if config.kind not in known:
        return [f"[crm] kind: must be one of {', '.join(known)}{did_you_mean(config.kind, known)}"]
    writeback = config.writeback_config()
    problems = mapping_problems(config.field_mapping()) + writeback_problems(
        writeback, policy, config.kind
    )
    if not problems:
        for notice in writeback_notices(writeback, policy):
            log.warning("%s: %s", path, notice)
    return problems
