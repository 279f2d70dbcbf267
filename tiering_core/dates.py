"""Calendar arithmetic for review cycles, task due dates and task periods.

The core never reads the clock: every function takes the assessment date ``as_of``.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta


def add_months(day: date, months: int) -> date:
    """Same day ``months`` later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def add_working_days(day: date, days: int) -> date:
    """``days`` working days (Monday to Friday) after ``day``; public holidays are the
    bank's calendar and not modelled, so this errs on the early side."""
    current = day
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            remaining -= 1
    return current


def period_label(day: date, period: str) -> str:
    """The period ``day`` falls in: ``2026-11`` (month), ``2026-Q4``, ``2026-H2``, ``2026``.

    A task's dedupe key includes this label, so a rerun within the period upserts the same
    task and the next period opens a new one."""
    if period == "month":
        return f"{day.year}-{day.month:02d}"
    if period == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    if period == "half_year":
        return f"{day.year}-H{1 if day.month <= 6 else 2}"
    if period == "year":
        return str(day.year)
    raise ValueError(f"unknown period {period!r}")
