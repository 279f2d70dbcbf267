"""``Reader.unread``, case by case: whether the stream may still read a record fetched by
id. A dry run keeps what it planned for such a record until the stream reads it
(``PagePlanner.previewed_as``): a wrong True keeps a plan to the end of the run, a wrong
False decides the customer twice. Reads go by (modstamp, id), from the bookmark's
inclusive start, a page at a time, up to the signpost."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.contract import Capabilities, CrmRecord, Cursor, Page
from sync.bookmarks import Bookmark
from sync.reader import Reader
from sync.runs import RunCounts
from sync.settings import RunOptions, SyncSettings
from tiering_core.models import CustomerProfile

T = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
S = timedelta(seconds=1)
OVERLAP = SyncSettings().overlap  # 5 s
#: the stream: two pages of three, C1..C3 sharing a stamp, the bookmark's last at T
STREAM = [(T - 2 * S, "C0"), (T, "C1"), (T, "C2"), (T, "C3"), (T + S, "C4"), (T + 2 * S, "C5")]
#: what the last run read: up to (T, C2), C1 and C2 in its tie set; read long ago, so the
#: stream starts at its cursor; read just after T, it starts OVERLAP before (``Cursor(point,
#: "")``)
SETTLED = Bookmark(
    "s", Cursor(T, "C2"), T + timedelta(hours=1), frozenset({("C1", "", ""), ("C2", "", "")})
)
RECENT = Bookmark("s", Cursor(T, "C2"), T + S, SETTLED.tie_set)
POINT = T + S - OVERLAP  # where RECENT's stream starts: Cursor(POINT, "")


def record(modstamp: datetime, cid: str) -> CrmRecord:
    return CrmRecord(CustomerProfile.model_validate({"id": cid}), modstamp)


class Stub:
    """A connector whose change stream is ``STREAM`` from ``start`` on, three a page."""

    capabilities = Capabilities(crm="stub", page_size=3, max_write_batch=1)

    def read_changed(self, start: Cursor | None) -> Iterator[Page]:
        rows = [record(m, c) for m, c in STREAM if start is None or Cursor(m, c) >= start]
        for i in range(0, len(rows), 3):
            yield Page(tuple(rows[i : i + 3]))


LATER = datetime.now(UTC) + timedelta(hours=1)  # stamped after any run's signpost
CASES: list[tuple[str, Bookmark | None, dict[str, Any], int, tuple[datetime, str], bool]] = [
    # (case, bookmark, run options, pages read, the record, unread)
    ("first run, not started", None, {}, 0, (T - 9 * S, "C9"), True),
    ("no signpost yet: a later stamp may be read", None, {}, 0, (LATER, "C9"), True),
    ("from the cursor: same stamp, id before", SETTLED, {}, 0, (T, "C1"), False),
    ("from the cursor: the cursor itself (inclusive)", SETTLED, {}, 0, (T, "C2"), True),
    ("from the cursor: same stamp, id after", SETTLED, {}, 0, (T, "C3"), True),
    ("rewound start: the tie set is read again", RECENT, {}, 0, (T, "C1"), True),
    ("rewound start: any id at its point", RECENT, {}, 0, (POINT, "A"), True),
    ("rewound start: before its point", RECENT, {}, 0, (POINT - S, "Z"), False),
    ("full run: from the beginning", SETTLED, {"full": True}, 0, (T - 9 * S, "C9"), True),
    ("page 1 read: same stamp as its last, id before", None, {}, 1, (T, "C1"), False),
    ("page 1 read: its last", None, {}, 1, (T, "C2"), False),
    ("page 1 read: same stamp as its last, id after", None, {}, 1, (T, "C3"), True),
    ("rewound page 1 read: the tie set was on it", RECENT, {}, 1, (T, "C2"), False),
    ("rewound page 1 read: same stamp, id after", RECENT, {}, 1, (T, "C9"), True),
    ("a record past the signpost", None, {}, 1, (LATER, "C9"), False),
    ("--limit ran out on page 1: the run stops", None, {"limit": 3}, 1, (T, "C3"), False),
    ("--limit ran out on page 1: nothing later", None, {"limit": 3}, 1, (T + S, "C4"), False),
]


@pytest.mark.parametrize(
    ("bookmark", "options", "pages", "stamped", "unread"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_unread(
    bookmark: Bookmark | None,
    options: dict[str, Any],
    pages: int,
    stamped: tuple[datetime, str],
    unread: bool,
) -> None:
    reader = Reader(Stub(), "s", SyncSettings(), RunCounts(), None)  # type: ignore[arg-type]
    reader.bookmark = bookmark
    run = RunOptions(**options)
    read = reader.pages(run)
    try:
        for _ in range(pages):
            next(read)
        assert reader.unread(record(*stamped), full=run.full) is unread
    finally:
        read.close()


def test_a_recent_bookmark_starts_the_stream_at_its_rewound_point() -> None:
    """The cases above rely on it: read within OVERLAP of its cursor, the stream starts
    before it, with any id."""
    assert RECENT.start(OVERLAP) == Cursor(POINT, "")
    assert SETTLED.start(OVERLAP) == SETTLED.cursor
