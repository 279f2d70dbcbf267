"""Dates as the state store keeps them: ISO text in its rows and stored JSON, ``date`` in
the code that reads them (converted once, here, at that boundary)."""

from __future__ import annotations

from datetime import date


def parse_day(value: object) -> date | None:
    """A stored ISO date (the state store keeps dates as text) as a ``date``; None if absent."""
    return date.fromisoformat(value) if isinstance(value, str) and value else None


def day_text(value: date | None) -> str | None:
    """A ``date`` as the ISO text the state store keeps."""
    return None if value is None else value.isoformat()
