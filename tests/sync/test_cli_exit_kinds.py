"""Exit 2 means "fix the configuration" (README.md, "Commands"), and only that: a setting
found unusable when a command loads or opens what it names ends it with one line naming
the field, exit 2; an unexpected ``ValueError`` from inside a run (a bug, an answer of the
CRM crmtier failed to read) is no configuration problem and keeps its traceback (exit 1).

Before, ``crmtier sync`` turned every ``ValueError`` into exit 2 and its bare message, so
a bug read "fix your config" and lost where it came from; and the other commands ended a
``[state] url = "env:..."`` whose variable is unset in a traceback (``SecretRefError``),
exit 1, where ``sync`` said it in one line. The commands run in-process (``CliRunner``:
its ``exception`` is what the console script would print as a traceback).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from crmtier.cli import cli
from tests.product.test_product_store_failures import COMMANDS
from tests.sync.conftest import CRM_TABLE
from tiering_core.policy import PolicyError


def _config(tmp: Path, monkeypatch: pytest.MonkeyPatch, state: str) -> Path:
    """crmtier.toml over a CRM nobody serves (nothing here may get as far as calling it)
    and the ``[state] url`` given."""
    monkeypatch.setenv("SF_ID", "id")
    monkeypatch.setenv("SF_SECRET", "credential")
    config = tmp / "crmtier.toml"
    config.write_text(f"{CRM_TABLE}\n[state]\nurl = {state}\n", encoding="utf-8")
    (tmp / "candidate.toml").write_text("", encoding="utf-8")
    (tmp / "rms.toml").write_text("[coverage.advisors]\nU1 = 10\n", encoding="utf-8")
    return config


def _run(tmp: Path, args: tuple[str, ...], config: Path) -> Result:
    argv = [a.format(tmp=tmp) for a in args]
    return CliRunner().invoke(cli, [*argv, "--config", str(config)], env={"COLUMNS": "500"})


#: every command that opens the state store but ``worker`` (whose config needs a
#: PostgreSQL URL: it resolves the URL at load) -> its arguments ({tmp}: the test's directory)
OPENING_THE_STORE = {name: args for name, args in COMMANDS.items() if name != "worker"}


@pytest.mark.parametrize("command", sorted(OPENING_THE_STORE))
def test_a_state_url_variable_unset_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """The store's URL is the one secret resolved only when the store is opened, after
    the config loaded: its variable unset is a configuration problem like any other."""
    monkeypatch.delenv("CRMTIER_TEST_UNSET_STATE_URL", raising=False)
    config = _config(tmp_path, monkeypatch, '"env:CRMTIER_TEST_UNSET_STATE_URL"')
    args = OPENING_THE_STORE[command]
    result = _run(tmp_path, args, config)
    assert isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"crmtier {args[0]}: {config}: [state] url: environment variable "
        "CRMTIER_TEST_UNSET_STATE_URL is not set"
    ]


def _policy_broken_since_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy file loaded when the config did, and no longer when the run starts
    (``make_engine`` reads it again: an admin's edit between ``--every`` ticks)."""

    def broken(path: Path | None) -> Any:
        raise PolicyError(["[value.tiers] private: aum_floor must be > 0"], "policy.toml")

    monkeypatch.setattr("tiering_core.policy.load_policy", broken)


#: a load-time failure of ``crmtier sync`` -> (how it is made, arguments, the line's start)
LOAD_TIME: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], tuple[str, ...], str]] = {
    "every-not-an-interval": (
        lambda mp: None,
        ("sync", "--every", "5x"),
        "Invalid value for '--every': '5x' is not an interval",
    ),
    "policy-broken-at-run": (
        _policy_broken_since_load,
        ("sync", "--quiet"),
        "crmtier sync: policy.toml: [value.tiers] private: aum_floor must be > 0",
    ),
}


@pytest.mark.parametrize("case", sorted(LOAD_TIME))
def test_a_load_time_failure_of_sync_exits_2_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    make, args, said = LOAD_TIME[case]
    config = _config(tmp_path, monkeypatch, f'"sqlite:///{tmp_path / "state.db"}"')
    make(monkeypatch)
    result = _run(tmp_path, args, config)
    assert isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == 2, result.output
    assert said in result.output, result.output
    assert "Traceback" not in result.output


class _Bug(ValueError):
    """A ValueError no configuration explains."""


def _answer_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The start checks fail to read an answer of the CRM (a parse that raises)."""

    def require(*args: object, **kwargs: object) -> None:
        raise _Bug("invalid literal for int() with base 10: 'n/a'")

    monkeypatch.setattr("sync.write_readiness.require", require)


def _engine_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ValueError deep in the run, past its start checks."""

    def run(self: object, options: object = None) -> None:
        raise _Bug("the assessment lost or added customers")

    monkeypatch.setattr("sync.write_readiness.require", lambda *a, **k: None)
    monkeypatch.setattr("sync.engine.SyncEngine.run", run)


#: where an unexpected ValueError comes from -> how it is made
UNEXPECTED: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "crm-answer-unreadable": _answer_unreadable,
    "engine-bug": _engine_bug,
}


@pytest.mark.parametrize("every", [(), ("--every", "1s")], ids=["one-run", "first-tick"])
@pytest.mark.parametrize("source", sorted(UNEXPECTED))
def test_an_unexpected_value_error_in_a_run_keeps_its_traceback_not_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, every: tuple[str, ...]
) -> None:
    config = _config(tmp_path, monkeypatch, f'"sqlite:///{tmp_path / "state.db"}"')
    UNEXPECTED[source](monkeypatch)
    result = _run(tmp_path, ("sync", "--quiet", *every), config)
    assert isinstance(result.exception, _Bug), result.output  # the console script's traceback
    assert result.exit_code == 1
    assert "crmtier sync:" not in result.stderr  # no line telling the admin to fix anything


@pytest.mark.parametrize("command", ["serve", "worker", "sync"])
def test_a_log_level_logging_does_not_know_is_a_usage_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """``--log-level LOUD`` ended ``serve`` and ``worker`` in logging's ``ValueError``
    traceback; every command's bad input is one line and exit 2 (README, "Commands")."""
    config = _config(tmp_path, monkeypatch, '"sqlite:///nowhere.db"')
    result = CliRunner().invoke(cli, [command, "--config", str(config), "--log-level", "LOUD"])
    assert result.exit_code == 2, result.output
    assert "--log-level" in result.output and "Traceback" not in result.output
    assert not isinstance(result.exception, ValueError)


@pytest.mark.parametrize("command", ["serve", "worker", "sync"])
@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "critical"])
def test_every_level_logging_names_is_still_a_log_level(command: str, level: str) -> None:
    """The usage check on ``--log-level`` refuses only what logging does not know: a unit
    file starting ``serve --log-level CRITICAL`` ran before it and must still start."""
    found = cli.get_command(click.Context(cli), command)
    assert found is not None
    option = next(p for p in found.params if p.name == "log_level")
    assert option.type.convert(level, option, None) == level.upper()
