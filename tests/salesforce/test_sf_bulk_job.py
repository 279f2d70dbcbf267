"""A Bulk API 2.0 job's data and its calls: the CSV made once within the upload limit; the
job's state read until it is final, at waits its own progress sizes, a failed read retried
on the same job; a job given up on aborted; rows it never processed not counted written;
a failed job's errorMessage classified."""

from __future__ import annotations

import csv
import io
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from simple_salesforce.exceptions import SalesforceBulkV2LoadError, SalesforceExpiredSession

from connectors.errors import ConfigError, QuotaExhaustedError, TransientError
from connectors.salesforce import bulkjob
from connectors.salesforce.bulkcsv import cell, csv_bodies
from connectors.salesforce.bulkjob import BULK_POLL_MAX_SECONDS, next_poll
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.config import load_settings


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
    """The SDK's job client as the bulk path uses it: a job created in ``opened``, polls
    answering ``polls`` in turn (a state and rows processed, or an exception to raise), and
    every call it got, in order."""

    def __init__(self, *polls: Any, opened: str = "Open", failed: str = "", unprocessed: str = ""):
        self.opened, self.polls = opened, list(polls)
        self.results = {"failedResults": failed, "unprocessedrecords": unprocessed}
        self.calls: list[str] = []
        self.fail_upload: Exception | None = None
        self.on_close: Any = None

    def create_job(self, operation: Any, **dialect: Any) -> dict[str, Any]:
        self.calls.append(
            f"create {dialect['column_delimiter'].value} {dialect['line_ending'].value}"
        )
        return {"id": "750000000000001", "state": self.opened}

    def upload_job_data(self, job_id: str, body: str) -> None:
        self.calls.append("upload")
        if self.fail_upload:
            raise self.fail_upload

    def close_job(self, job_id: str) -> None:
        self.calls.append("close")
        if self.on_close:
            self.on_close()

    def get_job(self, job_id: str, is_query: bool) -> dict[str, Any]:
        self.calls.append("poll")
        answer = self.polls.pop(0) if self.polls else ("InProgress", 0)
        if isinstance(answer, Exception):
            raise answer
        state, done, *more = answer
        return {"id": job_id, "state": state, "numberRecordsProcessed": done, **dict(more)}

    def abort_job(self, job_id: str, is_query: bool) -> None:
        self.calls.append("abort")

    def get_ingest_results(self, job_id: str, kind: str) -> str:
        self.calls.append(kind)
        return self.results[kind]


class _Clock:
    """A clock that only the fake sleep moves, and the waits it was asked for."""

    def __init__(self) -> None:
        self.now, self.waits = 0.0, []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


