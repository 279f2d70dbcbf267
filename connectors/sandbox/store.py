"""SQLite storage for sandbox records, so a sandbox holds a million customers cheaply.

Records are JSON documents keyed by (object, id) with a modstamp that is indexed together
with the id: exactly the (modstamp, id) order incremental reads page through. Every
mutation bumps the modstamp through ``clock()``, which never goes backwards and, unless a
test pins a timestamp on purpose, never repeats, like a CRM's ``SystemModstamp``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Stored documents are read with pydantic-core's parser: a large read spends most of the
# sandbox's time decoding them, and this one is twice as fast as the json module's.
from pydantic_core import from_json

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    object   TEXT NOT NULL,
    id       TEXT NOT NULL,
    modstamp TEXT NOT NULL,
    data     TEXT NOT NULL,
    PRIMARY KEY (object, id)
);
CREATE INDEX IF NOT EXISTS records_by_modstamp ON records (object, modstamp, id);
"""


def format_ts(ts: datetime) -> str:
    """Fixed-width UTC ISO text (millisecond resolution) so text order is time order."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def parse_ts(text: str) -> datetime:
    """``format_ts``'s text back (fromisoformat takes the ``Z``; strptime is ~20x slower)."""
    return datetime.fromisoformat(text)


class RecordStore:
    def __init__(self, path: Path | str = ":memory:") -> None:
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(_SCHEMA)
        self._last = datetime(2000, 1, 1, tzinfo=UTC)

    def clock(self) -> datetime:
        """Now, strictly after the last stamp handed out (1 ms resolution)."""
        with self._lock:
            now = datetime.now(UTC)
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)
            self._last = max(now, self._last + timedelta(milliseconds=1))
            return self._last

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the store for one transaction: the mutations inside commit together (a
        CRM save of 200 records is one commit, not 200). Nested calls join the outer one."""
        with self._lock:
            if self._db.in_transaction:
                yield
                return
            self._db.execute("BEGIN")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def insert_many(self, obj: str, rows: Iterable[tuple[str, datetime, Mapping[str, Any]]]) -> int:
        with self.transaction():
            cur = self._db.cursor()
            n = 0
            for rid, modstamp, data in rows:
                cur.execute(
                    "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)",
                    (
                        obj,
                        rid,
                        format_ts(modstamp),
                        json.dumps(data, ensure_ascii=False, default=str),
                    ),
                )
                self._last = max(self._last, modstamp)
                n += 1
            return n

    def exists(self, obj: str, rid: str) -> bool:
        """Whether the record is there, without reading it."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM records WHERE object=? AND id=?", (obj, rid)
            ).fetchone()
        return row is not None

    def get(self, obj: str, rid: str) -> tuple[datetime, dict[str, Any]] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT modstamp, data FROM records WHERE object=? AND id=?", (obj, rid)
            ).fetchone()
        return (parse_ts(row[0]), from_json(row[1])) if row else None

    def get_many(self, obj: str, ids: Iterable[str]) -> dict[str, tuple[datetime, dict[str, Any]]]:
        out: dict[str, tuple[datetime, dict[str, Any]]] = {}
        id_list = list(ids)
        with self._lock:
            for start in range(0, len(id_list), 500):
                chunk = id_list[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for rid, ms, data in self._db.execute(
                    f"SELECT id, modstamp, data FROM records WHERE object=? AND id IN ({marks})",  # noqa: S608
                    (obj, *chunk),
                ):
                    out[rid] = (parse_ts(ms), from_json(data))
        return out

    def update(
        self, obj: str, rid: str, fields: Mapping[str, Any], *, modstamp: datetime | None = None
    ) -> datetime:
        """Merge ``fields`` into the record and bump its modstamp; KeyError if it does not exist."""
        return self.merge(obj, rid, fields, modstamp=modstamp)[0]

    def merge(
        self, obj: str, rid: str, fields: Mapping[str, Any], *, modstamp: datetime | None = None
    ) -> tuple[datetime, dict[str, Any]]:
        """``update``, also giving the record as it now is (for a caller that shows it)."""
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM records WHERE object=? AND id=?", (obj, rid)
            ).fetchone()
            if row is None:
                raise KeyError(rid)
            data = {**from_json(row[0]), **fields}
            stamp = modstamp or self.clock()
            self._db.execute(
                "UPDATE records SET modstamp=?, data=? WHERE object=? AND id=?",
                (format_ts(stamp), json.dumps(data, ensure_ascii=False, default=str), obj, rid),
            )
            return stamp, data

    def upsert(self, obj: str, rid: str, data: Mapping[str, Any]) -> tuple[datetime, bool]:
        """Insert or merge; returns (modstamp, created)."""
        with self._lock:
            if not self.exists(obj, rid):
                stamp = self.clock()
                self.insert_many(obj, [(rid, stamp, data)])
                return stamp, True
            return self.update(obj, rid, data), False

    def delete(self, obj: str, rid: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM records WHERE object=? AND id=?", (obj, rid))
            return cur.rowcount > 0

    def scan(
        self,
        obj: str,
        *,
        since: datetime | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Iterator[tuple[str, datetime, dict[str, Any]]]:
        """Records in (modstamp, id) order: ``since`` is inclusive on modstamp, ``after`` is
        strictly after a (modstamp, id) position."""
        sql = "SELECT id, modstamp, data FROM records WHERE object=?"
        args: list[Any] = [obj]
        if since is not None:
            sql += " AND modstamp >= ?"
            args.append(format_ts(since))
        if after is not None:
            sql += " AND (modstamp > ? OR (modstamp = ? AND id > ?))"
            args += [format_ts(after[0]), format_ts(after[0]), after[1]]
        sql += " ORDER BY modstamp, id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [limit, offset]
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        for rid, ms, data in rows:
            yield rid, parse_ts(ms), from_json(data)

    def count(self, obj: str, *, since: datetime | None = None) -> int:
        sql = "SELECT COUNT(*) FROM records WHERE object=?"
        args: list[Any] = [obj]
        if since is not None:
            sql += " AND modstamp >= ?"
            args.append(format_ts(since))
        with self._lock:
            return int(self._db.execute(sql, args).fetchone()[0])

    def clear(self, obj: str | None = None) -> None:
        with self._lock:
            if obj is None:
                self._db.execute("DELETE FROM records")
            else:
                self._db.execute("DELETE FROM records WHERE object=?", (obj,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_store(data_dir: Path | None) -> RecordStore:
    return RecordStore(":memory:" if data_dir is None else data_dir / "sandbox.sqlite3")
