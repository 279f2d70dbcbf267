"""Bookmark arithmetic: inclusive resume, overlap only near 'now', bounded tie set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.contract import Cursor
from sync.bookmarks import Bookmark
from sync.schema import utc_text

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
OVERLAP = timedelta(seconds=5)


def _bm(cursor_ts: datetime, read_at: datetime, ties: list[tuple[str, datetime]]) -> Bookmark:
    return Bookmark.initial("s").advance(
        Cursor(cursor_ts, ties[-1][0]),
        [(rid, ms) for rid, ms in ties],
        lambda rid: "d",
        read_at=read_at,
        overlap=OVERLAP,
        tie_max=100,
    )


def test_old_records_resume_exactly_at_the_cursor() -> None:
    bm = _bm(T0, T0 + timedelta(hours=1), [("A1", T0), ("A2", T0)])
    assert bm.start(OVERLAP) == Cursor(T0, "A2")
    assert bm.tie_set == {
        ("A1", "2026-03-01T12:00:00.000000Z", "d"),
        ("A2", "2026-03-01T12:00:00.000000Z", "d"),
    }


def test_recent_records_are_read_again_from_read_at_minus_overlap() -> None:
    bm = _bm(T0, T0 + timedelta(seconds=2), [("A1", T0 - timedelta(seconds=4)), ("A2", T0)])
    assert bm.start(OVERLAP) == Cursor(T0 - timedelta(seconds=3), "")
    assert bm.already_synced("A1", T0 - timedelta(seconds=4), lambda: "d") is False  # outside
    assert bm.already_synced("A2", T0, lambda: "d")
    assert not bm.already_synced("A2", T0, lambda: "changed")  # same stamp, new content


def test_tie_set_is_bounded_and_keeps_the_newest() -> None:
    ties = [(f"A{i:03d}", T0) for i in range(50)]
    bm = Bookmark.initial("s").advance(
        Cursor(T0, "A049"), ties, lambda rid: "d", read_at=T0, overlap=OVERLAP, tie_max=10
    )
    assert len(bm.tie_set) == 10
    assert bm.already_synced("A049", T0, lambda: "d")
    assert not bm.already_synced("A000", T0, lambda: "d")


def test_tie_set_forgets_pairs_that_left_the_window() -> None:
    bm = _bm(T0, T0, [("A1", T0)])
    later = T0 + timedelta(minutes=1)
    moved = bm.advance(
        Cursor(later, "B1"),
        [("B1", later)],
        lambda rid: "d",
        read_at=later,
        overlap=OVERLAP,
        tie_max=100,
    )
    assert moved.tie_set == {("B1", "2026-03-01T12:01:00.000000Z", "d")}


def test_a_page_inside_the_overlap_never_moves_the_bookmark_backwards() -> None:
    bm = _bm(T0, T0, [("A2", T0)])
    earlier = T0 - timedelta(seconds=2)
    again = bm.advance(
        Cursor(earlier, "A1"),
        [("A1", earlier)],
        lambda rid: "d",
        read_at=T0 + timedelta(1),
        overlap=OVERLAP,
        tie_max=10,
    )
    assert (again.cursor, again.read_at) == (bm.cursor, bm.read_at)
    assert again.already_synced("A1", earlier, lambda: "d")
    assert again.already_synced("A2", T0, lambda: "d")


def test_digests_are_asked_only_of_records_the_tie_set_keeps_or_names() -> None:
    """A digest is a hash per record: a backfill must not pay it for records before the
    window, nor a read for records the tie set does not name."""
    asked: list[str] = []

    def digest(rid: str) -> str:
        asked.append(rid)
        return "d"

    bm = Bookmark.initial("s").advance(
        Cursor(T0, "A2"),
        [("A1", T0 - timedelta(minutes=1)), ("A2", T0)],
        digest,
        read_at=T0,
        overlap=OVERLAP,
        tie_max=10,
    )
    assert asked == ["A2"]
    assert not bm.already_synced("B9", T0, lambda: pytest.fail("digest of an unnamed record"))


#: a zone whose clocks repeat an hour (2026-11-01 01:00-02:00, EDT then EST)
NEW_YORK = ZoneInfo("America/New_York")
_ZONES = (UTC, timezone(timedelta(hours=8)), NEW_YORK)
#: wall times around that repeated hour, in each zone (either of a repeated time's two
#: instants) or naive
_WALL = st.datetimes(min_value=datetime(2026, 11, 1), max_value=datetime(2026, 11, 1, 8))
_STAMPS = st.tuples(_WALL, st.sampled_from((None, *_ZONES)), st.integers(0, 1)).map(
    lambda w: w[0].replace(tzinfo=w[1], fold=w[2])
)
_AWARE = st.tuples(_WALL, st.sampled_from(_ZONES), st.integers(0, 1)).map(
    lambda w: w[0].replace(tzinfo=w[1], fold=w[2])
)


def _advanced(cursor: datetime, records: list[tuple[str, datetime]], read_at: datetime) -> Bookmark:
    return Bookmark.initial("s").advance(
        Cursor(cursor, "Z"), records, lambda rid: "d", read_at=read_at, overlap=OVERLAP, tie_max=100
    )


@given(st.lists(_STAMPS, max_size=8), _AWARE, _AWARE)
def test_the_tie_set_keeps_what_the_text_of_the_stamps_keeps(
    stamps: list[datetime], cursor: datetime, read_at: datetime
) -> None:
    """``advance`` sets aside an aware stamp before the window without writing its text:
    it keeps exactly the records whose stamp's text is at or after the window's floor's
    (a naive stamp is taken as UTC), whatever their offset or zone."""
    records = [(f"REC{i}", ms) for i, ms in enumerate(stamps)]
    moved = _advanced(cursor, records, read_at)
    floor = utc_text(min(cursor, read_at - OVERLAP))
    texts = [(rid, utc_text(ms)) for rid, ms in records]
    assert moved.tie_set == {(rid, text, "d") for rid, text in texts if text >= floor}


def test_a_stamp_in_a_zone_s_repeated_hour_is_placed_by_its_instant() -> None:
    """A cursor and a stamp of one zone compare by their wall times: 01:30 EST (06:30Z)
    would read as before 01:45 EDT (05:45Z). The stamp is after the floor, and kept."""
    cursor = datetime(2026, 11, 1, 1, 45, tzinfo=NEW_YORK)  # the first 01:45, EDT
    later = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NEW_YORK)  # the second 01:30, EST
    moved = _advanced(cursor, [("REC1", later)], read_at=datetime(2026, 11, 2, tzinfo=UTC))
    assert moved.tie_set == {("REC1", "2026-11-01T06:30:00.000000Z", "d")}
