"""Many rows written in few statements, straight through the database driver.

A sync writes several rows per customer (its state, its assessed inputs, an outbox item,
an audit row). Through SQLAlchemy's ``executemany`` each row cost ~20 µs of Python before
the database saw it: parameters compiled, and every value put through its column type one
call at a time. Here each column's values go through that same column type's bind
processing (SQLAlchemy's own, or on SQLite a JSON column's serializer called straight, so
the stored text is byte for byte what it wrote: JSON through ``sync.jsontext``, customer
data encrypted by ``sync.crypto``) in one ``map`` a column, and then

* on SQLite, one prepared ``INSERT`` (or ``INSERT ... ON CONFLICT DO UPDATE``) runs over
  all rows in the driver's C loop (``executemany``);
* on PostgreSQL, multi-row ``INSERT ... VALUES (...), (...)`` statements (up to
  ``_PG_PARAMS`` values each) carry the rows. ``COPY`` cannot say ``ON CONFLICT``, and a
  temporary table per page for it would cost more than the statements save.

Statements run through ``Connection.exec_driver_sql``, in the caller's transaction, with
SQLAlchemy's error wrapping (``hide_parameters``: no customer data in an error message).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from operator import itemgetter
from typing import Any, cast

import sqlalchemy as sa

from sync import jsontext
from sync.crypto import EncryptedJSON, EncryptedText, cipher_of

#: values per PostgreSQL statement (the protocol allows 65,535 parameters)
_PG_PARAMS = 30_000

Row = tuple[Any, ...]

#: a positional parameter's marker in driver SQL, by the driver's DB-API ``paramstyle``
#: (PEP 249, https://peps.python.org/pep-0249/#paramstyle): sqlite3's ``qmark``; psycopg's
#: ``pyformat`` (and pg8000's ``format``) take ``%s`` with a tuple of values
_MARKERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def marker(dialect: sa.Dialect) -> str:
    """The positional parameter marker of the dialect's driver, for SQL that goes through
    ``Connection.exec_driver_sql`` (which hands the text to the driver as it is)."""
    style = getattr(dialect.dbapi, "paramstyle", dialect.paramstyle)
    try:
        return _MARKERS[style]
    except KeyError:
        raise ValueError(
            f"state.url: database driver {dialect.driver!r} takes {style!r} parameters; "
            "use sqlite:///path or postgresql+psycopg://..."
        ) from None


def insert_rows(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[Row]
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``. JSON columns take
    plain JSON values only (None for SQL NULL): on SQLite ``JSON.NULL`` and ``sa.null()``
    skip SQLAlchemy's processor here and raise (``_processor``)."""
    _write(conn, table, columns, rows, "")


def upsert_rows(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Row],
    keys: Sequence[str],
    *,
    keep: Sequence[str] = (),
) -> None:
    """Insert ``rows``, or update the row with the same ``keys``: every column but the keys
    and ``keep`` (which a new row sets and an existing row keeps). Of rows naming the same
    key, the last one counts, as if they were written one after the other. JSON columns
    take plain JSON values only, as in ``insert_rows``."""
    if not rows:
        return
    quote = conn.dialect.identifier_preparer.quote
    updated = [c for c in columns if c not in keys and c not in keep]
    on_conflict = f" ON CONFLICT ({', '.join(map(quote, keys))}) DO " + (
        "UPDATE SET " + ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in updated)
        if updated
        else "NOTHING"
    )
    # the keys of every row in one C call a row (a generator a row cost ~1 µs)
    names = list(map(itemgetter(*[list(columns).index(k) for k in keys]), rows))
    if len(set(names)) < len(names):  # one statement may not update a row twice (PostgreSQL)
        rows = list({name: row for name, row in zip(names, rows, strict=True)}.values())
    _write(conn, table, columns, rows, on_conflict)