@pytest.fixture
def bulk(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``bulk(jobs)`` → a client whose API session is a stand-in holding ``jobs`` as the
    Account object's job client, on a fake clock (``client.clock``)."""
    monkeypatch.setenv("SF_ID", "id")
    monkeypatch.setenv("SF_SECRET", "secret")

    def make(jobs: _Jobs, poll_seconds: float = 0.5) -> SalesforceClient:
        settings = load_settings(
            {
                "kind": "salesforce",
                "base_url": "https://acme.my.salesforce.com",
                "client_id": "env:SF_ID",
                "client_secret": "env:SF_SECRET",
                "bulk_poll_seconds": poll_seconds,
                "max_attempts": 3,
            }
        )
        clock = _Clock()
        client = SalesforceClient(settings, sleep=clock.sleep, clock=lambda: clock.now)
        client.clock = clock  # type: ignore[attr-defined]
        bulk2 = SimpleNamespace(Account=SimpleNamespace(_client=jobs))
        client.auth.sf = SimpleNamespace(bulk2=bulk2, api_usage=None)  # type: ignore[assignment]
        return client

    return make


BODY = "Id,Tier__c\n001A,gold\n001B,gold\n001C,gold\n"


def test_a_job_still_in_progress_is_polled_at_waits_its_progress_sizes(bulk: Any) -> None:
    jobs = _Jobs(("InProgress", 0), ("InProgress", 5_000), ("JobComplete", 10_000))
    client = bulk(jobs)
    assert client.bulk_update("Account", BODY, 10_000) == []
    # 0.5 s in, nothing done: as long again (0.5); 1 s in, half done: 1 s more
    assert client.clock.waits == [0.5, 0.5, 1.0]
    assert jobs.calls == ["create COMMA LF", "upload", "close", "poll", "poll", "poll"]


def test_rows_the_job_never_processed_are_not_written(bulk: Any) -> None:
    """JobComplete with 3 rows sent, 1 failed and 1 never processed: both come back."""
    failed = "sf__Id,sf__Error,Id,Tier__c\n001A,STRING_TOO_LONG:x,001A,gold\n"
    jobs = _Jobs(
        ("JobComplete", 2, ("numberRecordsFailed", 1)),
        failed=failed,
        unprocessed="Id,Tier__c\n001C,gold\n",
    )
    rows = bulk(jobs).bulk_update("Account", BODY, 3)
    assert [(r["sf__Id"], r["sf__Error"].split(":")[0]) for r in rows] == [
        ("001A", "STRING_TOO_LONG"),
        ("001C", "PROCESSING_HALTED"),
    ]  # the WriteResults the writer makes of them: test_writes.py


def test_unprocessed_rows_it_does_not_name_make_the_whole_job_unwritten(bulk: Any) -> None:
    jobs = _Jobs(("JobComplete", 1), unprocessed="Id,Tier__c\n001C,gold\n")
    with pytest.raises(TransientError, match="left 2 rows unprocessed and listed 1"):
        bulk(jobs).bulk_update("Account", BODY, 3)


def test_a_failed_poll_is_retried_on_the_same_job(bulk: Any) -> None:
    jobs = _Jobs(requests.ConnectionError("dropped"), ("JobComplete", 3))
    assert bulk(jobs).bulk_update("Account", BODY, 3) == []
    assert jobs.calls == ["create COMMA LF", "upload", "close", "poll", "poll"]


def test_a_poll_on_an_expired_session_logs_in_again_and_polls_the_same_job(bulk: Any) -> None:
    expired = SalesforceExpiredSession(
        "jobs/ingest/750", 401, "jobs", [{"errorCode": "INVALID_SESSION_ID", "message": "x"}]
    )
    jobs = _Jobs(expired, ("JobComplete", 3))
    client = bulk(jobs)
    session = client.auth.sf
    logins: list[Any] = []

    def login() -> Any:  # the token call, answered with the same stand-in session
        logins.append(session)
        client.auth.sf = session
        return session

    client.auth.login = login  # type: ignore[method-assign]
    assert client.bulk_update("Account", BODY, 3) == []
    assert len(logins) == 1
    assert jobs.calls == ["create COMMA LF", "upload", "close", "poll", "poll"]


def test_polls_that_give_up_abort_the_job(bulk: Any) -> None:
    jobs = _Jobs(*[requests.ConnectionError("dropped")] * 3, ("InProgress", 0))
    with pytest.raises(TransientError):
        bulk(jobs).bulk_update("Account", BODY, 3)
    assert jobs.calls[3:] == ["poll", "poll", "poll", "poll", "abort"]
    assert jobs.calls.count("create COMMA LF") == 1


def test_a_job_past_its_time_is_aborted(bulk: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulkjob, "BULK_JOB_TIMEOUT_SECONDS", 10.0)
    jobs = _Jobs()  # in progress for ever, nothing processed
    client = bulk(jobs)
    with pytest.raises(TransientError, match="InProgress after 16 s"):
        client.bulk_update("Account", BODY, 3)
    assert client.clock.waits == [0.5, 0.5, 1.0, 2.0, 4.0, 8.0]
    assert jobs.calls[-2:] == ["poll", "abort"]


def test_a_failed_upload_aborts_the_job_and_a_new_one_is_made(bulk: Any) -> None:
    jobs = _Jobs()  # each job still open when the abort reads its state
    jobs.fail_upload = requests.ConnectionError("dropped")
    with pytest.raises(TransientError):
        bulk(jobs).bulk_update("Account", BODY, 3)
    assert jobs.calls == ["create COMMA LF", "upload", "poll", "abort"] * 3


def test_an_upload_the_sdk_refuses_is_transient_and_quotes_no_response(bulk: Any) -> None:
    """simple-salesforce raises SalesforceBulkV2LoadError (not a SalesforceError) with the
    response body in its text: a retry, named by its type only."""
    jobs = _Jobs()
    jobs.fail_upload = SalesforceBulkV2LoadError("Response content: jane.doe@bank.com")
    with pytest.raises(TransientError) as raised:
        bulk(jobs).bulk_update("Account", BODY, 3)
    assert str(raised.value) == "Salesforce bulk_ingest: SalesforceBulkV2LoadError"
    assert jobs.calls == ["create COMMA LF", "upload", "poll", "abort"] * 3


def test_a_share_used_up_mid_job_still_polls_and_aborts_the_job(bulk: Any) -> None:
    """The share guard stops new work, not the watch on a job already writing."""
    jobs = _Jobs(*[requests.ConnectionError("dropped")] * 3, ("InProgress", 0))
    client = bulk(jobs)
    jobs.on_close = lambda: setattr(client, "_exhausted", True)
    with pytest.raises(TransientError):
        client.bulk_update("Account", BODY, 3)
    assert jobs.calls[3:] == ["poll", "poll", "poll", "poll", "abort"]


def test_a_share_used_up_mid_job_still_reads_its_results(bulk: Any) -> None:
    failed = "sf__Id,sf__Error,Id,Tier__c\n001A,STRING_TOO_LONG:x,001A,gold\n"
    jobs = _Jobs(("JobComplete", 3, ("numberRecordsFailed", 1)), failed=failed)
    client = bulk(jobs)
    jobs.on_close = lambda: setattr(client, "_exhausted", True)
    assert [r["sf__Id"] for r in client.bulk_update("Account", BODY, 3)] == ["001A"]
    assert jobs.calls[3:] == ["poll", "failedResults"]


def test_a_job_that_failed_on_the_quota_stops_the_run_s_calls(bulk: Any) -> None:
    jobs = _Jobs(("Failed", 0, ("errorMessage", "ExceededQuota : daily")))
    client = bulk(jobs)
    with pytest.raises(QuotaExhaustedError):
        client.bulk_update("Account", BODY, 3)
    with pytest.raises(QuotaExhaustedError, match="exhausted earlier"):
        client.bulk_update("Account", BODY, 3)
    assert jobs.calls.count("create COMMA LF") == 1


def test_a_job_created_in_another_state_is_aborted(bulk: Any) -> None:
    jobs = _Jobs(*[("UploadComplete", 0)] * 3, opened="UploadComplete")
    with pytest.raises(TransientError, match="opened as UploadComplete"):
        bulk(jobs).bulk_update("Account", BODY, 3)
    assert jobs.calls == ["create COMMA LF", "poll", "abort"] * 3


@pytest.mark.parametrize(
    ("state", "message", "error", "text"),
    [
        (
            "Failed",
            "InvalidBatch : Field name not found : Tier__c",
            ConfigError,
            "Salesforce refused field Tier__c on Account: InvalidBatch",
        ),
        ("Failed", "InvalidJob : bad", ConfigError, "Salesforce refused Account: InvalidJob"),
        ("Failed", "ClientInputError : LineEnding is invalid", ConfigError, "ClientInputError"),
        ("Failed", "FeatureNotEnabled : off", ConfigError, "Account: FeatureNotEnabled"),
        ("Failed", "InvalidOperation : x", ConfigError, "Account: InvalidOperation"),
        ("Failed", "InvalidUrl : x", ConfigError, "Account: InvalidUrl"),
        ("Failed", "InvalidUser : x", ConfigError, "Account: InvalidUser"),
        ("Failed", "ExceededQuota : daily", QuotaExhaustedError, "Failed: ExceededQuota"),
        # not on the Bulk API 2.0 "Errors" page: no row, a retry
        ("Failed", "InvalidVersion : x", TransientError, "Failed: InvalidVersion"),
        ("Failed", "InternalServerError : x", TransientError, "Failed: InternalServerError"),
        ("Aborted", "", TransientError, "bulk job Aborted: no error code"),
        # no code prefix: none of the message is copied (it names a user)
        ("Aborted", "Job aborted by jane.doe@bank.com", TransientError, "Aborted: no error code"),
        ("Failed", "Value 'jane.doe@bank.com': bad", TransientError, "Failed: no error code"),
    ],
)
def test_a_job_that_ends_failed_or_aborted(
    bulk: Any, state: str, message: str, error: type[Exception], text: str
) -> None:
    """Its errorMessage's code decides whether a retry can help; only the code and the
    field's API name are copied. A permanent failure makes one job, not one a retry."""
    jobs = _Jobs((state, 0, ("errorMessage", message)))
    with pytest.raises(error, match=text) as raised:
        bulk(jobs).bulk_update("Account", BODY, 3)
    assert type(raised.value) is error
    assert jobs.calls.count("create COMMA LF") == 1
    assert "not found :" not in str(raised.value)
    assert "jane.doe" not in str(raised.value)


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
