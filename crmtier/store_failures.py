"""How every command meets a state store it cannot reach or use: one line, one exit status.

The line goes to stderr as ``crmtier COMMAND: ...``, names the store (``_masked``: the
URL without its password) and says what to check; the exit status is the one README.md
documents ("Commands"), as ``crmtier sync`` always used it:

* 1: the store could not be reached or opened (the database down or restarting, a host
  or port nobody listens on, a SQLite file that cannot be created where ``[state] url``
  puts it). Nothing was wrong with the run itself; the next one may find the store back.
* 2: the store cannot be used as configured (``StoreError``: encrypted under another
  key, written by a newer crmtier, a remote server without ``sslmode=verify-full``, a URL
  that is none or names no database, a driver not installed or unknown, a connection
  option the driver refuses), a configuration problem as in every command.

Not a statement the store's schema refuses (SQLite's ``SQLITE_ERROR``, which Python's
sqlite3 raises as ``OperationalError`` too; PostgreSQL's ``ProgrammingError``): a bug,
left to its traceback.

``opening`` wraps the open, where the URL is known (``CrmtierConfig.open_state_store``,
``crmtier doctor``'s state store line); ``failure`` turns what escapes a command into its
line and status. ``crmtier.cli`` applies it to every command, so none handles it itself.
``unreadable`` says the same, with what to do, on ``crmtier doctor``'s lines that read
the store beside its own (``workers``, ``withdrawals``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
)

from sync.crypto import StoreError
from sync.errortext import error_text

EXIT_UNREACHABLE, EXIT_UNUSABLE = 1, 2
#: query parameters of a database URL that can carry a password (libpq's ``password``,
#: ``sslpassword``; psycopg passes the URL's query on to libpq as connection parameters)
_SECRET_PARAMETER = re.compile(r"pass|secret|token", re.I)


class StoreUnreachableError(Exception):
    """The configured state store could not be reached or opened: the command ends with
    exit 1 and this one line, and a later run may succeed. ``detail`` names the store and
    what went wrong, ``hint`` what to check (``crmtier doctor`` shows them apart)."""

    def __init__(self, detail: str, hint: str) -> None:
        super().__init__(f"{detail}; check {hint}")
        self.detail = detail
        self.hint = hint


class StoreRefusedError(StoreError):
    """The database server answered and refused the URL's user, password or database: a
    store unusable as configured (exit 2, as every ``StoreError``). ``detail`` and
    ``hint`` as ``StoreUnreachableError``'s, for ``crmtier doctor``'s lines."""

    def __init__(self, detail: str, hint: str) -> None:
        super().__init__(f"{detail}; check {hint}")
        self.detail = detail
        self.hint = hint


@dataclass(frozen=True)
class StoreFailure:
    """What went wrong with the store and what to check (``reason``), and the exit status."""

    reason: str
    exit_code: int

    @property
    def line(self) -> str:
        """What a command prints after ``crmtier COMMAND:`` (a ``StoreError`` says by itself
        that it is about the state store)."""
        if self.exit_code == EXIT_UNUSABLE:
            return self.reason
        return f"state store failed: {self.reason}"


#: what is said of a ``[state] url`` that is not a database URL (never the URL itself: a
#: malformed one may hold its password anywhere)
NOT_A_URL = "[state] url: not a database URL"


def parsed_url(url: str) -> URL | None:
    """The URL, or None when it is not one: SQLAlchemy raises ``ArgumentError`` for a
    string of another shape and ``ValueError`` for a port that is not a number."""
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        return None


def _masked(parsed: URL) -> str:
    """The store's URL as it may be shown: the password masked, query parameters that can
    hold one left out (a URL SQLAlchemy cannot parse is not shown at all: ``NOT_A_URL``)."""
    hidden = [name for name in parsed.query if _SECRET_PARAMETER.search(name)]
    return parsed.difference_update_query(hidden).render_as_string(hide_password=True)


def _driver_missing(parsed: URL) -> str | None:
    """What is wrong with the URL's database driver, if anything: a driver SQLAlchemy does
    not know (``postgresql+foo``), or one not installed (``postgresql://`` asks for
    psycopg2; crmtier ships psycopg 3). Asked before the open, so that a driver's import
    failing there is not taken for the store's. Other databases: ``sync.store_engine``
    refuses them by name."""
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        return None
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError:
        return f"[state] url: no database driver {parsed.drivername!r}"
    except ImportError:
        return f"[state] url: driver {parsed.get_driver_name()!r} not installed"
    return None


@contextmanager
def opening(url: str) -> Iterator[None]:
    """Inside: opening the store at ``url``. A store unusable as configured stays a
    ``StoreError`` (its subclass kept: ``crmtier doctor`` tells a pending encryption
    apart), its message now naming the store; one that cannot be reached or created
    becomes ``StoreUnreachableError``. The driver's message never carries the password
    (libpq names host, port and user), but it is taken out should one ever quote it."""
    parsed = parsed_url(url)
    if parsed is None:
        raise StoreError(NOT_A_URL)
    store = _masked(parsed)
    missing = _driver_missing(parsed)
    if missing is not None:
        raise StoreError(
            f"{missing}; use sqlite:///path or postgresql+psycopg://... (state store {store})"
        )
    try:
        yield
    except StoreError as exc:
        exc.args = (f"{exc} (state store {store})",)
        raise
    except OperationalError as exc:
        if _sql_refused(exc):
            raise
        if _login_refused(exc):  # the server answered: the URL's user, password or database
            raise StoreRefusedError(
                f"[state] url: refused by {store}: {_scrubbed(error_text(exc), parsed)}",
                "the user, password and database name it gives",
            ) from None
        raise StoreUnreachableError(
            f"cannot reach {store}: {_scrubbed(error_text(exc), parsed)}",
            "that the database is up and reachable from this host, and [state] url",
        ) from None
    except DBAPIError as exc:
        if exc.statement is not None:  # a statement failed, not the connection: a bug
            raise
        # the driver refused the URL before any statement (an option it does not know)
        raise StoreError(
            f"[state] url: refused by its driver: {_scrubbed(error_text(exc), parsed)} "
            f"(state store {store})"
        ) from None
    except OSError as exc:  # the SQLite file or its directory cannot be made there
        raise StoreUnreachableError(
            f"cannot create {store}: {type(exc).__name__}: {exc.strerror or exc}: {exc.filename}",
            "[state] url: its directory must exist or be one crmtier can create",
        ) from None


def failure(exc: BaseException) -> StoreFailure | None:
    """The line and exit status for ``exc`` when it is the state store failing; ``None``
    for anything else (left to the command, or a bug's traceback). A driver error raised
    after the open (the database went away mid-command) has no URL to name."""
    if isinstance(exc, StoreUnreachableError):
        return StoreFailure(str(exc), EXIT_UNREACHABLE)
    if isinstance(exc, StoreError):
        return StoreFailure(str(exc), EXIT_UNUSABLE)
    if isinstance(exc, OperationalError) and not _sql_refused(exc):
        return StoreFailure(error_text(exc), EXIT_UNREACHABLE)
    return None


@dataclass(frozen=True)
class Unreadable:
    """Why a read of the state store failed (``detail``: the store named, its password
    masked, and the database's one-line message) and what to do (``fix``). For ``crmtier
    doctor``'s lines that read the store beside its ``state store`` line (the live
    workers, what crmtier made), which said only the exception's type."""

    detail: str
    fix: str


#: what a read of the store raises when the store, not crmtier, is at fault: what a
#: caller of ``unreadable`` catches (anything else is a bug, left to its traceback)
STORE_READ_ERRORS = (StoreError, StoreUnreachableError, DBAPIError)


def unreadable(exc: Exception, url: str, schema_fix: str) -> Unreadable:
    """What ``exc`` (one of ``STORE_READ_ERRORS``), raised by a read of the store at
    ``url`` inside ``opening(url)``, tells an operator: the store unreachable or refusing
    the URL's login (their own detail and hint), the URL unusable (``StoreError``, naming
    the store), a query the store's schema refuses (its tables missing or of another
    version: ``schema_fix``, which only the caller knows), or another failure with the
    database's message."""
    if isinstance(exc, StoreUnreachableError | StoreRefusedError):
        return Unreadable(exc.detail, f"check {exc.hint}")
    if isinstance(exc, StoreError):
        return Unreadable(str(exc), "check [state] url")
    parsed = parsed_url(url)
    if parsed is None:  # opening(url) refuses it first; never show a URL that is none
        return Unreadable(f"{NOT_A_URL}: {type(exc).__name__}", "check [state] url")
    store, text = _masked(parsed), _scrubbed(error_text(exc), parsed)
    if _schema_unlike(exc):
        return Unreadable(f"{store} refused the query: {text}", schema_fix)
    return Unreadable(
        f"reading {store} failed: {text}",
        "check the rights of the URL's user, the database's log, and [state] url",
    )


#: PostgreSQL's SQLSTATEs of a query naming what the schema does not have: undefined
#: table, column, function (PostgreSQL manual, "PostgreSQL Error Codes"); a permission
#: denied (42501) is in the same class and no schema problem
_UNDEFINED = ("42P01", "42703", "42883")


def _schema_unlike(exc: Exception) -> bool:
    """The store's schema is not the one the query expects: PostgreSQL names a table,
    column or function it lacks, or SQLite refuses the statement (``_sql_refused``)."""
    if isinstance(exc, ProgrammingError):
        return getattr(exc.orig, "sqlstate", None) in _UNDEFINED
    return isinstance(exc, OperationalError) and _sql_refused(exc)


def _sql_refused(exc: OperationalError) -> bool:
    """SQLite refused the statement itself (``SQLITE_ERROR``: no such table or column, a
    syntax error): crmtier's SQL and the store's schema disagree, a bug to see in full
    (its traceback: the engine hides SQL parameters), as PostgreSQL's
    ``ProgrammingError`` is. Python's sqlite3 raises it as ``OperationalError``, like a
    store that is away (busy, unreadable, full), which is what a line and exit 1 are for.
    SQLite's "Result and Error Codes" (https://www.sqlite.org/rescode.html), and Python's
    sqlite3 "Exceptions" (``sqlite_errorname``, Python 3.11)."""
    return getattr(exc.orig, "sqlite_errorname", None) == "SQLITE_ERROR"


#: PostgreSQL's answers to a connection it refuses as configured (``FATAL`` messages of
#: the server's authentication and start-up: "Client Authentication" and "Managing
#: Databases" in the PostgreSQL documentation). Not retried as a store away: a
#: ``crmtier sync --every`` would try a wrong password for five ticks. A server starting
#: up or shutting down says ``FATAL`` too, and stays "cannot reach" (exit 1).
_LOGIN_REFUSED = (
    "password authentication failed",
    "no pg_hba.conf entry",
    'role "',  # role "x" does not exist
    'database "',  # database "x" does not exist
)


def _login_refused(exc: OperationalError) -> bool:
    text = str(exc.orig)
    return "FATAL:" in text and any(marker in text for marker in _LOGIN_REFUSED)


def _scrubbed(text: str, parsed: URL) -> str:
    password = parsed.password
    return text.replace(str(password), "***") if password else text