def next_ids(conn: sa.Connection, table: sa.Table, count: int) -> list[int]:
    """``count`` new values of ``table``'s integer key ``id``, ascending, for rows this
    transaction is about to insert: what the database would have given them.

    PostgreSQL draws them from the column's sequence. SQLite gives a new row the largest
    id plus one; this transaction holds the write lock (``BEGIN IMMEDIATE``), so nobody
    else can insert between reading that largest id and inserting."""
    if count <= 0:
        return []
    if conn.dialect.name == "postgresql":
        drawn = conn.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            (table.name, count),
        ).scalars()
        return sorted(int(i) for i in drawn)
    top = conn.execute(sa.select(sa.func.max(table.c.id))).scalar()
    first = int(top or 0) + 1
    return list(range(first, first + count))


def _write(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[Row], tail: str
) -> None:
    if not rows:
        return
    dialect = conn.dialect
    quote = dialect.identifier_preparer.quote
    # identifiers from the table's own metadata, quoted; every value is a bound parameter
    head = f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, columns))}) VALUES "  # noqa: S608
    values = _bound(dialect, table, columns, rows)
    one = "(" + ", ".join([marker(dialect)] * len(columns)) + ")"
    if dialect.name != "postgresql":
        conn.exec_driver_sql(head + one + tail, values)
        return
    per = max(1, _PG_PARAMS // len(columns))
    for start in range(0, len(values), per):
        chunk = values[start : start + per]
        flat = tuple(value for row in chunk for value in row)
        conn.exec_driver_sql(head + ", ".join([one] * len(chunk)) + tail, flat)


def decoder(column: sa.Column[Any], dialect: sa.Dialect) -> Callable[[Any], Any] | None:
    """The result processing SQLAlchemy applies to ``column``'s raw values (its JSON codec,
    its decryption in an encrypted store; None: the driver's value as it is), for rows read
    through ``Connection.exec_driver_sql``."""
    processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
    return cast("Callable[[Any], Any] | None", processor)


def _bound(
    dialect: sa.Dialect, table: sa.Table, columns: Sequence[str], rows: Sequence[Row]
) -> list[Row]:
    """The rows as the driver takes them: each value through its column type's bind
    processor, one column at a time."""
    processors = [_processor(dialect, table.c[name].type) for name in columns]
    if not any(processors):
        return list(rows)
    by_column: list[Iterable[Any]] = list(zip(*rows, strict=True))
    for i, process in enumerate(processors):
        if process is not None:
            by_column[i] = process(by_column[i])
    return list(zip(*by_column, strict=True))


#: a column's values -> what the driver takes of them, one for one
ColumnProcessor = Callable[[Iterable[Any]], Iterable[Any]]


def _processor(dialect: sa.Dialect, type_: Any) -> ColumnProcessor | None:
    """The column type's bind processor, mapped over a column. On SQLite a JSON column's
    is its serializer itself (after the cipher's sealing for an encrypted one), which is
    what SQLAlchemy's processor ends in: the same text without the two to four calls a
    value that SQLAlchemy wraps around it for ``JSON.NULL``, ``null()`` and its type
    decorator, which rows of plain values never need (0.2-0.5 µs a value, nine values a
    customer in a first sync); those two markers raise here (not JSON-serializable), so
    callers pass plain values only. The store's own serializer (``sync.jsontext``) runs
    as its C parts mapped over the column (``jsontext.dumps_each``), without a Python call
    a value. PostgreSQL's driver takes JSON as its own adapter object: SQLAlchemy's
    processor. An encrypted text column of a store without a cipher stores its text as it
    is: no processor (its type decorator's was two calls a value that returned it as it
    was)."""
    if isinstance(type_, EncryptedText) and cipher_of(dialect) is None:
        return None
    if dialect.name == "sqlite":
        serialize = getattr(dialect, "_json_serializer", None) or json.dumps
        each: ColumnProcessor = (
            jsontext.dumps_each if serialize is jsontext.dumps else partial(map, serialize)
        )
        if isinstance(type_, EncryptedJSON):
            cipher = cipher_of(dialect)
            if cipher is None:
                return each
            seal = type_.seal
            return partial(map, lambda value: serialize(seal(value, cipher)))
        if isinstance(type_, sa.JSON) and not type_.none_as_null:
            return each
    processor = type_.dialect_impl(dialect).bind_processor(dialect)
    return None if processor is None else partial(map, processor)
