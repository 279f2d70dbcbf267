"""The sync run's reader: pages from the change stream, the signpost, the bookmark.

Pages are read one ahead (``sync.readahead``) from the bookmark's inclusive cursor (or from
the start on a full run) and cut at the signpost: records stamped after the run began are
the next run's work (Singer signposts), which keeps the run's own writes from chasing the
read and misses nothing. While the read goes on, the CRM's clock may still stamp the
signpost's tick; ``holding_writes`` tells the write pool to hold writes until it does not.
A page's records are taken in (``intake``): the tie set's already-synced records and
duplicates are set aside, each record's input hash is computed once, and after the page
commits the bookmark moves past it (``advance``) in the same transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial

import sqlalchemy as sa

from connectors.contract import Connector, CrmRecord, Cursor, Page
from sync import bookmarks
from sync.bookmarks import Bookmark
from sync.killpoints import kill_point
from sync.readahead import read_ahead
from sync.records import Advance, Intake, Skip
from sync.runs import RunCounts
from sync.settings import RunOptions, SyncSettings
from tiering_core.models import CustomerProfile

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Reader:
    """Reads for one run; owns the run's view of the bookmark and the signpost."""

    def __init__(
        self,
        connector: Connector,
        stream: str,
        settings: SyncSettings,
        counts: RunCounts,
        policy_version: str | None,
    ) -> None:
        self.connector = connector
        self.stream = stream
        self.settings = settings
        self.counts = counts
        self.policy_version = policy_version
        self.caps = connector.capabilities
        self.bookmark: Bookmark | None = None
        self.writes_from: datetime | None = None  # see holding_writes
        self.signpost: datetime | None = None  # the run reads no record stamped after it
        self.read_to: Cursor | None = None  # the last record of the last page yielded
        self.stopped = False  # the page being processed is the run's last: nothing follows
        self._intake = Intake()  # the current page's (a run must not grow with them)

    def load(self, conn: sa.Connection) -> None:
        self.bookmark = bookmarks.load(conn, self.stream)

    def pages(self, options: RunOptions) -> Generator[tuple[list[CrmRecord], Advance], None, None]:
        """The stream's records up to the signpost, a page at a time, with the mark the
        bookmark advances to once the page commits. Close the iterator when done with it:
        writes are held while it is open."""
        start = self._start(full=options.full)
        signpost = self.signpost = datetime.now(UTC)
        self.writes_from = _next_tick(signpost, self.caps.modstamp_resolution)
        remaining = options.limit
        try:
            past = partial(_past, signpost)
            for page in read_ahead(self.connector.read_changed(start), last=past):
                read_at = datetime.now(UTC)
                kill_point("after_fetch")
                records = list(page.records)
                beyond = [r for r in records if r.modstamp > signpost]
                records = [r for r in records if r.modstamp <= signpost]
                if remaining is not None:
                    records = records[:remaining]
                    remaining -= len(records)
                self.stopped = bool(beyond) or (remaining is not None and remaining <= 0)
                if records:
                    self.read_to = records[-1].cursor
                    yield records, Advance(Page(tuple(records)), read_at)
                if self.stopped:
                    break
        finally:
            self.writes_from = None  # the read is over: no write can come back into it

    def unread(self, record: CrmRecord, *, full: bool) -> bool:
        """Whether the stream may still read this version of ``record`` in this run: it is
        ordered after the page being processed (reads go by (modstamp, id), one page after
        another) and not stamped past the signpost; before the stream starts, at or after
        where it will start. A record fetched by id that is not unread is never read by the
        stream: unchanged since the bookmark, or read on an earlier page. Once the last page
        is read (the signpost reached, or ``--limit``'s count), nothing is: a dry run would
        keep such a record's plan to the end."""
        if self.stopped or (self.signpost is not None and record.modstamp > self.signpost):
            return False
        if self.read_to is not None:
            return record.cursor > self.read_to
        start = self._start(full=full)
        return start is None or record.cursor >= start

    def _start(self, *, full: bool) -> Cursor | None:
        """The inclusive cursor the stream starts from (None: the beginning)."""
        if self.bookmark is None or full:
            return None
        return self.bookmark.start(self.settings.overlap)

    def fetch(self, ids: Sequence[str]) -> Iterator[list[CrmRecord]]:
        """These customers as the CRM holds them now, a page's worth per call (the ones it
        no longer returns are simply absent)."""
        size = max(1, self.caps.page_size)
        for start in range(0, len(ids), size):
            records = self.connector.fetch(ids[start : start + self.caps.page_size])
            if records:
                yield records

    def holding_writes(self) -> bool:
        """True while the read is under way and the CRM's clock still stamps the signpost's
        tick. A CRM with whole-second stamps (Zoho, Salesforce) stamps a write made in the
        signpost's second with a time <= the signpost, and the read would take our own
        write back as a change of this run. Held writes wait in the queue while the read
        goes on (at most one tick); once the read is over nothing is held."""
        if self.writes_from is not None and datetime.now(UTC) >= self.writes_from:
            self.writes_from = None
        return self.writes_from is not None

    def intake(self, records: list[CrmRecord], *, from_stream: bool, full: bool) -> Intake:
        """Count the page read; set aside the tie set's records (read, unchanged, by the
        run that moved the bookmark) and all but the last of a customer's duplicates."""
        self.counts.read += len(records)
        self.counts.pages += 1
        intake = self._intake = Intake()
        fresh, hashes, last = intake.fresh, intake.hashes, intake.last
        bookmark = self.bookmark if from_stream and not full else None
        skipped = self.counts.skipped
        for record in records:
            cid = record.profile.id
            last[cid] = record
            inputs = hashes[cid] = input_hash(record.profile, self.policy_version)
            if bookmark is not None and bookmark.already_synced(
                cid, record.modstamp, partial(_tie_digest, record, inputs)
            ):
                skipped[Skip.ALREADY_SYNCED] += 1
            elif cid in fresh:
                skipped[Skip.DUPLICATE_IN_PAGE] += 1
                fresh[cid] = record
            else:
                fresh[cid] = record
        return intake

    def advance(self, conn: sa.Connection, mark: Advance) -> None:
        """Move the bookmark past a committed page (in the page's transaction)."""
        cursor = mark.page.cursor
        if cursor is None:
            return
        current = self.bookmark or Bookmark.initial(self.stream)
        moved = current.advance(
            cursor,
            ((r.profile.id, r.modstamp) for r in mark.page.records),
            self._digest,
            read_at=mark.read_at,
            overlap=self.settings.overlap,
            tie_max=self.settings.tie_max,
        )
        self.bookmark = bookmarks.save(conn, moved)

    def _digest(self, cid: str) -> str:
        """The tie-set digest of the current page's record ``cid`` (its last read); the
        bookmark asks it once per record it keeps."""
        return _tie_digest(self._intake.last[cid], self._intake.hashes[cid])


