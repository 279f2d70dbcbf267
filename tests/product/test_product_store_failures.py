"""Every command that opens the state store meets one it cannot reach or use with one line
on stderr naming the store (its password masked) and what to check, and the exit status
README.md documents ("Commands"): 1 for a store it cannot reach or create, 2 for one it
cannot use as configured; never a traceback, never the password (crmtier/store_failures.py,
applied to every command in crmtier/cli.py).

Before, only ``crmtier sync`` did: simulate, explain, report, serve, worker, audit and the
others ended in SQLAlchemy's traceback on a PostgreSQL server nobody listens on, in an
``OSError``'s on a SQLite path whose directory cannot be made, and a store written by a
newer crmtier (``SchemaTooNewError``, then no ``StoreError``) ended every command so;
``crmtier doctor`` stopped in a traceback on that SQLite path. The commands run as a user
runs them: the CLI in-process (``CliRunner``, whose ``exception`` is what the console
script would have printed as a traceback), and once as the console script itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from crmtier.cli import cli
from sync.schema import schema_version
from sync.store import StateStore

#: a PostgreSQL URL nobody listens on (port 1), with a password that must never show
UNREACHABLE = "postgresql+psycopg://u:secret@127.0.0.1:1/x"
MASKED = "postgresql+psycopg://u:***@127.0.0.1:1/x"

CRM = """
[crm]
kind = "salesforce"
base_url = "https://127.0.0.1:1"
client_id = "env:SF_ID"
client_secret = "env:SF_CREDENTIAL"
"""


def _unreachable(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """``[state] url`` from the environment (a URL with a password may not be written in
    the file), and how the line names the store."""
    monkeypatch.setenv("CRMTIER_STATE_URL", UNREACHABLE)
    return '"env:CRMTIER_STATE_URL"', MASKED


def _uncreatable(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A SQLite file under a directory that does not exist and cannot be made: a plain
    file stands where it would be (a directory that is merely missing is created, 0700,
    by the first open: sync/store_engine.py)."""
    (tmp / "not-a-dir").write_text("", encoding="utf-8")
    db = tmp / "not-a-dir" / "state" / "state.db"
    return f'"sqlite:///{db}"', f"sqlite:///{db}"


