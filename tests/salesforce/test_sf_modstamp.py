"""``parse_modstamp``: every form Salesforce sends becomes the same aware UTC instant; a
stamp without an offset is refused, never read as the machine's local time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.salesforce.connector import parse_modstamp


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2025-01-15T09:31:02.000+0000", datetime(2025, 1, 15, 9, 31, 2, tzinfo=UTC)),
        ("2025-01-15T09:31:02.123+0000", datetime(2025, 1, 15, 9, 31, 2, 123000, tzinfo=UTC)),
        ("2025-01-15T17:31:02.000+0800", datetime(2025, 1, 15, 9, 31, 2, tzinfo=UTC)),
        ("2025-01-15T09:31:02Z", datetime(2025, 1, 15, 9, 31, 2, tzinfo=UTC)),
    ],
)
def test_stamps_parse_to_utc(text: str, utc: datetime) -> None:
    parsed = parse_modstamp(text)
    assert parsed == utc
    assert parsed.tzinfo == UTC


@pytest.mark.parametrize("text", ["2025-01-15T09:31:02.000", "2025-01-15", "yesterday"])
def test_stamps_without_an_offset_or_malformed_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_modstamp(text)
