"""The only module that touches simple-salesforce (and Salesforce's raw HTTP).

Every call goes through ``_call``: the API-share guard, then the shared tenacity retry loop
(``connectors/http.py``), with simple-salesforce's exceptions and ``requests`` transport
errors classified by ``errors.py``. What it returns is plain JSON; the connector turns it
into canonical models.

Authentication is done here rather than by simple-salesforce's login helpers, on purpose:
those hard-code ``https://{domain}.salesforce.com`` as the token host and re-login
recursively on 401 (simple-salesforce#569/#685/#804); here the token comes from the org's
own My Domain (``base_url``, which is what client credentials require) and an expired
session is renewed exactly once per call by the retry loop. simple-salesforce is then
given the session id, the instance URL and our ``requests.Session`` (timeouts, pinned CA,
``trust_env`` off), and does all data calls unmodified.

The Metadata API (SOAP, what ``doctor --fix`` creates fields with) goes through zeep with
the WSDL simple-salesforce ships, not through ``sf.mdapi``: that helper builds its zeep
client on a default ``requests.Session`` (system CA, no timeout, none of our counting) and
raises a bare ``Exception`` for any failed component, where we need each component's
result. Here zeep gets a session made like the REST one, and results come back as dicts.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from importlib import resources
from typing import Any, TypeVar

import jwt
import pydantic_core
import requests
import zeep
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceOperationError
from simple_salesforce.format import format_soql
from zeep.exceptions import Error as SoapError
from zeep.exceptions import Fault
from zeep.exceptions import TransportError as SoapTransportError
from zeep.helpers import serialize_object
from zeep.transports import Transport

from connectors import limits
from connectors.calltally import CallCounter
from connectors.contract import data_calls
from connectors.errors import ConfigError, QuotaExhaustedError, TransientError
from connectors.http import call_with_retry, make_session
from connectors.salesforce.config import SalesforceSettings
from connectors.salesforce.errors import classify

log = logging.getLogger(__name__)
T = TypeVar("T")
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
METADATA_BATCH = 10  # components per create/upsert/read call (the Metadata API's limit)
_MD_BINDING = "{http://soap.sforce.com/2006/04/metadata}MetadataBinding"
#: Salesforce refuses new calls (REQUEST_LIMIT_EXCEEDED) while a production org has 25
#: requests of 20 s or longer in flight ("API Request Limits and Allocations",
#: https://developer.salesforce.com/docs/platform/salesforce-app-limits-cheatsheet/guide/
#: salesforce-app-limits-platform-api.html). Workers sharing a store keep all their calls
#: under it together; one process (at most ``MAX_CONCURRENT_APPLIES`` calls) needs no limiter.
CONCURRENT_REQUESTS = 25


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


class _Salesforce(Salesforce):
    """simple-salesforce, its responses decoded by pydantic-core into plain dicts: a query
    page decodes in 40 % less time than with ``json.loads`` (simple-salesforce's default
    also builds an ``OrderedDict`` per object, which doubles that)."""

    def parse_result_to_json(self, result: requests.Response) -> Any:
        return pydantic_core.from_json(result.content)


class SalesforceClient:
    def __init__(
        self, settings: SalesforceSettings, *, sleep: Callable[[float], None] | None = None
    ) -> None:
        self.settings = settings
        self.policy = settings.retry_policy()
        self.session = make_session(self.policy, settings.ca_bundle or None)
        self._sleep = sleep
        self._sf: Salesforce | None = None
        self.calls = CallCounter()  # every HTTP response, by kind of call (and by run)
        self.session.hooks["response"].append(self._count)
        self.allowance: tuple[int, int] | None = None  # (used, limit) from Sforce-Limit-Info
        self._warned = False
        # once the org said "limit exceeded", stop calling (docs/targets.md R5)
        self._exhausted = False
        # apply() runs from the sync engine's write threads: (re)login is read-modify-write
        # on shared state (the counter has its own lock: logging in makes an HTTP call
        # whose response hook counts it)
        self._login_lock = threading.Lock()
        self._soap: zeep.Client | None = None  # the Metadata API client, made on first use
        self._in_flight = limits.shared_slots(
            limits.limit_name("salesforce", "concurrent", settings.base_url),
            CONCURRENT_REQUESTS,
            0.0,
        )

    def __repr__(self) -> str:
        return f"SalesforceClient(base_url={self.settings.base_url!r}, auth={self.settings.auth!r})"

    # --- auth ------------------------------------------------------------------------------

    def _login(self) -> Salesforce:
        s = self.settings
        url = f"{s.base_url}/services/oauth2/token"
        headers: dict[str, str] = {}
        if s.auth == "client_credentials":
            assert s.client_secret is not None
            form = {"grant_type": "client_credentials"}
            auth: tuple[str, str] | None = (
                s.client_id.get_secret_value(),
                s.client_secret.get_secret_value(),
            )
        else:
            assert s.private_key is not None
            claims = {
                "iss": s.client_id.get_secret_value(),
                "sub": s.username,
                "aud": s.audience,
                "exp": int(time.time()) + 180,
            }
            assertion = jwt.encode(claims, s.private_key.get_secret_value(), algorithm="RS256")
            form = {"grant_type": JWT_GRANT, "assertion": assertion}
            auth = None
        try:
            response = self.session.post(url, data=form, auth=auth, headers=headers)
        except requests.RequestException as exc:
            raise TransientError(
                f"Salesforce token endpoint unreachable: {type(exc).__name__}"
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or "access_token" not in body:
            raise classify(
                response.status_code, body.get("error"), str(body.get("error_description", ""))
            )
        instance = str(body.get("instance_url") or s.base_url)
        if not instance.startswith("https://"):
            raise ConfigError("Salesforce returned a non-HTTPS instance_url")
        self._sf = _Salesforce(
            instance_url=instance,
            session_id=body["access_token"],
            session=self.session,
            version=s.api_version,
        )
        return self._sf

    def login(self) -> None:
        """Authenticate now (``doctor``); data calls log in lazily on their own."""
        call_with_retry(self._login, self.policy, sleep=self._sleep)

    def _session_or_login(self) -> Salesforce:
        """The current API session, or a new one; threads that find none log in once."""
        with self._login_lock:
            return self._sf or self._login()

    def _forget_session(self, sf: Salesforce) -> None:
        """Drop ``sf`` after it was refused, unless another thread already replaced it: threads
        that all held the expired session then share one new login instead of each wiping the
        one the other just made."""
        with self._login_lock:
            if self._sf is sf:
                self._sf = None

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

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Counted at the HTTP level, so a bulk job's polls and a retried call count as
        what they are: API calls against the org's allowance."""
        request = response.request
        self.calls.add(call_kind(str(request.method), request.path_url))

    def data_calls(self) -> int:
        return data_calls(self.calls.counts())

    def _call(self, kind: str, fn: Callable[[Salesforce], T]) -> T:
        used: Salesforce | None = None

        def attempt() -> T:
            nonlocal used
            self._guard()
            sf = used = self._session_or_login()
            try:
                with self._in_flight.slot("api") if self._in_flight else nullcontext():
                    result = fn(sf)
            except SalesforceError as exc:
                error = _classify_sf(exc)
                if isinstance(error, QuotaExhaustedError):
                    self._exhausted = True
                raise error from exc
            except SalesforceOperationError as exc:
                raise TransientError(f"Salesforce bulk job did not complete: {kind}") from exc
            except requests.RequestException as exc:
                raise TransientError(f"Salesforce {kind}: {type(exc).__name__}") from exc
            usage = sf.api_usage.get("api-usage") if sf.api_usage else None
            if usage is not None:
                self.allowance = (int(usage.used), int(usage.total))
            return result

        def refresh_auth() -> None:
            if used is not None:
                self._forget_session(used)

        return call_with_retry(attempt, self.policy, refresh_auth=refresh_auth, sleep=self._sleep)

    # --- operations --------------------------------------------------------------------------

    def query(self, query: str) -> dict[str, Any]:
        headers = {"Sforce-Query-Options": f"batchSize={self.settings.page_size}"}
        return self._call("query", lambda sf: dict(sf.query(query, headers=headers)))

    def query_more(self, next_url: str) -> dict[str, Any]:
        return self._call(
            "query_more", lambda sf: dict(sf.query_more(next_url, identifier_is_url=True))
        )

    def query_all(self, query: str) -> list[dict[str, Any]]:
        page = self.query(query)
        records = list(page["records"])
        while not page.get("done", True):
            page = self.query_more(page["nextRecordsUrl"])
            records.extend(page["records"])
        return records

    def describe(self, sobject: str) -> dict[str, Any]:
        return self._call(
            "describe", lambda sf: dict(sf.restful(f"sobjects/{sobject}/describe") or {})
        )

    def collection(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, **params: str
    ) -> list[dict[str, Any]]:
        """One sObject Collections call (≤ 200 records); the per-record results in order.
        The body is encoded once, not on every attempt, and by pydantic-core (3x the json
        module's speed: a 100,000-customer sync sends 20 MB of these)."""
        data = None if body is None else pydantic_core.to_json(body)
        result = self._call(
            "collections",
            lambda sf: sf.restful(path, method=method, data=data, params=params or None),
        )
        return [dict(r) for r in (result or [])]

    def bulk_update(self, sobject: str, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
        """One Bulk API 2.0 update job; the failed rows (``sf__Id``, ``sf__Error``)."""

        def run(sf: Salesforce) -> list[dict[str, str]]:
            handler = getattr(sf.bulk2, sobject)
            jobs = handler.update(
                records=[dict(r) for r in rows], wait=self.settings.bulk_poll_seconds
            )
            failed: list[dict[str, str]] = []
            for job in jobs:
                if int(job["numberRecordsFailed"]):
                    text = handler.get_failed_records(job["job_id"])
                    failed.extend(csv.DictReader(io.StringIO(text)))
            return failed

        return self._call("bulk_ingest", run)

    # --- Metadata API (SOAP) ------------------------------------------------------------------

    def create_metadata(
        self, type_name: str, components: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """``createMetadata``: one ``SaveResult`` per component (``fullName``, ``success``,
        ``errors``), in order; 10 components per call."""
        return self._save_metadata("createMetadata", type_name, components)

    def upsert_metadata(
        self, type_name: str, components: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """``upsertMetadata``: one ``UpsertResult`` per component (``created`` as well)."""
        return self._save_metadata("upsertMetadata", type_name, components)

    def read_metadata(self, type_name: str, full_names: Sequence[str]) -> list[dict[str, Any]]:
        """``readMetadata``: the components that exist, as dicts (missing names are absent)."""
        records: list[dict[str, Any]] = []
        for start in range(0, len(full_names), METADATA_BATCH):
            batch = list(full_names[start : start + METADATA_BATCH])
            result = self._metadata("readMetadata", type_name, batch) or []
            if isinstance(result, Mapping):  # zeep unwraps a ReadResult to its records
                result = result.get("records") or []
            records += [dict(r) for r in result if r and r.get("fullName")]
        return records

    def _save_metadata(
        self, operation: str, type_name: str, components: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for start in range(0, len(components), METADATA_BATCH):
            batch = components[start : start + METADATA_BATCH]
            soap = self._soap_client()
            try:
                kind = soap.get_type(f"ns0:{type_name}")
                typed = [kind(**dict(c)) for c in batch]
            except (SoapError, TypeError) as exc:  # not a component the WSDL allows
                raise ConfigError(f"Metadata API {type_name}: {exc}") from exc
            results += self._metadata(operation, typed) or []
        return results

    def _soap_client(self) -> zeep.Client:
        """zeep on the bundled Metadata WSDL (read from disk, nothing fetched), posting
        through a session made like ``self.session``: pinned CA, no proxies from the
        environment, every response counted. zeep passes its own ``timeout`` to each post,
        so ours is given to it explicitly. A separate session, because zeep's transport
        sets its own User-Agent and a ``file://`` adapter on the session it is given."""
        if self._soap is None:
            session = make_session(self.policy, self.settings.ca_bundle or None)
            session.hooks["response"].append(self._count)
            timeout = (self.policy.connect_timeout, self.policy.read_timeout)
            wsdl = resources.files("simple_salesforce").joinpath("metadata.wsdl")
            self._soap = zeep.Client(
                str(wsdl),
                transport=Transport(session=session, operation_timeout=timeout),
                settings=zeep.Settings(strict=False, xsd_ignore_sequence_order=True),
            )
        return self._soap

    def _metadata(self, operation: str, *args: Any) -> Any:
        """One Metadata API call on the current session (its id goes in the SOAP
        ``SessionHeader``), through ``_call``: guard, retries, one re-login on an expired
        session. SOAP faults are classified like the REST error with the same code."""

        def run(sf: Salesforce) -> Any:
            soap = self._soap_client()
            service = soap.create_service(_MD_BINDING, sf.metadata_url)
            header = soap.get_element("ns0:SessionHeader")(sessionId=sf.session_id)
            try:
                result = getattr(service, operation)(*args, _soapheaders=[header])
            except Fault as exc:
                raise _classify_fault(exc) from exc
            except SoapTransportError as exc:  # an HTTP error without a SOAP body
                raise classify(exc.status_code, None, "") from exc
            except SoapError as exc:  # refused before sending (zeep validates the request)
                raise ConfigError(f"Metadata API {operation}: {exc}") from exc
            return serialize_object(result, dict)

        return self._call("metadata", run)

    def close(self) -> None:
        self.session.close()
        if self._soap is not None:
            self._soap.transport.session.close()


#: (method or None for any, path regex, kind): first match wins.
_CALL_KINDS: tuple[tuple[str | None, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern), kind)
    for method, pattern, kind in (
        (None, r".*/oauth2/token", "oauth_token"),
        ("POST", r".*/services/Soap/m/[\d.]+/?", "metadata"),
        (None, r".*/jobs/.*", "bulk"),
        ("PATCH", r".*/composite/sobjects/\w+/\w+/?", "collections_upsert"),
        ("PATCH", r".*/composite/sobjects/?", "collections_update"),
        ("POST", r".*/composite/sobjects/?", "collections_create"),
        ("DELETE", r".*/composite/sobjects/?", "collections_delete"),
        (None, r".*/query(?:All)?/01g[^/]*", "query_more"),
        (None, r".*/query(?:All)?/?", "query"),
        (None, r".*/describe/?", "describe"),
    )
)


def call_kind(method: str, path: str) -> str:
    """The kind of an API call from its method and path (the names the sandbox counts by)."""
    path = path.split("?", 1)[0]
    for wanted, pattern, kind in _CALL_KINDS:
        if (wanted is None or wanted == method) and pattern.fullmatch(path):
            return kind
    return "other"


#: SOAP fault codes → the HTTP status Salesforce's REST API answers the same code with, so
#: one table (``errors.py``) classifies both; any other fault is a request the org refused.
_FAULT_STATUS = {
    "INVALID_SESSION_ID": 401,
    "REQUEST_LIMIT_EXCEEDED": 403,
    "INSUFFICIENT_ACCESS": 403,
    "API_DISABLED_FOR_ORG": 403,
    "SERVER_UNAVAILABLE": 503,
    "UNKNOWN_EXCEPTION": 500,
}


def _classify_fault(fault: Fault) -> Exception:
    code = str(fault.code or "").rpartition(":")[2]
    message = str(fault.message or "").strip().removeprefix(f"{code}: ")
    error = classify(_FAULT_STATUS.get(code, 400), code, message)
    if isinstance(error, ConfigError):  # permanent: say what the org said (no record data)
        return ConfigError(f"Metadata API {code}: {message}")
    return error


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
