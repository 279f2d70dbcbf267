"""crmtier.toml loading: defaults, relative paths, and literal secrets refused by key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from crmtier.config import ConfigFileError, load_config
from crmtier.config_sections import parse_interval
from tests.sync.conftest import CRM_TABLE


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "crmtier.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_relative_state_path(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, CRM_TABLE))
    assert config.sync.interval() == timedelta(minutes=15)
    assert config.sync.overlap_seconds == 5
    assert config.state_url().get_secret_value() == f"sqlite:///{tmp_path / 'crmtier.db'}"
    assert config.field_mapping().object  # the shipped default mapping
    assert config.stream.startswith("salesforce:")
    assert config.pseudonym_key() is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[crm]\nkind = "salesforce"\nclient_secret = "hunter2"', "[crm] client_secret: literal"),
        (CRM_TABLE + '[webhooks]\nsecrets = ["whsec_abc"]', "[webhooks] secrets: literal"),
        (CRM_TABLE + '[webhooks]\nfxiaoke_secret = "abc"', "[webhooks] fxiaoke_secret: literal"),
        (CRM_TABLE + '[privacy]\npseudonym_key = "abc"', "[privacy] pseudonym_key: literal"),
        (
            CRM_TABLE + '[state]\nurl = "postgresql+psycopg://u:pw@db/x"',
            "[state] url: contains a password",
        ),
        (CRM_TABLE + '[sync]\nevery = "often"', "[sync] every"),
        (CRM_TABLE + "[sync]\nwrite_concurrency = 0", "[sync] write_concurrency"),
        (CRM_TABLE + "[sync]\nbogus = 1", "[sync] bogus"),
        ('[crm]\nbase_url = "x"', "[crm] kind: required"),
        ("[crm", "not valid TOML"),
    ],
)
def test_bad_files_fail_with_one_line_naming_the_key(
    tmp_path: Path, extra: str, message: str
) -> None:
    text = refusal(_write(tmp_path, extra))
    assert message in text
    assert "\n" not in text
    for secret in ("hunter2", "whsec_abc", "pw@"):
        assert secret not in text


def refusal(path: Path) -> str:
    """What ``load_config`` refuses ``path`` with: every line names the file read, in
    words of its own (none of pydantic's)."""
    with pytest.raises(ConfigFileError) as info:
        load_config(path)
    text = str(info.value)
    assert all(line.startswith(f"{path}: ") for line in text.splitlines())
    for pydantic_wording in ("Extra inputs", "Value error", "Input should"):
        assert pydantic_wording not in text
    return text


def test_secret_refs_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSEUDO_KEY", "k" * 32)
    monkeypatch.setenv("STATE_URL", "postgresql+psycopg://u:pw@db/x")
    config = load_config(
        _write(
            tmp_path,
            CRM_TABLE
            + '[privacy]\npseudonym_key = "env:PSEUDO_KEY"\n[state]\nurl = "env:STATE_URL"',
        )
    )
    assert config.pseudonym_key() == b"k" * 32
    assert config.state_url().get_secret_value().endswith("@db/x")
    assert "pw" not in repr(config)


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMTIER_SYNC__WRITE_CONCURRENCY", "2")
    assert load_config(_write(tmp_path, CRM_TABLE)).sync.write_concurrency == 2


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("1h", 3600), ("1d", 86400)]
)
def test_parse_interval(text: str, seconds: int) -> None:
    assert parse_interval(text) == timedelta(seconds=seconds)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="not found"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("workers", "spread"),
    [
        ('engine = "procrastinate"', True),  # the workers are there: full syncs use them
        ('engine = "procrastinate"\nspread_full_sync = false', False),  # the opt-out
        ('engine = "inline"', False),  # the embedded default: one process
        ("", False),
    ],
)
def test_a_full_sync_is_spread_over_the_workers_by_default_only_with_a_task_engine(
    tmp_path: Path, workers: str, spread: bool
) -> None:
    state = 'url = "postgresql+psycopg://postgres@127.0.0.1/test"' if workers else ""
    text = f"{CRM_TABLE}\n[state]\n{state}\n\n[workers]\n{workers}\n"
    assert load_config(_write(tmp_path, text)).workers.spread_full_sync is spread


def test_spreading_a_full_sync_without_a_task_engine_is_refused(tmp_path: Path) -> None:
    text = f'{CRM_TABLE}\n[workers]\nengine = "inline"\nspread_full_sync = true\n'
    with pytest.raises(ConfigFileError, match="spread_full_sync = true needs engine"):
        load_config(_write(tmp_path, text))


@pytest.mark.parametrize(
    ("crm", "refused"),
    [
        (
            CRM_TABLE + "conect_timeout = 5\n",
            "crm.conect_timeout: unknown key; did you mean connect_timeout?",
        ),
        (
            '[crm]\nkind = "zoho"\npage_sise = 100\n',
            "crm.page_sise: unknown key; did you mean page_size?",
        ),
        (
            '[crm]\nkind = "fxiaoke"\ncalls_per_windows = 50\n',
            "crm.calls_per_windows: unknown key; did you mean calls_per_window?",
        ),
        ('[crm]\nkind = "salesforce"\nfrobnicate = 1\n', "crm.frobnicate: unknown key"),
        (CRM_TABLE + "read_timeout = 60\n", None),  # known: loads, its secrets unread
    ],
    ids=["salesforce-misspelt", "zoho-misspelt", "fxiaoke-misspelt", "unknown", "known"],
)
def test_a_crm_key_the_crm_does_not_know_stops_every_command_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crm: str, refused: str | None
) -> None:
    """docs/admin-setup.md, "Every [crm] key": a key not listed stops every command with
    one line and a did-you-mean. It was checked only when a command built the connector,
    so ``explain``, ``report`` or ``sync --dead-letters`` ran on a file whose timeout or
    page size the next sync would refuse. Checked by name only: a command that never
    calls the CRM still needs none of its secrets (the variables are unset here)."""
    monkeypatch.delenv("SF_ID", raising=False)
    monkeypatch.delenv("SF_SECRET", raising=False)
    path = _write(tmp_path, crm)
    if refused is None:
        assert load_config(path).crm["read_timeout"] == 60
        return
    assert refusal(path) == f"{path}: {refused}"