def input_hash(profile: CustomerProfile, policy_version: str | None) -> str:
    """What an assessment depends on besides ``previous`` and the date: the customer's
    inputs (not its modstamp) and the policy."""
    inputs = _SERIALIZER.to_json(profile, exclude=_NOT_INPUTS)
    return hashlib.sha256(f"{policy_version}\n".encode() + inputs).hexdigest()


#: the model's own serializer, called straight: ``model_dump_json`` made the exclude set
#: and decoded the text anew for every record (a quarter of the hash's cost); same bytes
_SERIALIZER = CustomerProfile.__pydantic_serializer__
_NOT_INPUTS = {"previous", "modified_at"}  # read only


def _tie_digest(record: CrmRecord, inputs: str) -> str:
    """Content of a record as read (inputs and the CRM's write-back values), short."""
    current = repr(sorted((k, repr(v)) for k, v in record.current.items()))
    return hashlib.sha256(f"{inputs}\n{current}".encode()).hexdigest()[:16]


def _past(signpost: datetime, page: Page) -> bool:
    """Whether ``page`` ends past the signpost: the run takes no page after it, so none is
    read ahead (on a first sync, the run's own writes wait there, stamped after it)."""
    return bool(page.records) and page.records[-1].modstamp > signpost


def _next_tick(moment: datetime, resolution: timedelta) -> datetime:
    """The first instant a CRM stamping at ``resolution`` stamps later than ``moment``."""
    return _EPOCH + ((moment - _EPOCH) // resolution + 1) * resolution
