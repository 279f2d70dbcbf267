"""Bookmark arithmetic: inclusive resume, overlap only near 'now', bounded tie set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.contract import Cursor
from sync.bookmarks import Bookmark

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
OVERLAP = timedelta(seconds=5)


def _bm(cursor_ts: datetime, read_at: datetime, ties: list[tuple[str, datetime]]) -> Bookmark:
    return Bookmark.initial("s").advance(
        Cursor(cursor_ts, ties[-1][0]),
        [(rid, ms, "d") for rid, ms in ties],
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
    assert bm.already_synced("A1", T0 - timedelta(seconds=4), "d") is False  # before the window
    assert bm.already_synced("A2", T0, "d")
    assert not bm.already_synced("A2", T0, "changed")  # same stamp, new content: not skipped


def test_tie_set_is_bounded_and_keeps_the_newest() -> None:
    ties = [(f"A{i:03d}", T0, "d") for i in range(50)]
    bm = Bookmark.initial("s").advance(
        Cursor(T0, "A049"), ties, read_at=T0, overlap=OVERLAP, tie_max=10
    )
    assert len(bm.tie_set) == 10
    assert bm.already_synced("A049", T0, "d") and not bm.already_synced("A000", T0, "d")


def test_tie_set_forgets_pairs_that_left_the_window() -> None:
    bm = _bm(T0, T0, [("A1", T0)])
    later = T0 + timedelta(minutes=1)
    moved = bm.advance(
        Cursor(later, "B1"), [("B1", later, "d")], read_at=later, overlap=OVERLAP, tie_max=100
    )
    assert moved.tie_set == {("B1", "2026-03-01T12:01:00.000000Z", "d")}


def test_a_page_inside_the_overlap_never_moves_the_bookmark_backwards() -> None:
    bm = _bm(T0, T0, [("A2", T0)])
    earlier = T0 - timedelta(seconds=2)
    again = bm.advance(
        Cursor(earlier, "A1"),
        [("A1", earlier, "d")],
        read_at=T0 + timedelta(1),
        overlap=OVERLAP,
        tie_max=10,
    )
    assert (again.cursor, again.read_at) == (bm.cursor, bm.read_at)
    assert again.already_synced("A1", earlier, "d") and again.already_synced("A2", T0, "d")
