"""``crmtier.toml``: one file, validated up front, secrets only by reference (DESIGN §8).

Sections: ``[crm]`` and ``[webhooks]`` stay raw tables here and are validated by their
owners (``connectors/<kind>/config.py``, ``webhooks/settings.py``), which know their keys;
``[mapping]``/``[writeback]`` default to the CRM's shipped mapping; ``[policy]``,
``[state]``, ``[sync]`` and ``[privacy]`` are validated here.

A secret written literally in the file is refused with a one-line error naming the key
(reference S1): every key that names a secret (``*secret*``, ``*token*``, ``*password*``,
``*_key``, ``permanent_code``) must be ``env:NAME`` or ``file:PATH``. The state URL
may not carry a password either; put the whole URL in the environment instead
(``url = "env:CRMTIER_STATE_URL"``); ``[state] encryption_key`` (and, while changing keys,
``old_encryption_key``) must be references too, and must hold 32 random bytes (hex or
base64), checked at load so a bad key fails before any store is opened. Relative paths
(SQLite file, policy file) are taken relative to the config file, so a scheduled job finds
the same store from any directory.

Environment variables ``CRMTIER_<SECTION>__<KEY>`` override the file (pydantic-settings),
e.g. ``CRMTIER_SYNC__WRITE_CONCURRENCY=2``.
"""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url

from connectors.errors import ConfigError
from connectors.mapping import FieldMapping, WritebackConfig, load_default_mapping
from connectors.secrets import SecretRef, SecretRefError, resolve_secret
from sync.crypto import StoreCipher, parse_key
from sync.store import StateStore

_SECRET_KEY = re.compile(r"secret|token|password|passwd|permanent_code|(^|_)key$", re.I)
_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigFileError(ConfigError):
    """The config file is missing, malformed or unsafe; the message is one line."""


def parse_interval(text: str) -> timedelta:
    """``30s``, ``15m``, ``1h``, ``1d`` -> timedelta."""
    match = _INTERVAL.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not an interval like 30s, 15m, 1h or 1d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicySection(_Section):
    file: str = ""  # empty: the built-in default policy


class StateSection(_Section):
    url: str = "sqlite:///crmtier.db"  # or postgresql+psycopg://..., or an env:/file: ref
    #: encrypts the customer-data columns (reference S4); absent: stored as they are
    encryption_key: SecretRef | None = None
    #: the previous key while changing keys: the next open re-encrypts under the new one
    old_encryption_key: SecretRef | None = None


class SyncSection(_Section):
    every: str = "15m"
    overlap_seconds: float = Field(default=5.0, ge=0, le=3600)
    tie_set_max: int = Field(default=1000, ge=0, le=1_000_000)
    record_retry_attempts: int = Field(default=5, ge=1, le=20)
    record_retry_base_seconds: float = Field(default=0.5, ge=0, le=60)
    write_concurrency: int = Field(default=4, ge=1, le=16)
    lock_ttl_seconds: float = Field(default=60, ge=10)

    def interval(self) -> timedelta:
        return parse_interval(self.every)


class PrivacySection(_Section):
    pseudonym_key: SecretRef | None = None  # absent: the state store generates and keeps one


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
    base_dir: Path = Path(".")

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
        return self.mapping or load_default_mapping(self.kind).mapping

    def writeback_config(self) -> WritebackConfig:
        return self.writeback or load_default_mapping(self.kind).writeback

    def policy_path(self) -> Path | None:
        if not self.policy.file:
            return None
        path = Path(self.policy.file).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def state_url(self) -> SecretStr:
        """The state store URL (a secret: a PostgreSQL URL may name a user and host)."""
        url = self.state.url
        if url.startswith(("env:", "file:")):
            return resolve_secret(url, name="[state] url")
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            db = Path(parsed.database).expanduser()
            if not db.is_absolute():
                parsed = parsed.set(database=str(self.base_dir / db))
        return SecretStr(parsed.render_as_string(hide_password=False))

    def open_state_store(self) -> StateStore:
        """The state store this file names, opened with its cipher (``[state]
        encryption_key``): every command opens it here, so none can miss the key."""
        return StateStore.open(self.state_url().get_secret_value(), cipher=self.state_cipher())

    def state_cipher(self) -> StoreCipher | None:
        """The state store's cipher from ``[state] encryption_key``; ``None`` without one."""
        current, old = self.state.encryption_key, self.state.old_encryption_key
        if current is None:
            if old is not None:
                raise ConfigFileError(
                    "crmtier.toml: [state] old_encryption_key: set only with encryption_key"
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
            raise ConfigFileError(f"crmtier.toml: {exc}") from None
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
            raise ConfigFileError(
                f"crmtier.toml: [{section}] {key}: literal secrets are not allowed; "
                "use 'env:VARIABLE' or 'file:/path'"
            )


def _check_state_url(state: Any) -> None:
    url = state.get("url") if isinstance(state, dict) else None
    if not isinstance(url, str) or url.startswith(("env:", "file:")):
        return
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigFileError("crmtier.toml: [state] url: not a database URL") from None
    if parsed.password:
        raise ConfigFileError(
            "crmtier.toml: [state] url: contains a password; put the whole URL in the "
            'environment and write url = "env:CRMTIER_STATE_URL"'
        )


def _one_line(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    where = f"[{loc[0]}] {'.'.join(loc[1:])}".strip() if loc else "file"
    return f"crmtier.toml: {where}: {err['msg']}"


def load_config(path: Path | str) -> CrmtierConfig:
    """Read, check and validate ``crmtier.toml``; every problem is one ``ConfigFileError``."""
    path = Path(path).expanduser()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigFileError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigFileError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid TOML: {exc}") from None
    if not isinstance(data.get("crm"), dict) or not data["crm"].get("kind"):
        raise ConfigFileError("crmtier.toml: [crm] kind: required (salesforce, zoho or fxiaoke)")
    for section in ("crm", "webhooks", "privacy", "state"):
        _refuse_literal_secrets(section, data.get(section, {}))
    _check_state_url(data.get("state", {}))
    try:
        config = CrmtierConfig(**data, base_dir=path.resolve().parent)
        config.sync.interval()
        config.state_cipher()
    except SecretRefError as exc:
        raise ConfigFileError(f"crmtier.toml: {exc}") from None
    except ValidationError as exc:
        raise ConfigFileError(_one_line(exc)) from None
    except ValueError as exc:
        raise ConfigFileError(f"crmtier.toml: [sync] every: {exc}") from None
    return config
