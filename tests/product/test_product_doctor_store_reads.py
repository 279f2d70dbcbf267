"""``crmtier doctor``'s lines that read the state store beside its ``state store`` line
(the live ``workers``, the ``withdrawals`` of what crmtier made) say which store (its
password masked), why it could not be read and what to do: unreachable, the login
refused, its tables missing or of another version, or another failure with the
database's one-line message. They said only "could not count them: OperationalError" and
"fix the state store" (crmtier/store_failures.py, ``unreadable``).

Against a real PostgreSQL (a port nobody listens on, a database that does not exist, a
queue table of another version, a user without rights) and SQLite (a table of another
version, a file that is no database).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from connectors.contract import SchemaCheck
from crmtier.cli import cli
from crmtier.commands.doctor_withdrawals import STORE_SCHEMA_FIX, check_withdrawals
from crmtier.commands.doctor_workers import QUEUE_SCHEMA_FIX, check_workers
from crmtier.config import load_config
from sync.store import StateStore
from tests.product.test_product_store_failures import CRM
from tests.sync.conftest import PG_URL, pg_schema

PG = "postgresql+psycopg://postgres:secret@127.0.0.1"


@contextmanager
def _unreachable() -> Iterator[tuple[str, str]]:
    yield f"{PG}:1/test", "postgresql+psycopg://postgres:***@127.0.0.1:1/test"


@contextmanager
def _no_database() -> Iterator[tuple[str, str]]:
    yield f"{PG}:5432/no_such_database", "postgresql+psycopg://postgres:***@127.0.0.1:5432/"


@contextmanager
def _queue_of_another_version() -> Iterator[tuple[str, str]]:
    """A ``procrastinate_workers`` table without the heartbeat column crmtier reads."""
    with pg_schema() as name:
        url = f"{PG}:5432/test?options=-csearch_path%3D{name}"
        _execute(url, "CREATE TABLE procrastinate_workers (id bigint)")
        yield url, "postgresql+psycopg://postgres:***@127.0.0.1:5432/test?options="


@contextmanager
def _no_rights() -> Iterator[tuple[str, str]]:
    """The URL's user may use the schema, not read the queue's table."""
    with pg_schema() as name:
        role = f"{name}_reader"
        _execute(
            f"{PG_URL}?options=-csearch_path%3D{name}",
            "CREATE TABLE procrastinate_workers (id bigint, last_heartbeat timestamptz)",
            f'CREATE ROLE "{role}" LOGIN',
            f'GRANT USAGE ON SCHEMA "{name}" TO "{role}"',
        )
        try:
            at = f"127.0.0.1:5432/test?options=-csearch_path%3D{name}"
            url = f"postgresql+psycopg://{role}:secret@{at}"
            yield url, f"postgresql+psycopg://{role}:***@127.0.0.1:5432/test"
        finally:
            _execute(PG_URL, f'DROP OWNED BY "{role}"', f'DROP ROLE "{role}"')


def _execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url.replace(":secret", ""))
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


#: PostgreSQL store -> (how it is made, what the workers line says after the store, the fix)
WORKERS: dict[str, tuple[Callable[[], Any], str, str]] = {
    "pg-port-nobody-listens": (
        _unreachable,
        ": OperationalError: connection failed",
        "check that the database is up and reachable from this host, and [state] url",
    ),
    "pg-database-missing": (
        _no_database,
        'database "no_such_database" does not exist',
        "check the user, password and database name it gives",
    ),
    "pg-queue-of-another-version": (
        _queue_of_another_version,
        'refused the query: ProgrammingError: UndefinedColumn: column "last_heartbeat" '
        "does not exist",
        QUEUE_SCHEMA_FIX,
    ),
    "pg-user-without-rights": (
        _no_rights,
        "failed: ProgrammingError: InsufficientPrivilege: permission denied for table "
        "procrastinate_workers",
        "check the rights of the URL's user, the database's log, and [state] url",
    ),
}


def _config(tmp: Path, monkeypatch: pytest.MonkeyPatch, url: str, workers: bool) -> Path:
    monkeypatch.setenv("SF_ID", "id")
    monkeypatch.setenv("SF_CREDENTIAL", "credential")
    monkeypatch.setenv("CRMTIER_STATE_URL", url)
    section = '[workers]\nengine = "procrastinate"\n' if workers else ""
    config = tmp / "crmtier.toml"
    config.write_text(f'{CRM}\n[state]\nurl = "env:CRMTIER_STATE_URL"\n{section}', encoding="utf-8")
    return config


def _one(checks: list[SchemaCheck]) -> SchemaCheck:
    [check] = checks
    assert not check.ok and check.severity == "error", check
    assert "secret" not in check.detail + check.fix
    return check


@pytest.mark.postgres
@pytest.mark.parametrize("store", sorted(WORKERS))
def test_the_workers_line_says_which_store_why_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    make, why, fix = WORKERS[store]
    with make() as (url, named):
        config = load_config(_config(tmp_path, monkeypatch, url, workers=True))
        check = _one(check_workers(config))
    assert check.detail.startswith("could not count them: "), check.detail
    assert named in check.detail and why in check.detail, check.detail
    assert check.fix == fix


@pytest.mark.postgres
def test_doctor_prints_the_workers_line_with_the_store_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The line as an operator reads it, in the checklist (no traceback, exit 1)."""
    config = _config(tmp_path, monkeypatch, f"{PG}:1/test", workers=True)
    result = CliRunner().invoke(cli, ["doctor", "--config", str(config)], env={"COLUMNS": "900"})
    assert isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == 1
    [line] = [ln for ln in result.output.splitlines() if " workers " in ln]
    masked = "postgresql+psycopg://postgres:***@127.0.0.1:1/test"
    assert f"could not count them: cannot reach {masked}" in line
    assert "check that the database is up" in line
    assert not re.search(r"secret(?! reference)", result.output)  # doctor's audit key advice


