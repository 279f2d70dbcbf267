"""Bookmarks: where the next incremental read of a stream starts, and what it may skip.

The rules (docs/targets.md R2, R3, R5; Singer's ``>=`` bookmarks, dlt's ``unique_hashes``):

* The cursor is inclusive and ordered by ``(modstamp, id)``: a read resumes *at* the last
  record processed, never strictly after a timestamp, so records sharing a timestamp at a
  page boundary are neither missed nor repeated.
* Overlap: a record stamped shortly before we read may not have been visible yet (commit
  lag, clock skew). A record stamped more than ``overlap`` before the moment we read it was
  certainly visible, so only the window ``[read_at - overlap, cursor]`` is read again. A
  backfill of old records therefore resumes exactly at its cursor (≤ 1 page re-read after a
  pause or crash) while an incremental run near "now" re-reads the last few seconds.
* The tie set remembers the ``(id, modstamp, content digest)`` of records already processed
  inside that window (bounded; the newest are kept), so a re-read record that has not
  changed since is skipped without assessing it again. The digest matters: a CRM with
  second-resolution stamps (Zoho) gives two changes within one second the same stamp, and
  the second must not be skipped (dlt dedupes its boundary rows by content hash for the
  same reason). Overflowing the bound costs only a no-op re-plan.
* A bookmark is saved only in the transaction that records the outbox rows of every record
  up to its cursor (see ``sync.engine``), and with an optimistic ``state_version`` check,
  so two writers can never move it past each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

import sqlalchemy as sa

from connectors.contract import Cursor
from sync.schema import bookmarks, now_text, parse_utc, utc_text


class BookmarkConflictError(RuntimeError):
    """Another process moved this stream's bookmark; this run must stop."""


@dataclass(frozen=True)
class Bookmark:
    stream: str
    cursor: Cursor
    read_at: datetime
    tie_set: frozenset[tuple[str, str, str]] = field(default_factory=frozenset)
    state_version: int = 0

    def rewind_point(self, overlap: timedelta) -> datetime:
        return min(self.cursor.modstamp, self.read_at - overlap)

    def start(self, overlap: timedelta) -> Cursor:
        """The inclusive cursor the next read starts from."""
        point = self.rewind_point(overlap)
        return self.cursor if point == self.cursor.modstamp else Cursor(point, "")

    @cached_property
    def _tied_ids(self) -> frozenset[str]:
        return frozenset(tie[0] for tie in self.tie_set)

    def already_synced(self, record_id: str, modstamp: datetime, digest: Callable[[], str]) -> bool:
        """True when the tie set holds this record as read. ``digest()``, the record's
        content digest (a hash to compute), is asked only of records the tie set names."""
        if record_id not in self._tied_ids:
            return False
        return (record_id, utc_text(modstamp), digest()) in self.tie_set

    def advance(
        self,
        cursor: Cursor,
        processed: Iterable[tuple[str, datetime]],
        digest: Callable[[str], str],
        *,
        read_at: datetime,
        overlap: timedelta,
        tie_max: int,
    ) -> Bookmark:
        """The bookmark after processing ``processed`` records (id, modstamp) up to
        ``cursor``. ``digest(id)`` gives a record's content digest; it is asked only of the
        records the new tie set keeps (a hash per record of a 100,000-record backfill would
        be wasted: nearly all of them lie before the window).

        A page re-read inside the overlap window can end *before* the saved cursor; then
        the cursor and its ``read_at`` stay (a bookmark never moves backwards, and the rest
        of the window must still be re-read after a crash) and only the tie set grows."""
        if cursor < self.cursor:
            cursor, read_at = self.cursor, self.read_at
        moved = Bookmark(self.stream, cursor, read_at, frozenset(), self.state_version)
        floor = utc_text(moved.rewind_point(overlap))
        # the floor as its text says, an aware UTC instant (a naive cursor is taken as
        # UTC, as ``utc_text`` takes it): an aware stamp compares with it as an instant,
        # where two stamps of one zone would compare by wall time (misordered in the hour
        # a DST end repeats)
        floor_at = parse_utc(floor)
        ties = {tie for tie in self.tie_set if tie[1] >= floor}
        for rid, ms in processed:
            # an aware stamp before the floor is before it as text too (``utc_text`` is
            # the instant in UTC to the microsecond, fixed width): a backfill's records
            # need no text at all
            if ms.tzinfo is not None and ms < floor_at:
                continue
            text = utc_text(ms)
            if text >= floor:
                ties.add((rid, text, digest(rid)))
        if len(ties) > tie_max:
            ties = set(sorted(ties, key=lambda p: (p[1], p[0]))[-tie_max:])
        return Bookmark(self.stream, cursor, read_at, frozenset(ties), self.state_version)

    @classmethod
    def initial(cls, stream: str) -> Bookmark:
        """Before the first run: a cursor before any record, nothing to skip."""
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        return cls(stream, Cursor(epoch, ""), epoch, frozenset(), 0)


def load(conn: sa.Connection, stream: str) -> Bookmark | None:
    row = conn.execute(sa.select(bookmarks).where(bookmarks.c.stream == stream)).first()
    if row is None:
        return None
    return Bookmark(
        stream=stream,
        cursor=Cursor(parse_utc(row.modstamp), row.record_id),
        read_at=parse_utc(row.read_at),
        # entries written before digests existed ([id, modstamp]) simply never match
        tie_set=frozenset(tuple(map(str, tie)) for tie in row.tie_set if len(tie) == 3),  # type: ignore[misc]
        state_version=int(row.state_version),
    )


def save(conn: sa.Connection, bookmark: Bookmark) -> Bookmark:
    """Persist ``bookmark`` if nobody else moved it since it was loaded; returns the saved
    bookmark (with its new ``state_version``)."""
    values = {
        "modstamp": utc_text(bookmark.cursor.modstamp),
        "record_id": bookmark.cursor.id,
        "read_at": utc_text(bookmark.read_at),
        "tie_set": sorted(list(tie) for tie in bookmark.tie_set),
        "state_version": bookmark.state_version + 1,
        "updated_at": now_text(),
    }
    if bookmark.state_version == 0:
        try:
            with conn.begin_nested():
                conn.execute(bookmarks.insert().values(stream=bookmark.stream, **values))
        except sa.exc.IntegrityError:
            raise BookmarkConflictError(
                f"bookmark of {bookmark.stream} was created by another run"
            ) from None
    else:
        result = conn.execute(
            bookmarks.update()
            .where(
                bookmarks.c.stream == bookmark.stream,
                bookmarks.c.state_version == bookmark.state_version,
            )
            .values(**values)
        )
        if result.rowcount != 1:
            raise BookmarkConflictError(f"bookmark of {bookmark.stream} was moved by another run")
    return Bookmark(
        bookmark.stream,
        bookmark.cursor,
        bookmark.read_at,
        bookmark.tie_set,
        bookmark.state_version + 1,
    )