def _newer_schema(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A SQLite store a newer crmtier wrote: its sync schema is at a version this one
    does not know."""
    url = f"sqlite:///{tmp / 'state.db'}"
    StateStore.open(url).close()
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                schema_version.update()
                .where(schema_version.c.component == "sync")
                .values(version=99)
            )
    finally:
        engine.dispose()
    return f'"{url}"', "schema version 99"


Store = Callable[[Path, pytest.MonkeyPatch], tuple[str, str]]
#: store id -> (how it is made, the exit status README.md documents for it)
STORES: dict[str, tuple[Store, int]] = {
    "pg-nobody-listens": (_unreachable, 1),
    "sqlite-dir-impossible": (_uncreatable, 1),
    "newer-schema": (_newer_schema, 2),
}

#: command id -> its arguments (besides --config); {tmp} is the test's directory
COMMANDS: dict[str, tuple[str, ...]] = {
    "sync": ("sync", "--quiet"),
    "sync-every": ("sync", "--every", "1s", "--quiet"),
    "sync-dead-letters": ("sync", "--dead-letters"),
    "serve": ("serve",),
    "worker": ("worker",),
    "report": ("report", "--output", "{tmp}/report.html"),
    "audit-verify": ("audit", "verify"),
    "audit-show": ("audit", "show"),
    "simulate": ("simulate", "--policy", "{tmp}/candidate.toml"),
    "explain": ("explain", "C1"),
    "coverage-write": ("coverage", "--write", "--roster", "{tmp}/rms.toml"),
}

CASES = [
    pytest.param(command, store, id=f"{command}-{store}")
    for command in COMMANDS
    for store in STORES
    # a worker's queue lives in a PostgreSQL store only: the config refuses SQLite first
    if command != "worker" or store == "pg-nobody-listens"
]


def _config(tmp: Path, monkeypatch: pytest.MonkeyPatch, store: str) -> tuple[Path, str]:
    """crmtier.toml over the store ``store``, and how a line names that store."""
    monkeypatch.setenv("SF_ID", "id")
    monkeypatch.setenv("SF_CREDENTIAL", "credential")
    url, named = STORES[store][0](tmp, monkeypatch)
    workers = '[workers]\nengine = "procrastinate"\n' if store == "pg-nobody-listens" else ""
    config = tmp / "crmtier.toml"
    config.write_text(f"{CRM}\n[state]\nurl = {url}\n{workers}", encoding="utf-8")
    (tmp / "candidate.toml").write_text("", encoding="utf-8")
    (tmp / "rms.toml").write_text("[coverage.advisors]\nU1 = 10\n", encoding="utf-8")
    return config, named


def _run(args: list[str]) -> Result:
    """``crmtier ARGS``, on a terminal wide enough for doctor's lines not to wrap."""
    return CliRunner().invoke(cli, args, env={"COLUMNS": "500"})


@pytest.mark.parametrize(("command", "store"), CASES)
def test_a_store_it_cannot_reach_or_use_is_one_line_and_the_documented_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, store: str
) -> None:
    config, named = _config(tmp_path, monkeypatch, store)
    args = [a.format(tmp=tmp_path) for a in COMMANDS[command]]
    result = _run([*args, "--config", str(config)])
    # anything but SystemExit escaping the command is a traceback from the console script
    assert isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == STORES[store][1], result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"crmtier {args[0]}: "), lines[0]
    assert named in lines[0]
    assert "check" in lines[0] or "upgrade crmtier" in lines[0]  # what to do about it
    assert "Traceback" not in result.output + result.stderr
    assert "secret" not in result.output + result.stderr


