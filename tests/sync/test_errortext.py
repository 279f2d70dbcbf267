"""An unexpected error becomes one bounded line without the values libraries quote: a
customer's input (pydantic ``input_value``), SQL parameters (SQLAlchemy), PostgreSQL's
DETAIL line; the JSON log line of ``log.exception`` uses the same text."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from sync import jsonlog
from sync.errortext import MAX_CHARS, error_text

SECRET_NAME = "王小明 13800138000"


class Person(BaseModel):
    age: int
    country: str


def validation_error() -> Exception:
    try:
        Person.model_validate({"age": SECRET_NAME, "country": 7})
    except Exception as exc:
        return exc
    raise AssertionError("no error")


def statement_error() -> Exception:
    engine = sa.create_engine("sqlite://")
    table = sa.Table("t", sa.MetaData(), sa.Column("name", sa.String, primary_key=True))
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"name": SECRET_NAME}])
        try:
            conn.execute(table.insert(), [{"name": SECRET_NAME}])
        except Exception as exc:
            return exc
    raise AssertionError("no error")


class DetailError(Exception):
    """Stands in for a psycopg error: primary message, then DETAIL quoting the key."""


def postgres_style_error() -> Exception:
    return sa.exc.IntegrityError(
        "INSERT INTO t VALUES (%(name)s)",
        {"name": SECRET_NAME},
        DetailError(f"duplicate key value\nDETAIL:  Key (name)=({SECRET_NAME}) exists."),
    )


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (
            validation_error,
            "ValidationError: 2 invalid in Person: age: Input should be a valid integer",
        ),
        (statement_error, "IntegrityError: UNIQUE constraint failed: t.name"),
        (postgres_style_error, "IntegrityError: DetailError: duplicate key value"),
        (
            lambda: RuntimeError(f"line one\r\nline two {SECRET_NAME}"),
            "RuntimeError: line one line two",
        ),
    ],
)
def test_error_text_is_one_line_without_quoted_values(
    make: Callable[[], Exception], expected: str
) -> None:
    text = error_text(make())
    assert text.startswith(expected)
    assert "\n" not in text and "\r" not in text
    if "RuntimeError" not in expected:  # our own messages are ours to word
        assert SECRET_NAME not in text and "138" not in text


def test_error_text_is_bounded() -> None:
    text = error_text(ValueError("x" * 5000))
    assert len(text) == MAX_CHARS and text.endswith("…")


def test_a_logged_exception_carries_the_same_text_and_no_input() -> None:
    out = io.StringIO()
    logger = logging.getLogger("test.errortext")
    handler = logging.StreamHandler(out)
    handler.setFormatter(jsonlog.JsonFormatter())
    logger.addHandler(handler)
    try:
        try:
            raise validation_error()
        except Exception:
            logger.exception("run failed")
    finally:
        logger.removeHandler(handler)
    entry = json.loads(out.getvalue())
    assert entry["error"] == error_text(validation_error())
    assert SECRET_NAME not in out.getvalue()
