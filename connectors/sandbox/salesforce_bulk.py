"""Bulk API 2.0 for the Salesforce sandbox: query jobs and ingest jobs over CSV.

Wire details follow the Salesforce Bulk API 2.0 Developer Guide and what simple-salesforce's
``bulk2`` needs: ingest jobs open as ``Open``, data is uploaded with ``PUT .../batches`` (201),
closed with ``PATCH {"state": "UploadComplete"}``, and report ``numberRecordsProcessed/Failed``;
``successfulResults``/``failedResults``/``unprocessedrecords`` are CSV with the ``sf__``
columns. Query results always carry ``Sforce-NumberOfRecords`` and ``Sforce-Locator``
(``null`` on the last chunk). A job is processed when it is closed, so the first poll sees
``JobComplete``. Saves go through the org's ordinary per-record rules.
"""

from __future__ import annotations

import csv
import io
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from connectors.sandbox.salesforce_org import PageState, SalesforceOrg
from connectors.sandbox.salesforce_saves import SaveResult
from connectors.sandbox.salesforce_soql import Query, SoqlError, parse
from connectors.sandbox.salesforce_specs import ObjectSpec
from connectors.sandbox.salesforce_wire import INTEGRATION_USER_ID, sf_datetime
from connectors.sandbox.server import Request, Response

NULL = "#N/A"  # Bulk API's way of writing null into a field


@dataclass
class Job:
    id: str
    operation: str
    object: str
    state: str
    api_version: str
    external_id_field: str | None = None
    query: Query | None = None
    rows: list[dict[str, str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    successes: list[dict[str, str]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    locators: dict[str, PageState] = field(default_factory=dict)
    created: str = field(default_factory=lambda: sf_datetime(datetime.now(UTC)))

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": INTEGRATION_USER_ID,
            "createdDate": self.created,
            "systemModstamp": self.created,
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.api_version),
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
        }
        if self.query is None:
            out["externalIdFieldName"] = self.external_id_field
            out["numberRecordsProcessed"] = len(self.successes) + len(self.failures)
            out["numberRecordsFailed"] = len(self.failures)
        else:
            out["numberRecordsProcessed"] = 0
        return out


def _error(status: int, code: str, message: str) -> Response:
    return Response.json([{"errorCode": code, "message": message}], status)


def to_csv(columns: list[str], rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _csv_text(row.get(c)) for c in columns])
    return buf.getvalue().encode("utf-8")


def _csv_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return sf_datetime(value)
    return str(value)


def from_csv_value(spec: ObjectSpec, name: str, text: str) -> Any:
    """A CSV cell → the typed value the org stores (``#N/A`` is null)."""
    if text == NULL:
        return None
    f = spec.fields.get(name)
    kind = f.type if f else "string"
    if kind == "double":
        try:
            return float(text)
        except ValueError:
            return text  # the org's type check reports it
    if kind == "boolean":
        return {"true": True, "false": False}.get(text.lower(), text)
    return text


