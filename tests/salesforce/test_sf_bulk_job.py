"""A Bulk API 2.0 job's data and its polls: the CSV made once within the upload limit, and
the job's state read until it is final, at waits its own progress sizes."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from connectors.salesforce.bulkcsv import cell, csv_bodies
from connectors.salesforce.client import BULK_POLL_MAX_SECONDS, next_poll


def test_one_body_within_the_limit_and_halves_past_it() -> None:
    rows = [(f"001{i:015d}", "gold", cell(None), cell(True), cell(1.5)) for i in range(10)]
    columns = ["Id", "Tier__c", "Reasons__c", "Edd__c", "Score__c"]
    (body, n), *more = csv_bodies(columns, rows)
    assert not more and n == 10
    assert list(csv.reader(io.StringIO(body))) == [columns, *map(list, rows)]
    assert rows[0][2:] == ("#N/A", "true", "1.5")

    parts = list(csv_bodies(columns, rows, limit=len(body) // 3))
    assert len(parts) > 1
    assert all(len(b.encode()) <= len(body) // 3 for b, _ in parts)
    read = [list(csv.reader(io.StringIO(b))) for b, _ in parts]
    assert all(r[0] == columns for r in read)
    assert [tuple(row) for r in read for row in r[1:]] == rows
    assert [n for _, n in parts] == [len(r) - 1 for r in read]


def test_a_value_with_a_comma_or_a_line_break_is_quoted() -> None:
    ((body, _),) = csv_bodies(["Id", "Reasons__c"], [("001", "A: x, y\nB: z")])
    assert list(csv.reader(io.StringIO(body))) == [["Id", "Reasons__c"], ["001", "A: x, y\nB: z"]]


@pytest.mark.parametrize(
    ("elapsed", "done", "records", "floor", "wait"),
    [
        (1.0, 0, 10_000, 1.0, 1.0),  # nothing done yet: as long again
        (4.0, 0, 10_000, 1.0, 4.0),
        (2.0, 5_000, 10_000, 1.0, 2.0),  # half done in 2 s: 2 s more
        (2.0, 9_900, 10_000, 1.0, 1.0),  # almost done: the floor
        (0.0, 0, 10, 0.0, 0.1),  # never a busy loop
        (600.0, 100, 10_000, 1.0, BULK_POLL_MAX_SECONDS),
    ],
)
def test_next_poll(elapsed: float, done: int, records: int, floor: float, wait: float) -> None:
    assert next_poll(elapsed, done, records, floor) == pytest.approx(wait)


class _Jobs:
    """The SDK's job client as far as polling uses it: states in turn."""

    def __init__(self, *states: tuple[str, int]) -> None:
        self.states = list(states)
        self.polls = 0

    def get_job(self, job_id: str, is_query: bool) -> dict[str, Any]:
        state, done = self.states[self.polls]
        self.polls += 1
        return {"id": job_id, "state": state, "numberRecordsProcessed": done}


def test_a_job_still_in_progress_is_polled_again_until_complete(sandbox_factory, connect):  # type: ignore[no-untyped-def]
    client = connect(sandbox_factory("salesforce", customers=1), bulk_poll_seconds=0.5).client
    slept: list[float] = []
    client._sleep = slept.append
    jobs = _Jobs(("InProgress", 0), ("InProgress", 5_000), ("JobComplete", 10_000))
    job = client._await_job(jobs, "750000000000001", 10_000)
    assert job["state"] == "JobComplete" and jobs.polls == 3
    assert slept[0] == 0.5 and len(slept) == 3 and all(0.1 <= s <= 1.0 for s in slept[1:])


@pytest.mark.parametrize(
    "text", ["plain", "a,b", 'say "hi"', "two\nlines", "cr\rhere", "", " padded ", "中文, 逗号"]
)
def test_the_body_is_what_csv_writer_writes(text: str) -> None:
    """Columns none of whose cells needs quoting joined as they are, every other cell as
    the csv module quotes it (and a bare carriage return quoted as well)."""
    columns = ["Id", "A__c", "B__c"]
    rows = [("001", "x", "y"), ("002", text, ""), ("003", "", text)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([columns, *rows])
    (body, n), *more = csv_bodies(columns, rows)
    assert not more and n == 3
    assert list(csv.reader(io.StringIO(body, newline=""))) == [columns, *map(list, rows)]
    if "\r" not in text:
        assert body == buffer.getvalue()
