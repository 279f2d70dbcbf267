"""One line naming an unexpected error, safe to log and to keep in the state store.

Errors crmtier raises itself name fields, records (by pseudonym) and codes, never values.
Errors it merely passes on may quote their input: pydantic's ``ValidationError`` prints
``input_value=...`` (a customer's own data), SQLAlchemy's statement errors print the bound
parameters (customer ids, decisions). So an unexpected error is described by its type
and its message with those parts left out, on one line (a CR/LF inside a quoted value
must not split a log line), and bounded in length.
"""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy.exc import StatementError

MAX_CHARS = 300


def error_text(exc: BaseException) -> str:
    """``Type: message`` without input values or SQL parameters, one line, bounded."""
    if isinstance(exc, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
        )
        message = f"{exc.error_count()} invalid in {exc.title}: {problems}"
    elif isinstance(exc, StatementError):
        # The driver's primary message only: SQLAlchemy appends the statement and its
        # parameters, and PostgreSQL's DETAIL line quotes the conflicting key's values.
        # The driver's type is named only where it says more than SQLAlchemy's own (DB-API
        # drivers name theirs alike: "OperationalError: OperationalError: ..." said nothing).
        lines = str(exc.orig).strip().splitlines()
        first = lines[0] if lines else ""
        same = type(exc.orig).__name__ == type(exc).__name__
        message = first if same else f"{type(exc.orig).__name__}: {first}"
    else:
        message = str(exc)
    text = " ".join(f"{type(exc).__name__}: {message}".split())
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"