class BulkApi:
    def __init__(self, org: SalesforceOrg) -> None:
        self.org = org
        self.jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _new_id(self) -> str:
        with self._lock:
            return f"750{next(self._ids):012d}AAA"

    # --- ingest --------------------------------------------------------------------------

    def create_ingest(self, request: Request, version: str) -> Response:
        spec = request.json() or {}
        operation = spec.get("operation")
        obj = spec.get("object")
        if operation not in ("insert", "update", "upsert", "delete", "hardDelete"):
            return _error(400, "INVALIDJOB", f"unsupported operation {operation!r}")
        if obj not in self.org.schema:
            return _error(400, "INVALIDJOB", f"Unknown sObject type {obj!r}")
        if operation == "upsert" and not spec.get("externalIdFieldName"):
            return _error(400, "INVALIDJOB", "externalIdFieldName is required for upsert")
        job = Job(self._new_id(), operation, obj, "Open", version, spec.get("externalIdFieldName"))
        self.jobs[job.id] = job
        return Response.json(job.info())

    def upload(self, request: Request, job_id: str) -> Response:
        job = self.jobs.get(job_id)
        if job is None or job.query is not None:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        if job.state != "Open":
            return _error(409, "INVALIDJOBSTATE", f"job is {job.state}")
        reader = csv.DictReader(io.StringIO(request.body.decode("utf-8")))
        job.columns = list(reader.fieldnames or [])
        job.rows.extend(reader)
        return Response(201)

    def set_state(self, request: Request, job_id: str, *, query: bool) -> Response:
        job = self.jobs.get(job_id)
        if job is None or (job.query is not None) != query:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        state = (request.json() or {}).get("state")
        if state == "Aborted":
            job.state = "Aborted"
        elif state == "UploadComplete" and job.state == "Open":
            self._process(job)
        else:
            return _error(400, "INVALIDJOBSTATE", f"cannot move job from {job.state} to {state}")
        return Response.json(job.info())

    def _process(self, job: Job) -> None:
        spec = self.org.schema[job.object]
        records = []
        for row in job.rows:
            rec: dict[str, Any] = {"attributes": {"type": job.object}}
            for name, text in row.items():
                if name is None or text == "":
                    continue  # an empty cell leaves the field unchanged
                if name == "Id":
                    rec["id"] = text
                else:
                    rec[name] = from_csv_value(spec, name, text)
            records.append(rec)
        if job.operation == "update":
            results = self.org.update(records, all_or_none=False)
        elif job.operation == "insert":
            results = self.org.create(records, all_or_none=False)
        elif job.operation == "upsert":
            assert job.external_id_field is not None
            results = self.org.upsert(job.object, job.external_id_field, records, False)
        else:
            results = self.org.delete([str(r.get("id")) for r in records], all_or_none=False)
        self._collect(job, results)
        job.state = "JobComplete"

    def _collect(self, job: Job, results: list[SaveResult]) -> None:
        for row, result in zip(job.rows, results, strict=True):
            if result.success:
                job.successes.append(
                    {
                        "sf__Id": result.id or "",
                        "sf__Created": str(bool(result.created)).lower(),
                        **row,
                    }
                )
            else:
                err = result.errors[0]
                job.failures.append(
                    {
                        "sf__Id": row.get("Id", ""),
                        "sf__Error": f"{err.status_code}:{err.message}",
                        **row,
                    }
                )

    def ingest_results(self, job_id: str, kind: str) -> Response:
        job = self.jobs.get(job_id)
        if job is None or job.query is not None:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        if kind == "successfulResults":
            body = to_csv(["sf__Id", "sf__Created", *job.columns], job.successes)
        elif kind == "failedResults":
            body = to_csv(["sf__Id", "sf__Error", *job.columns], job.failures)
        else:
            body = to_csv(job.columns, job.rows if job.state in ("Open", "Aborted") else [])
        return Response(200, body, {"Content-Type": "text/csv"})

    # --- query ---------------------------------------------------------------------------

    def create_query(self, request: Request, version: str) -> Response:
        spec = request.json() or {}
        operation = spec.get("operation", "query")
        try:
            # "queryAll" takes deleted and archived rows too, as the REST resource does
            query = replace(parse(str(spec.get("query", ""))), all_rows=operation == "queryAll")
            self.org.check_query(query)
        except SoqlError as exc:
            return _error(400, "INVALIDJOB", str(exc))
        job = Job(self._new_id(), operation, query.sobject, "UploadComplete", version, query=query)
        self.jobs[job.id] = job
        response = Response.json(job.info())
        job.state = "JobComplete"  # processed at once: the next poll sees it complete
        return response

    def query_results(self, request: Request, job_id: str, version: str) -> Response:
        job = self.jobs.get(job_id)
        if job is None or job.query is None:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        if version != job.api_version:
            return _error(409, "INVALIDVERSION", "results must be read with the job's API version")
        if job.state != "JobComplete":
            return _error(
                412,
                "JOB_NOT_COMPLETE",
                "can only download query results of successfully completed bulk job with "
                f"status: JOB_COMPLETE. Current status: {job.state.upper()}",
            )
        locator = request.arg("locator")
        start = PageState(None, 0) if not locator else job.locators.get(locator)
        if start is None:
            return _error(400, "INVALIDLOCATOR", f"invalid locator {locator}")
        try:
            size = min(max(int(request.arg("maxRecords") or 50_000), 1), 1_000_000)
        except ValueError:
            return _error(400, "INVALIDPARAM", "maxRecords must be a number")
        rows, nxt = self.org.page(job.query, start, size)
        next_locator = "null"
        if nxt is not None:
            next_locator = f"L{nxt.emitted:09d}"
            job.locators[next_locator] = nxt
        body = to_csv(list(job.query.fields), rows)
        return Response(
            200,
            body,
            {
                "Content-Type": "text/csv",
                "Sforce-Locator": next_locator,
                "Sforce-NumberOfRecords": str(len(rows)),
            },
        )

    def job_info(self, job_id: str, *, query: bool) -> Response:
        job = self.jobs.get(job_id)
        if job is None or (job.query is not None) != query:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        return Response.json(job.info())

    def delete_job(self, job_id: str) -> Response:
        self.jobs.pop(job_id, None)
        return Response(204)


_INGEST_RESULTS = "successfulResults|failedResults|unprocessedrecords"


def bulk_routes(
    bulk: BulkApi, *, job: str
) -> list[tuple[str, str, Callable[[Request], Response], str]]:
    """The Bulk API 2.0 rows of the REST route table (paths under ``/services/data/vNN.N``;
    ``job`` is the job-id pattern): (method, path regex, handler, call kind)."""
    return [
        (
            "POST",
            "/jobs/ingest/?",
            lambda q: bulk.create_ingest(q, q.params["ver"]),
            "bulk_ingest_create",
        ),
        (
            "PUT",
            f"/jobs/ingest/{job}/batches/?",
            lambda q: bulk.upload(q, q.params["job"]),
            "bulk_ingest_upload",
        ),
        (
            "PATCH",
            f"/jobs/ingest/{job}/?",
            lambda q: bulk.set_state(q, q.params["job"], query=False),
            "bulk_ingest_state",
        ),
        (
            "GET",
            f"/jobs/ingest/{job}/?",
            lambda q: bulk.job_info(q.params["job"], query=False),
            "bulk_ingest_status",
        ),
        (
            "GET",
            f"/jobs/ingest/{job}/(?P<kind>{_INGEST_RESULTS})/?",
            lambda q: bulk.ingest_results(q.params["job"], q.params["kind"]),
            "bulk_ingest_results",
        ),
        (
            "DELETE",
            f"/jobs/(?:ingest|query)/{job}/?",
            lambda q: bulk.delete_job(q.params["job"]),
            "bulk_delete",
        ),
        (
            "POST",
            "/jobs/query/?",
            lambda q: bulk.create_query(q, q.params["ver"]),
            "bulk_query_create",
        ),
        (
            "PATCH",
            f"/jobs/query/{job}/?",
            lambda q: bulk.set_state(q, q.params["job"], query=True),
            "bulk_query_state",
        ),
        (
            "GET",
            f"/jobs/query/{job}/?",
            lambda q: bulk.job_info(q.params["job"], query=True),
            "bulk_query_status",
        ),
        (
            "GET",
            f"/jobs/query/{job}/results/?",
            lambda q: bulk.query_results(q, q.params["job"], q.params["ver"]),
            "bulk_query_results",
        ),
    ]