def _renamed_column(db: Path) -> None:
    """The ``side_effects`` table of another version: a column crmtier reads is gone."""
    url = f"sqlite:///{db}"
    StateStore.open(url).close()
    _execute(url, "ALTER TABLE side_effects RENAME COLUMN kind TO kind_gone")


def _not_a_database(db: Path) -> None:
    db.write_bytes(b"not a SQLite file at all, but long enough to have a header" * 4)


#: SQLite store -> (how it is made, what the withdrawals line says after the store, the fix)
WITHDRAWALS: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "sqlite-table-of-another-version": (
        _renamed_column,
        "refused the query: OperationalError: no such column",
        STORE_SCHEMA_FIX,
    ),
    "sqlite-not-a-database": (  # refused as the driver connects (store_failures.opening)
        _not_a_database,
        "[state] url: refused by its driver: DatabaseError: file is not a database",
        "check [state] url",
    ),
}


@pytest.mark.parametrize("store", sorted(WITHDRAWALS))
def test_the_withdrawals_line_says_which_store_why_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    make, why, fix = WITHDRAWALS[store]
    db = tmp_path / "state.db"
    make(db)
    config = load_config(_config(tmp_path, monkeypatch, f"sqlite:///{db}", workers=False))
    connector: Any = None  # not reached: the store fails before the CRM's checks
    check = _one(check_withdrawals(connector, config))
    assert check.detail.startswith("could not count what crmtier made: "), check.detail
    assert f"sqlite:///{db}" in check.detail and why in check.detail, check.detail
    assert check.fix == fix


def test_the_withdrawals_line_leaves_an_unset_url_variable_to_the_store_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(_config(tmp_path, monkeypatch, "sqlite:///x.db", workers=False))
    monkeypatch.delenv("CRMTIER_STATE_URL")
    connector: Any = None
    assert check_withdrawals(connector, config) == []


class _Bug(RuntimeError):
    """No database error: crmtier's own, which no advice about the store can mend."""


def _workers_bug(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> list[SchemaCheck]:
    def live_workers(*args: object) -> int:
        raise _Bug("customer C-0042: unexpected")

    monkeypatch.setattr("crmtier.commands.doctor_workers.live_workers", live_workers)
    url = f"{PG}:1/test"  # never connected: the count fails first
    return check_workers(load_config(_config(tmp, monkeypatch, url, workers=True)))


def _withdrawals_bug(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> list[SchemaCheck]:
    def withdrawable(*args: object, **kwargs: object) -> None:
        raise _Bug("customer C-0042: unexpected")

    monkeypatch.setattr("crmtier.commands.doctor_withdrawals.withdrawable", withdrawable)
    db = tmp / "state.db"
    StateStore.open(f"sqlite:///{db}").close()
    connector: Any = None
    config = load_config(_config(tmp, monkeypatch, f"sqlite:///{db}", workers=False))
    return check_withdrawals(connector, config)


@pytest.mark.parametrize("line", [_workers_bug, _withdrawals_bug], ids=["workers", "withdrawals"])
def test_an_error_no_database_raised_is_a_bug_s_traceback_not_advice_about_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: Callable[..., list[SchemaCheck]]
) -> None:
    """They said "could not count them: reading ... failed: _Bug: customer C-0042: ..." and
    "check the rights of the URL's user": a bug's message (which may name a customer)
    printed as a store's fault, its traceback lost."""
    with pytest.raises(_Bug):
        line(tmp_path, monkeypatch)