def test_a_password_in_the_urls_query_is_not_shown_either(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libpq also takes the password as a query parameter (psycopg passes the query on):
    the line leaves such parameters out and keeps the others."""
    config, _ = _config(tmp_path, monkeypatch, "pg-nobody-listens")
    url = "postgresql+psycopg://u@127.0.0.1:1/x?password=secret&connect_timeout=5"
    monkeypatch.setenv("CRMTIER_STATE_URL", url)
    result = _run(["audit", "verify", "--config", str(config)])
    assert result.exit_code == 1, result.exc_info
    assert "cannot reach postgresql+psycopg://u@127.0.0.1:1/x?connect_timeout=5: " in (
        result.stderr
    )
    assert "secret" not in result.output + result.stderr


def test_the_console_script_prints_the_one_line_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ``crmtier`` console script (``python -m crmtier``), not only ``cli`` in-process."""
    config, _ = _config(tmp_path, monkeypatch, "pg-nobody-listens")
    run = subprocess.run(
        [sys.executable, "-m", "crmtier", "explain", "C1", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        timeout=120,
        check=False,
    )
    assert run.returncode == 1, run.stderr[-2000:]
    assert run.stderr.splitlines() == [
        "crmtier explain: state store failed: cannot reach "
        f"{MASKED}: OperationalError: connection failed: connection to "
        'server at "127.0.0.1", port 1 failed: Connection refused; check that the database '
        "is up and reachable from this host, and [state] url"
    ]


@pytest.mark.parametrize("store", ["pg-nobody-listens", "sqlite-dir-impossible"])
def test_doctor_reports_the_store_as_a_failed_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    """``crmtier doctor`` prints a failed ``state store`` line with what to check, the
    other lines after it, and exits 1 (an error in its checklist); no traceback."""
    config, _ = _config(tmp_path, monkeypatch, store)
    result = _run(["doctor", "--config", str(config)])
    assert isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == 1, result.output
    line = next(ln for ln in result.output.splitlines() if "state store " in ln)
    assert "✗" in line
    expected = (
        f"cannot reach {MASKED}: OperationalError"
        if store == "pg-nobody-listens"
        else f"{tmp_path}/not-a-dir/state/state.db cannot be created: "
        f"{tmp_path}/not-a-dir is not a directory"
    )
    assert expected in line, line
    assert "check " in line
    assert "webhook settings" in result.output  # the checklist went on
    assert "Traceback" not in result.output + result.stderr
    # doctor's own advice "set [state] audit_key to a secret reference" aside
    assert not re.search(r"secret(?! reference)", result.output + result.stderr)


#: ``[state] url`` values the store cannot be opened with as written, and what the line says
MISWRITTEN = {
    "port-not-a-number": ("postgresql+psycopg://u:secret@127.0.0.1:5a432/x", "not a database URL"),
    "driver-not-installed": ("postgresql://u:secret@127.0.0.1:1/x", "driver 'psycopg2' not"),
    "driver-unknown": ("postgresql+pg://u:secret@127.0.0.1:1/x", "no database driver"),
    "option-unknown": (
        "postgresql+psycopg://u:secret@127.0.0.1:1/x?ssl_mode=require",
        'refused by its driver: ProgrammingError: invalid connection option "ssl_mode"',
    ),
}


@pytest.mark.parametrize("command", ["audit-verify", "explain", "sync"])
@pytest.mark.parametrize("url", sorted(MISWRITTEN))
def test_a_miswritten_store_url_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, command: str
) -> None:
    """A URL the store cannot be opened with as written (a typo in its port, the plain
    ``postgresql://`` that asks for psycopg2 where crmtier ships psycopg 3, a driver or a
    connection option that does not exist) is a configuration problem: one line, exit 2,
    as README.md says. Every command but ``sync`` ended in a traceback (``ValueError``,
    ``ModuleNotFoundError``, the driver's ``ProgrammingError``), exit 1."""
    config, _ = _config(tmp_path, monkeypatch, "pg-nobody-listens")
    # no [workers] table: its check of the URL at load would say it first (an inline
    # engine, the default, has no such check)
    config.write_text(f'{CRM}\n[state]\nurl = "env:CRMTIER_STATE_URL"\n', encoding="utf-8")
    value, said = MISWRITTEN[url]
    monkeypatch.setenv("CRMTIER_STATE_URL", value)
    args = [a.format(tmp=tmp_path) for a in COMMANDS[command]]
    result = _run([*args, "--config", str(config)])
    assert isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"crmtier {args[0]}: [state] url: "), lines[0]
    assert said in lines[0], lines[0]
    assert "secret" not in result.output + result.stderr


@pytest.mark.parametrize("command", ["audit-verify", "sync-dead-letters"])
def test_sql_the_store_s_schema_refuses_is_a_bug_s_traceback_not_a_store_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """A SQLite store whose tables do not match crmtier's SQL (here a table gone: a hand
    edit, or a migration's bug) makes SQLite refuse the statement (``SQLITE_ERROR``,
    which Python's sqlite3 raises as ``OperationalError``, as it does a busy or
    unreadable file). That is no store away, to wait out: the command ends in its
    traceback, as PostgreSQL's ``ProgrammingError`` does. It ended in "state store
    failed: OperationalError: no such table", exit 1, and ``sync --every`` retried it."""
    url = f"sqlite:///{tmp_path / 'renamed.db'}"
    StateStore.open(url).close()
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for table in ("audit", "dead_letters"):
                conn.execute(sa.text(f"ALTER TABLE {table} RENAME TO {table}_gone"))
    finally:
        engine.dispose()
    monkeypatch.setenv("SF_ID", "id")
    monkeypatch.setenv("SF_CREDENTIAL", "credential")
    config = tmp_path / "crmtier.toml"
    config.write_text(f'{CRM}\n[state]\nurl = "{url}"\n', encoding="utf-8")
    args = [a.format(tmp=tmp_path) for a in COMMANDS[command]]
    result = _run([*args, "--config", str(config)])
    assert isinstance(result.exception, sa.exc.OperationalError), result.stderr
    assert "no such table" in str(result.exception)
    assert "state store failed" not in result.stderr
