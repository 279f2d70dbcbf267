"""``sync.schema.utc_text``: the stored text of an instant (claims, bookmarks, leases and
the inbox compare these texts as strings, so a stamp must read the same whichever path
wrote it). An aware UTC stamp (every record's modstamp) takes a short path; any other is
converted first. Both must give the text of the UTC instant as ``strftime`` spells it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from sync.schema import parse_utc, utc_text

#: the stored form, spelled out (what ``utc_text`` has always written)
_FORM = "%Y-%m-%dT%H:%M:%S.%fZ"

_OFFSETS = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# a year of four digits on both sides of any offset's conversion
_MOMENTS = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31))


@given(_MOMENTS)
def test_an_aware_utc_stamp_reads_as_its_utc_instant(moment: datetime) -> None:
    stamp = moment.replace(tzinfo=UTC)
    text = utc_text(stamp)
    assert text == f"{moment.year:04d}" + moment.strftime(_FORM)[-23:]
    assert len(text) == 27
    assert parse_utc(text) == stamp


@given(_MOMENTS, _OFFSETS)
def test_every_zone_and_a_naive_stamp_read_as_the_same_instant(
    moment: datetime, zone: timezone
) -> None:
    stamp = moment.replace(tzinfo=zone)
    instant = stamp.astimezone(UTC)
    assert utc_text(stamp) == utc_text(instant) == utc_text(instant.replace(tzinfo=None))
    assert parse_utc(utc_text(stamp)) == stamp


def test_a_zone_equal_to_utc_reads_as_utc_itself() -> None:
    """A zero offset of another object than ``UTC`` takes the long path: the same text."""
    moment = datetime(2026, 12, 7, 10, 11, 12, 5)
    assert utc_text(moment.replace(tzinfo=UTC)) == "2026-12-07T10:11:12.000005Z"
    assert utc_text(moment.replace(tzinfo=timezone(timedelta(0)))) == (
        "2026-12-07T10:11:12.000005Z"
    )
