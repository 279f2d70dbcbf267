"""Salesforce's REST API through simple-salesforce (and Salesforce's raw HTTP): queries,
describe, sObject Collections and Bulk API 2.0 jobs.

Every call goes through ``call``: the API-share guard, then the shared tenacity retry loop
(``connectors/http.py``), with simple-salesforce's exceptions and ``requests`` transport
errors classified by ``errors.py``. What it returns is plain JSON; the connector turns it
into canonical models.

The vendor SDK is confined to the ``client*`` modules of this folder: this one;
``client_session.py``, which logs in (the OAuth token, and the simple-salesforce object
the calls here are made on, renewed once per call on an expired session); and
``client_metadata.py`` for the Metadata API (SOAP, what ``doctor --fix`` creates fields
with), whose calls go through this module's ``call`` as well.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext, suppress
from typing import Any, TypeVar

import pydantic_core
import requests
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import ColumnDelimiter, LineEnding, Operation
from simple_salesforce.exceptions import SalesforceBulkV2LoadError, SalesforceError
from simple_salesforce.format import format_soql

from connectors import limits
from connectors.calltally import CallCounter
from connectors.contract import data_calls
from connectors.errors import ConnectorError, QuotaExhaustedError, TransientError
from connectors.http import call_with_retry, make_session
from connectors.salesforce.bulkjob import BULK_FINAL, await_job, unprocessed
from connectors.salesforce.callkinds import call_kind
from connectors.salesforce.client_session import ApiSession
from connectors.salesforce.config import SalesforceSettings
from connectors.salesforce.errors import (
    bulk_job_error,
    classify,
    leading_code,
    read_only_refusal,
    saved_code,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Salesforce refuses new calls (REQUEST_LIMIT_EXCEEDED) while a production org has 25
#: requests of 20 s or longer in flight ("API Request Limits and Allocations",
#: https://developer.salesforce.com/docs/platform/salesforce-app-limits-cheatsheet/guide/
#: salesforce-app-limits-platform-api.html). Workers sharing a store keep all their calls
#: under it together; one process (at most ``MAX_CONCURRENT_APPLIES`` calls) needs no limiter.
CONCURRENT_REQUESTS = 25
#: The result lists of a bulk job read here ("Get Job Failed Record Results", "Get Job
#: Unprocessed Record Results"), and the code an unprocessed row is reported with: one
#: ``errors.RETRYABLE_RECORD_CODES`` holds, since the row was never tried.
_FAILED = "failedResults"
_UNPROCESSED = "unprocessedrecords"
UNPROCESSED_CODE = "PROCESSING_HALTED"


def soql(template: str, *args: Any, **kwargs: Any) -> str:
    """SOQL with properly quoted values (simple-salesforce's ``format_soql``)."""
    return str(format_soql(template, *args, **kwargs))


def select(fields: Sequence[str], sobject: str, where: str = "", *values: Any) -> str:
    """``SELECT fields FROM sobject [where]``. Identifiers come from the validated mapping
    (and ``doctor`` checks them against describe); values are only ever bound through
    ``format_soql`` placeholders (``{}``) in ``where``, never pasted in."""
    text = f"SELECT {', '.join(fields)} FROM {sobject}"  # noqa: S608
    if where:
        text = f"{text} {where}"
    return soql(text, *values) if values else text


class SalesforceClient:
    def __init__(
        self,
        settings: SalesforceSettings,
        *,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._clock = clock  # what a bulk job's wait is measured with
        self.policy = settings.retry_policy()
        self.session = make_session(self.policy, settings.ca_bundle or None)
        self._sleep = sleep
        self.auth = ApiSession(settings, self.session)  # shared by the write threads
        self.calls = CallCounter()  # every HTTP request sent, by kind of call (and by run)
        self.session.on_send.append(self.count)
        self.allowance: tuple[int, int] | None = None  # (used, limit) from Sforce-Limit-Info
        self._warned = False
        # once the org said "limit exceeded", stop calling (docs/targets.md R5)
        self._exhausted = False
        self._in_flight = limits.shared_slots(
            limits.limit_name("salesforce", "concurrent", settings.base_url),
            CONCURRENT_REQUESTS,
            0.0,
        )

    def __repr__(self) -> str:
        return f"SalesforceClient(base_url={self.settings.base_url!r}, auth={self.settings.auth!r})"

    def login(self) -> None:
        """Authenticate now (``doctor``); data calls log in lazily on their own."""
        call_with_retry(self.auth.login, self.policy, sleep=self._sleep)

    # --- the one call path -----------------------------------------------------------------

    def _guard(self) -> None:
        """Refuse to go past ``api_share`` of the org's daily allowance (R5). Our own calls
        are what we count: the org-wide figure includes every other integration."""
        if self._exhausted:
            raise QuotaExhaustedError("Salesforce API allowance exhausted earlier in this run")
        if self.allowance is None:
            return
        budget = self.settings.api_share * self.allowance[1]
        used = self.data_calls()
        if used >= budget:
            raise QuotaExhaustedError(
                f"crmtier used {used} Salesforce API calls, its api_share "
                f"({self.settings.api_share:.0%}) of the daily {self.allowance[1]}"
            )
        if used >= budget / 2 and not self._warned:
            self._warned = True
            log.warning("half of crmtier's Salesforce API share is used", extra={"used": used})

    def count(self, request: requests.PreparedRequest) -> None:
        """Counted at the HTTP level, so a bulk job's polls and a retried call count as
        what they are: API calls against the org's allowance. Counted as the request is
        sent, as Zoho's and FXiaoke's are, not when its answer arrives: a write whose
        answer never came may have landed, and counts (against the share, and in the run's
        tally of the plan, which tells a plan stopped after a call left from one that made
        nothing: ``WritePool``)."""
        self.calls.add(call_kind(str(request.method), request.path_url))

    def data_calls(self) -> int:
        return data_calls(self.calls.counts())

    def call(self, kind: str, fn: Callable[[Salesforce], T], *, guard: bool = True) -> T:
        """``fn`` on the API session: the share guard, the concurrency slot, retries, one
        re-login on an expired session, the SDK's errors classified (every call, REST or
        ``client_metadata.py``'s SOAP, goes through here). ``guard=False`` for the calls on
        a job already open (poll, results, abort): a share used up mid-job must not leave
        the job writing unwatched and never aborted."""
        used: Salesforce | None = None

        def attempt() -> T:
            nonlocal used
            if guard:
                self._guard()
            sf = used = self.auth.current()
            try:
                with self._in_flight.slot("api") if self._in_flight else nullcontext():
                    result = fn(sf)
            except SalesforceError as exc:
                error = _classify_sf(exc)
                self._exhausted |= isinstance(error, QuotaExhaustedError)
                raise error from exc
            except (requests.RequestException, SalesforceBulkV2LoadError) as exc:
                # the upload's error quotes the response body: its type name only
                raise TransientError(f"Salesforce {kind}: {type(exc).__name__}") from exc
            usage = sf.api_usage.get("api-usage") if sf.api_usage else None
            if usage is not None:
                self.allowance = (int(usage.used), int(usage.total))
            return result

        def refresh_auth() -> None:
            if used is not None:
                self.auth.forget(used)

        return call_with_retry(attempt, self.policy, refresh_auth=refresh_auth, sleep=self._sleep)

    # --- operations --------------------------------------------------------------------------

    def query(self, query: str, *, include_deleted: bool = False) -> dict[str, Any]:
        """One page of ``query``; ``include_deleted``: of the ``queryAll`` resource, which
        also returns deleted records (the Recycle Bin) and archived Tasks ("QueryAll",
        REST API Developer Guide; simple-salesforce's ``include_deleted``). Its later pages
        come from ``nextRecordsUrl`` as ``query``'s do ("Although the nextRecordsUrl has
        query in the URL, it still provides the remaining results from the initial QueryAll
        request", same page)."""
        headers = {"Sforce-Query-Options": f"batchSize={self.settings.page_size}"}
        return self.call(
            "query",
            lambda sf: dict(sf.query(query, include_deleted=include_deleted, headers=headers)),
        )

    def query_more(self, next_url: str) -> dict[str, Any]:
        return self.call(
            "query_more", lambda sf: dict(sf.query_more(next_url, identifier_is_url=True))
        )

    def query_all(self, query: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Every page of ``query`` (``include_deleted``: see ``query``)."""
        page = self.query(query, include_deleted=include_deleted)
        records = list(page["records"])
        while not page.get("done", True):
            page = self.query_more(page["nextRecordsUrl"])
            records.extend(page["records"])
        return records

    def describe(self, sobject: str) -> dict[str, Any]:
        return self.call(
            "describe", lambda sf: dict(sf.restful(f"sobjects/{sobject}/describe") or {})
        )

    def collection(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, **params: str
    ) -> list[dict[str, Any]]:
        """One sObject Collections call (≤ 200 records); the per-record results in order.
        The body is encoded once, not on every attempt, and by pydantic-core (3x the json
        module's speed: a 100,000-customer sync sends 20 MB of these). A call that saved
        no record, refused for the org's read-only mode, raises ``ReadOnlyError``
        (``errors.read_only_refusal``)."""
        data = None if body is None else pydantic_core.to_json(body)
        result = self.call(
            "collections",
            lambda sf: sf.restful(path, method=method, data=data, params=params or None),
        )
        saved = [dict(r) for r in (result or [])]
        refused = read_only_refusal([saved_code(r) for r in saved])
        if refused is not None:  # the org is read-only: so is every later write of the run
            raise refused
        return saved

    def bulk_update(self, sobject: str, body: str, records: int) -> list[dict[str, str]]:
        """One Bulk API 2.0 update job of ``body`` (CSV, ``records`` rows, within the upload
        limit: ``BULK_UPLOAD_BYTES``); the rows not written (``sf__Id``, ``sf__Error``):
        those that failed, and those the job never processed, as retryable.

        The job is driven here through the SDK's own job client rather than
        ``bulk2.<object>.update``: that path parses our CSV twice more (counting and
        re-splitting it) and, after polling the job to ``JobComplete``, reads its state
        once more, a fifth call where Bulk API 2.0 needs four (create, upload, close, one
        poll: ``contract.BULK_JOB_CALLS``). Opening the job (create, upload, close) is one
        call to the retry loop: a job that failed to open is aborted and a new one made.
        Each poll is a call of its own, retried on the same job, which is aborted only when
        the polls give up. A job that ends ``Failed`` or ``Aborted`` raises what its
        ``errorMessage`` means (``errors.bulk_job_error``): a column Salesforce does not
        know is a ``ConfigError``, not a new job on every retry."""

        def jobs(sf: Salesforce) -> Any:
            # the SDK's job calls (simple-salesforce 1.12's _Bulk2Client)
            return getattr(sf.bulk2, sobject)._client

        def open_job(sf: Salesforce) -> str:
            client = jobs(sf)
            # the dialect bulkcsv writes, said rather than left to the defaults ("Create a Job")
            created = client.create_job(
                Operation.update, column_delimiter=ColumnDelimiter.COMMA, line_ending=LineEnding.LF
            )
            job_id = str(created["id"])
            try:
                if created.get("state") != "Open":
                    raise TransientError(f"Salesforce bulk job opened as {created.get('state')}")
                client.upload_job_data(job_id, body)
                client.close_job(job_id)
            except Exception:
                _abort_job(client, job_id)
                raise
            return job_id

        job_id = self.call("bulk_ingest", open_job)
        try:
            job = await_job(
                lambda: self.call(
                    "bulk_poll", lambda sf: jobs(sf).get_job(job_id, False), guard=False
                ),
                records,
                self.settings.bulk_poll_seconds,
                self._sleep or time.sleep,
                self._clock,
            )
        except Exception:
            with suppress(ConnectorError):
                self.call("bulk_abort", lambda sf: _abort_job(jobs(sf), job_id), guard=False)
            raise
        if job["state"] != "JobComplete":
            error = bulk_job_error(job["state"], str(job.get("errorMessage") or ""), sobject)
            # the org's job allowance is used up: no more calls this run, as a refused call
            self._exhausted |= isinstance(error, QuotaExhaustedError)
            raise error
        failed = []
        if int(job.get("numberRecordsFailed") or 0):
            failed = self._job_results(jobs, job_id, _FAILED)
        missing = unprocessed(job, records)
        if missing:
            failed += self._unprocessed_rows(jobs, job_id, missing)
        codes = [leading_code(row.get("sf__Error", "")) for row in failed]
        refused = read_only_refusal(codes + [None] * (records - len(failed)))
        if refused is not None:  # as for a collection call (``collection``)
            raise refused
        return failed

    def _unprocessed_rows(
        self, jobs: Callable[[Salesforce], Any], job_id: str, missing: int
    ) -> list[dict[str, str]]:
        """The ``missing`` rows a complete job did not process, as failed rows that may pass
        on a retry ("Get Job Unprocessed Record Results"). When the list does not name them
        all, which rows were written is unknown: the whole job counts as not written (its
        updates set values, so sending them again is harmless)."""
        rows = [
            {"sf__Id": row["Id"], "sf__Error": f"{UNPROCESSED_CODE}:not processed by the job"}
            for row in self._job_results(jobs, job_id, _UNPROCESSED)
        ]
        if len(rows) < missing:
            raise TransientError(
                f"Salesforce bulk job left {missing} rows unprocessed and listed {len(rows)}"
            )
        return rows

    def _job_results(
        self, jobs: Callable[[Salesforce], Any], job_id: str, kind: str
    ) -> list[dict[str, str]]:
        """A job's result rows of ``kind``, read past the share guard: the job wrote them."""
        text = self.call(
            "bulk_results", lambda sf: jobs(sf).get_ingest_results(job_id, kind), guard=False
        )
        return list(csv.DictReader(io.StringIO(text)))

    def close(self) -> None:
        self.session.close()


def _abort_job(jobs: Any, job_id: str) -> None:
    """Abort a job this run gave up on (as the SDK's own ``update`` does), so a retry's new
    job is the only one that writes; a job already final is left alone."""
    with suppress(SalesforceError, requests.RequestException):
        if jobs.get_job(job_id, False)["state"] not in BULK_FINAL:
            jobs.abort_job(job_id, False)


def _classify_sf(exc: SalesforceError) -> Exception:
    content = exc.content
    code, message = None, ""
    fields: list[str] = []
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        code = content[0].get("errorCode")
        message = str(content[0].get("message", ""))
        fields = [str(f) for f in content[0].get("fields") or []]
    elif isinstance(content, Mapping):
        code = content.get("errorCode") or content.get("error")
        message = str(content.get("message", ""))
    return classify(int(exc.status or 0), code, message, fields=fields)
