"""A local Salesforce org that unmodified simple-salesforce talks to over real HTTPS.

Speaks the REST wire format of the Salesforce REST API Developer Guide: OAuth2 token endpoint
(client credentials and JWT bearer), ``query``/``queryAll`` with ``nextRecordsUrl`` paging (deletes
are not modelled, so ``queryAll`` answers like ``query``), sObject Collections (update, create,
upsert by external id, delete) with per-record results, single-record sObject calls,
``describe``, ``limits``, Bulk API 2.0 (``salesforce_bulk.py``), and Outbound Messages
(``salesforce_outbound.py``). Every data response carries ``Sforce-Limit-Info``; going past
the daily allowance gives the real 403 ``REQUEST_LIMIT_EXCEEDED``. Customers are Accounts
(Person Accounts for individuals, business Accounts for corporates) seeded from the shared
generator through the default mapping, stored in SQLite so a million of them is cheap.

Faults a test wants are one named call away: ``rate_limit()``, ``expire_session()``,
``lock_rows()``, ``server_error()``, ``drop_connections()``, ``lose_responses()``,
``exhaust_daily_limit()``.

Control API (``Authorization: Bearer <control_token>``), besides the shared ``GET /calls``,
``POST /faults``, ``POST /reset`` and ``POST /latency`` of ``server.py``:

=========================================  ================================================
``POST /__sandbox__/customers/{id}``       ``{"changes": {canonical path: value},
                                           "modstamp"?: ISO}``: edit, bump, notify
``GET  /__sandbox__/customers/{id}/written``  the write-back fields, by canonical name
``POST /__sandbox__/notifications/target``  ``{"url", "ca_bundle"?, "backoff_base"?}``
``POST /__sandbox__/sessions/expire``      every issued token becomes invalid
``POST /__sandbox__/locks``                ``{"ids": [...], "times": n}``: UNABLE_TO_LOCK_ROW
``POST /__sandbox__/limits``               ``{"daily"?: n, "used"?: n}``: the API allowance
``GET  /__sandbox__/writes``               tasks, memberships and the write-call count
=========================================  ================================================
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.mapping import DefaultMapping, load_default_mapping
from connectors.salesforce.mapping import from_crm_value
from connectors.sandbox.base import SandboxInfo, SandboxLifecycle, SandboxTask
from connectors.sandbox.generator import TEXT_IMPORTED_INPUTS, SyntheticCustomer, generate
from connectors.sandbox.optional import writeback_targets
from connectors.sandbox.salesforce_bulk import BulkApi
from connectors.sandbox.salesforce_metadata import MetadataApi
from connectors.sandbox.salesforce_org import (
    PageState,
    QueryFieldError,
    SalesforceOrg,
    SaveResult,
    UnknownObjectError,
)
from connectors.sandbox.salesforce_outbound import OutboundMessenger, Target
from connectors.sandbox.salesforce_schema import (
    CLOSED_TASK_STATUSES,
    EXTERNAL_KEY_FIELD,
    INTEGRATION_USER_ID,
    ORG_ID,
    PREFIXES,
    account_of_contact,
    make_id,
    person_contact_id,
    sf_datetime,
    to_sf_value,
)
from connectors.sandbox.salesforce_soql import Query, SoqlError, parse
from connectors.sandbox.server import DropConnection, Request, Response
from connectors.sandbox.store import format_ts

API_VERSIONS = ("59.0", "60.0", "61.0", "62.0", "63.0", "64.0", "65.0")
JWT_USERNAME = "integration@crmtier.sandbox"
_DATA = r"/services/data/v(?P<ver>\d+\.\d)"
_INGEST_RESULTS = "successfulResults|failedResults|unprocessedrecords"
_COLLECTION_LIMIT = 200  # records (or ids) per sObject Collections call
#: Route kinds that change data: what ``write_calls()`` counts.
WRITE_KINDS = (
    "collections_update",
    "collections_create",
    "collections_upsert",
    "collections_delete",
    "sobject_create",
    "sobject_update",
    "sobject_upsert",
    "sobject_delete",
    "bulk_ingest_create",
)


def _sf_error(status: int, code: str, message: str) -> Response:
    return Response.json([{"message": message, "errorCode": code}], status)


def _too_many_records() -> Response:
    """Salesforce's answer to a collection call with more than 200 records or ids."""
    return _sf_error(
        400,
        "EXCEEDED_ID_LIMIT",
        f"record limit reached. cannot submit more than {_COLLECTION_LIMIT} records into this call",
    )


@dataclass
class QueryCursor:
    """A server-side query cursor: the parsed query, its batch size, and where each page
    that has been handed out starts (so re-reading a ``nextRecordsUrl`` is idempotent)."""

    query: Query
    batch_size: int
    total: int  # ``totalSize``: the same on every page, as in Salesforce
    starts: dict[int, PageState] = field(default_factory=lambda: {0: PageState(None, 0)})


class SalesforceSandbox(SandboxLifecycle):
    crm = "salesforce"

    def __init__(
        self,
        *,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        daily_api_limit: int = 100_000,
        accounts_as_campaign_members: bool = True,
        notify_on_api_writes: bool = True,
        query_batch_size: int = 2000,
    ) -> None:
        self.router = self._open(data_dir, host=host, port=port, latency=latency)
        self.mapping: DefaultMapping = load_default_mapping("salesforce")
        self.org = SalesforceOrg(
            self.store,
            self.mapping,
            accounts_as_members=accounts_as_campaign_members,
            on_change=self._on_api_change if notify_on_api_writes else None,
        )
        self.bulk = BulkApi(self.org)
        self.outbound = OutboundMessenger(ORG_ID, "04k000000000001AAA", self.server.base_url)
        self.daily_api_limit = daily_api_limit
        self.api_used = 0
        self.query_batch_size = query_batch_size
        self.client_id, self.client_secret = self._credentials()
        self._jwt_public: Any = None
        self._tokens: set[str] = set()
        self._lost: Counter[str] = Counter()
        self._cursors: dict[str, QueryCursor] = {}
        self._lock = threading.Lock()
        self._add_routes()
        self._add_control_routes()
        self.server.on_reset.append(self._on_reset)
        self._ensure_campaigns()
        self._ensure_queues()
        self.add_users([INTEGRATION_USER_ID])

    # --- lifecycle ---------------------------------------------------------------------

    def _stop_sender(self) -> None:
        self.outbound.stop()  # its thread starts with the first notification

    def info(self) -> SandboxInfo:
        return self._info({"client_id": self.client_id, "client_secret": self.client_secret})

    def _credentials(self) -> tuple[str, str]:
        path = self.data_dir / "credentials.json"
        if path.exists():
            saved = json.loads(path.read_text("utf-8"))
            return saved["client_id"], saved["client_secret"]
        client_id = "3MVG9" + secrets.token_urlsafe(30).replace("-", "A").replace("_", "B")
        client_secret = secrets.token_hex(32)
        path.write_text(json.dumps({"client_id": client_id, "client_secret": client_secret}))
        path.chmod(0o600)
        return client_id, client_secret

    @property
    def jwt_key_path(self) -> Path:
        """The connected app's certificate key: the private half is what an admin gives
        crmtier for the JWT bearer flow; the org verifies with the public half. Made on
        first use (RSA key generation is the slowest part of starting a sandbox)."""
        path = self.data_dir / "jwt_private_key.pem"
        if not path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            path.chmod(0o600)
        return path

    def _jwt_public_key(self) -> Any:
        if self._jwt_public is None:
            private = serialization.load_pem_private_key(
                self.jwt_key_path.read_bytes(), password=None
            )
            self._jwt_public = private.public_key()
        return self._jwt_public

    # --- seeding -------------------------------------------------------------------------

    def seed(self, customers: int, seed: int = 7) -> None:
        """Replace the customers with ``customers`` generated ones (streamed, one transaction)."""
        self._flatten = _flattener(self.mapping.mapping.fields)
        self.store.clear(self.org.customer_object)
        self.store.clear("Task")
        self.store.clear("CampaignMember")
        self.org.reset_indexes()
        owners: set[str] = set()
        self.store.insert_many(
            self.org.customer_object,
            (self._account(c, owners) for c in generate(customers, seed)),
        )
        self.add_users(owners)

    def customer_id(self, index: int) -> str:
        """The Account id of the generator's customer number ``index``."""
        return make_id("Account", index + 1)

    def _account(
        self, c: SyntheticCustomer, owners: set[str]
    ) -> tuple[str, datetime, dict[str, Any]]:
        rid = self.customer_id(c.index)
        person = c.profile.get("kind") != "corporate"
        data = self._flatten(c.profile)
        owner = c.profile.get("owner_id")
        if "owner_id" in self.mapping.mapping.fields:
            data[self.mapping.mapping.fields["owner_id"]] = _user_id(owner)
        data.update(
            {
                "Name": c.pii["name"],
                "Phone": c.pii["phone"],
                "PersonEmail": c.pii["email"] if person else None,
                "National_ID__c": c.pii["national_id"],
                "IsPersonAccount": person,
                "PersonContactId": person_contact_id(rid) if person else None,
                "OwnerId": _user_id(owner) or make_id("User", 1),
                "CreatedDate": sf_datetime(c.modstamp),
            }
        )
        owners.add(data["OwnerId"])
        return rid, c.modstamp, data

    def _ensure_campaigns(self) -> None:
        for key, cid in self.mapping.writeback.campaigns.items():
            if not self.store.exists("Campaign", cid):
                self.store.insert_many(
                    "Campaign",
                    [
                        (
                            cid,
                            self.store.clock(),
                            {"Name": key.replace("_", " ").title(), "IsActive": True},
                        )
                    ],
                )

    def add_users(self, ids: Iterable[str]) -> None:
        """Active Users with these ids (those not there yet). Seeding adds every record
        owner, as in an org; an owner who leaves is deactivated (``deactivate_user``)."""
        missing = [i for i in sorted(set(ids)) if not self.store.exists("User", i)]
        stamp = self.store.clock()
        self.store.insert_many(
            "User", [(i, stamp, {"Name": f"User {i[-6:-3]}", "IsActive": True}) for i in missing]
        )

    def _ensure_queues(self) -> None:
        """The ``[writeback.queues]`` ids of the default mapping, as Task queues."""
        for key, qid in self.mapping.writeback.queues.items():
            if qid.startswith(PREFIXES["Group"]) and not self.store.exists("Group", qid):
                self.add_queue(qid, key, ("Task",))

    def add_queue(self, queue_id: str, name: str, sobject_types: Sequence[str]) -> None:
        """A queue (a ``Group`` of ``Type`` Queue) accepting records of these objects,
        one ``QueueSobject`` row each."""
        stamp = self.store.clock()
        developer_name = "".join(part.title() for part in name.split("_"))
        self.store.insert_many(
            "Group",
            [(queue_id, stamp, {"Name": name, "DeveloperName": developer_name, "Type": "Queue"})],
        )
        first = self.store.count("QueueSobject") + 1
        self.store.insert_many(
            "QueueSobject",
            [
                (make_id("QueueSobject", first + n), stamp, {"QueueId": queue_id, "SobjectType": t})
                for n, t in enumerate(sobject_types)
            ],
        )

    def deactivate_user(self, user_id: str) -> None:
        """What an admin does when a relationship manager leaves."""
        self.store.update("User", user_id, {"IsActive": False})

    # --- the Sandbox protocol ------------------------------------------------------------

    def edit_customer(
        self, customer_id: str, changes: Mapping[str, Any], *, modstamp: datetime | None = None
    ) -> None:
        fields = self.mapping.mapping.fields
        data: dict[str, Any] = {}
        for path, value in changes.items():
            if path not in fields:
                raise KeyError(f"{path}: not a mapped canonical field")
            data[fields[path]] = _user_id(value) if path == "owner_id" else to_sf_value(value)
        if changes.get("owner_id"):
            self.add_users([data[fields["owner_id"]]])
        self.store.update(self.org.customer_object, customer_id, data, modstamp=modstamp)
        view = self.org.get(self.org.customer_object, customer_id)
        if view is not None:
            self._notify(view)

    def written(self, customer_id: str) -> dict[str, Any]:
        view = self.org.get(self.org.customer_object, customer_id)
        if view is None:
            raise KeyError(customer_id)
        out = {}
        for output, crm_field in writeback_targets("salesforce", self.mapping).items():
            value = from_crm_value(output, view.get(crm_field))
            if value is not None:
                out[output] = value
        return out

    def tasks(self) -> list[SandboxTask]:
        """Every Task crmtier wrote; ``open`` is False for a closed Status."""
        return [
            SandboxTask(
                external_id=str(data.get(EXTERNAL_KEY_FIELD)),
                customer_id=str(data.get("WhatId")),
                subject=str(data.get("Subject")),
                due=data.get("ActivityDate"),
                owner=data.get("OwnerId"),
                open=data.get("Status") not in CLOSED_TASK_STATUSES,
            )
            for _, _, data in self.store.scan("Task")
        ]

    def memberships(self) -> set[tuple[str, str]]:
        keys = {cid: key for key, cid in self.mapping.writeback.campaigns.items()}
        out = set()
        for _, _, data in self.store.scan("CampaignMember"):
            customer = data.get("AccountId") or (
                account_of_contact(data["ContactId"]) if data.get("ContactId") else None
            )
            if customer:
                out.add((customer, keys.get(data["CampaignId"], data["CampaignId"])))
        return out

    def write_calls(self) -> int:
        return self.server.calls.count(*WRITE_KINDS)

    def set_notification_target(self, url: str, **options: Any) -> None:
        ca_bundle = options.pop("ca_bundle", None)
        self.outbound.set_target(Target(url=url, verify=ca_bundle or True, **options))

    def crmtier_config(self, env_prefix: str = "CRMTIER") -> tuple[str, dict[str, str]]:
        env = {
            f"{env_prefix}_SF_CLIENT_ID": self.client_id,
            f"{env_prefix}_SF_CLIENT_SECRET": self.client_secret,
        }
        lines = [
            "# crmtier.toml for the local Salesforce sandbox (crmtier sandbox --crm salesforce)",
            "[crm]",
            'kind = "salesforce"',
            f'base_url = "{self.server.base_url}"',
            'auth = "client_credentials"',
            f'client_id = "env:{env_prefix}_SF_CLIENT_ID"',
            f'client_secret = "env:{env_prefix}_SF_CLIENT_SECRET"',
            f"ca_bundle = {json.dumps(str(self.ca_bundle))}",
            "api_share = 0.2",
            "",
            "[mapping]",
            f'object = "{self.mapping.mapping.object}"',
            "",
            "[mapping.fields]",
            *(f'"{k}" = "{v}"' for k, v in self.mapping.mapping.fields.items()),
            "",
            "[writeback]",
            f"restricted = {json.dumps(list(self.mapping.writeback.restricted))}",
            f"reasons_max = {self.mapping.writeback.reasons_max}",
            f"tasks = {str(self.mapping.writeback.tasks).lower()}",
            f"campaign_memberships = {str(self.mapping.writeback.campaign_memberships).lower()}",
            "",
            "[writeback.fields]",
            *(f'{k} = "{v}"' for k, v in self.mapping.writeback.fields.items()),
            "",
            "[writeback.campaigns]",
            *(f'{k} = "{v}"' for k, v in self.mapping.writeback.campaigns.items()),
            "",
            "[writeback.queues]",
            *(f'{k} = "{v}"' for k, v in self.mapping.writeback.queues.items()),
            "",
            "[state]",
            f"url = {json.dumps('sqlite:///' + str(self.data_dir / 'crmtier.db'))}",
            "",
            "[webhooks]",
            'listen = "127.0.0.1:8080"',
            f'salesforce_org_id = "{ORG_ID}"',
            "",
        ]
        return "\n".join(lines), env

    # --- faults (each a thin layer over server.inject or the org's own state) -------------

    def rate_limit(self, *, kind: str = "*", times: int | None = 1, daily: bool = True) -> int:
        """403 ``REQUEST_LIMIT_EXCEEDED``: the daily allocation (``daily``) or the
        concurrent-request limit."""
        message = (
            "TotalRequests Limit exceeded."
            if daily
            else "ConcurrentRequests (Concurrent API Requests) Limit exceeded."
        )
        response = _sf_error(403, "REQUEST_LIMIT_EXCEEDED", message)
        response.headers["Sforce-Limit-Info"] = self._limit_info()
        return self.server.inject(kind, response=response, times=times, match=_data_call)

    def exhaust_daily_limit(self) -> None:
        """Use up the allocation: from now on every data call is a 403, as in a real org."""
        self.api_used = self.daily_api_limit

    def expire_session(self) -> None:
        """Invalidate every issued token: the next call gets 401 ``INVALID_SESSION_ID`` and
        a re-authentication succeeds (so the 401 happens once per re-auth)."""
        with self._lock:
            self._tokens.clear()

    def lock_rows(self, ids: list[str], *, times: int = 1) -> None:
        """The next ``times`` saves of each record fail with ``UNABLE_TO_LOCK_ROW``."""
        self.org.lock_rows(ids, times)

    def server_error(self, *, kind: str = "*", status: int = 503, times: int | None = 1) -> int:
        code = "SERVER_UNAVAILABLE" if status == 503 else "UNKNOWN_EXCEPTION"
        return self.server.inject(
            kind,
            response=_sf_error(status, code, "try again later"),
            times=times,
            match=_data_call,
        )

    def drop_connections(self, *, kind: str = "*", times: int | None = 1) -> int:
        return self.server.inject(kind, drop=True, times=times, match=_data_call)

    def lose_responses(self, kind: str, *, times: int = 1) -> None:
        """The next ``times`` calls of ``kind`` are carried out, then the connection drops
        before the answer: the client cannot tell whether its write happened."""
        with self._lock:
            self._lost[kind] += times

    def _on_reset(self) -> None:
        self._lost.clear()
        self.api_used = 0
        self.org.locks.clear()

    # --- notifications ---------------------------------------------------------------------

    def _notify(self, view: Mapping[str, Any]) -> None:
        self.outbound.notify(
            self.org.customer_object,
            {
                "Id": view["Id"],
                "SystemModstamp": format_ts(view["SystemModstamp"]),  # xsd:dateTime in SOAP
                "OwnerId": view.get("OwnerId"),
            },
        )

    def _on_api_change(self, obj: str, view: dict[str, Any]) -> None:
        self._notify(view)

    # --- HTTP: auth, limits, the REST resources -------------------------------------------

    def _limit_info(self) -> str:
        return f"api-usage={min(self.api_used, self.daily_api_limit * 2)}/{self.daily_api_limit}"

    def _api(
        self, handler: Callable[[Request], Response], kind: str
    ) -> Callable[[Request], Response]:
        """Wrap a data handler: bearer token, daily allowance, ``Sforce-Limit-Info``, and
        responses a test asked to lose after the work is done."""

        def wrapped(request: Request) -> Response:
            auth = request.header("Authorization", "") or ""
            token = auth.removeprefix("Bearer ").strip()
            with self._lock:
                valid = any(hmac.compare_digest(token, t) for t in self._tokens)
            if not valid:
                response = _sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
            elif self.api_used >= self.daily_api_limit:
                response = _sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            else:
                with self._lock:
                    self.api_used += 1
                version = request.params.get("ver")
                if version is not None and version not in API_VERSIONS:
                    response = _sf_error(404, "NOT_FOUND", "The requested resource does not exist")
                else:
                    response = handler(request)
                    with self._lock:
                        lost = self._lost[kind] > 0
                        self._lost[kind] -= lost
                    if lost:
                        raise DropConnection  # the save happened; the client never hears
            response.headers["Sforce-Limit-Info"] = self._limit_info()
            return response

        return wrapped

    def _add_routes(self) -> None:
        """The REST surface as one table: (method, path regex, handler, call kind). Every
        route but the token endpoint and the version list needs a session (``_api``)."""
        bulk = self.bulk
        obj, rid, job = r"(?P<obj>\w+)", r"(?P<id>\w{15,18})", r"(?P<job>\w+)"
        self.router.add("POST", "/services/oauth2/token", self._token, "oauth_token")
        self.router.add("GET", "/services/data/?", self._versions, "versions")
        self.metadata = MetadataApi(self.org, self._tokens, self._lock)  # SessionHeader auth
        self.router.add("POST", r"/services/Soap/m/\d+\.\d/?", self.metadata.handle, "metadata")
        table: list[tuple[str, str, Callable[[Request], Response], str]] = [
            ("GET", "/limits/?", self._limits, "limits"),
            ("GET", "/(?P<endpoint>query|queryAll)/?", self._query, "query"),
            ("GET", "/(?:query|queryAll)/(?P<locator>01g[^/]+)", self._query_more, "query_more"),
            ("GET", "/sobjects/?", self._describe_global, "describe_global"),
            ("GET", f"/sobjects/{obj}/describe/?", self._describe, "describe"),
            ("POST", f"/sobjects/{obj}/?", self._sobject_create, "sobject_create"),
            ("GET", f"/sobjects/{obj}/{rid}", self._sobject_get, "sobject_get"),
            ("PATCH", f"/sobjects/{obj}/{rid}", self._sobject_update, "sobject_update"),
            ("DELETE", f"/sobjects/{obj}/{rid}", self._sobject_delete, "sobject_delete"),
            (
                "PATCH",
                f"/sobjects/{obj}/(?P<field>\\w+__c)/(?P<value>[^/]+)",
                self._sobject_upsert,
                "sobject_upsert",
            ),
            ("PATCH", "/composite/sobjects/?", self._collections_update, "collections_update"),
            ("POST", "/composite/sobjects/?", self._collections_create, "collections_create"),
            ("DELETE", "/composite/sobjects/?", self._collections_delete, "collections_delete"),
            (
                "PATCH",
                f"/composite/sobjects/{obj}/(?P<field>\\w+)/?",
                self._collections_upsert,
                "collections_upsert",
            ),
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
        for method, path, handler, kind in table:
            self.router.add(method, _DATA + path, self._api(handler, kind), kind)

    def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in _form(request).items()}
        grant = form.get("grant_type")
        if grant == "client_credentials":
            client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
            auth = request.header("Authorization", "") or ""
            if auth.startswith("Basic "):
                decoded = base64.b64decode(auth[6:]).decode("utf-8", "replace")
                client_id, _, client_secret = decoded.partition(":")
            ok = hmac.compare_digest(client_id, self.client_id) and hmac.compare_digest(
                client_secret, self.client_secret
            )
            if not ok:
                return Response.json(
                    {"error": "invalid_client", "error_description": "invalid client credentials"},
                    400,
                )
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            try:
                claims = jwt.decode(
                    form.get("assertion", ""),
                    self._jwt_public_key(),
                    algorithms=["RS256"],
                    audience=[
                        "https://login.salesforce.com",
                        "https://test.salesforce.com",
                        self.server.base_url,
                    ],
                    options={"require": ["exp", "iss", "sub", "aud"]},
                )
            except jwt.PyJWTError as exc:
                return Response.json({"error": "invalid_grant", "error_description": str(exc)}, 400)
            if claims.get("iss") != self.client_id or claims.get("sub") != JWT_USERNAME:
                return Response.json(
                    {
                        "error": "invalid_grant",
                        "error_description": "user hasn't approved this consumer",
                    },
                    400,
                )
        else:
            return Response.json(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
                400,
            )
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(48)}"
        with self._lock:
            self._tokens.add(token)
        base = self.server.base_url
        return Response.json(
            {
                "access_token": token,
                "instance_url": base,
                "api_instance_url": base,
                "id": f"{base}/id/{ORG_ID}/{make_id('User', 1)}",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
                "scope": "api",
                "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
            }
        )

    def _versions(self, _: Request) -> Response:
        return Response.json(
            [{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v} for v in API_VERSIONS]
        )

    def _limits(self, _: Request) -> Response:
        return Response.json(
            {
                "DailyApiRequests": {
                    "Max": self.daily_api_limit,
                    "Remaining": max(self.daily_api_limit - self.api_used, 0),
                }
            }
        )

    def _query(self, request: Request) -> Response:
        soql = request.arg("q")
        if not soql:
            return _sf_error(400, "MALFORMED_QUERY", "q parameter is required")
        try:
            query = parse(soql)
            self.org.check_query(query)
        except UnknownObjectError as exc:
            return _sf_error(400, "INVALID_TYPE", str(exc))
        except QueryFieldError as exc:
            return _sf_error(400, "INVALID_FIELD", str(exc))
        except SoqlError as exc:
            return _sf_error(400, "MALFORMED_QUERY", str(exc))
        qid = f"01g{secrets.token_hex(6).upper()}"
        with self._lock:
            self._cursors[qid] = QueryCursor(
                query, self._batch_size(request), self.org.count(query)
            )
            while len(self._cursors) > 10_000:  # cursors live long; keep the newest
                self._cursors.pop(next(iter(self._cursors)))
        return self._query_page(request, qid, 0)

    def _query_more(self, request: Request) -> Response:
        qid, _, offset = request.params["locator"].partition("-")
        try:
            emitted = int(offset)
        except ValueError:
            emitted = -1
        with self._lock:
            cursor = self._cursors.get(qid)
        if cursor is None or emitted not in cursor.starts:
            return _sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._query_page(request, qid, emitted)

    def _batch_size(self, request: Request) -> int:
        """``Sforce-Query-Options: batchSize=N`` (200..2000) on the first call; it holds
        for every later page of the same cursor."""
        options = request.header("Sforce-Query-Options", "") or ""
        if options.startswith("batchSize=") and options[10:].isdigit():
            return min(max(int(options[10:]), 200), 2000)
        return self.query_batch_size

    def _query_page(self, request: Request, qid: str, emitted: int) -> Response:
        cursor = self._cursors[qid]
        query = cursor.query
        rows, nxt = self.org.page(query, cursor.starts[emitted], cursor.batch_size)
        version = request.params["ver"]
        body: dict[str, Any] = {
            "totalSize": cursor.total,
            "done": nxt is None,
            "records": [self.org.render(query.sobject, v, query.fields, version) for v in rows],
        }
        if nxt is not None:
            with self._lock:
                cursor.starts[nxt.emitted] = nxt
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{qid}-{nxt.emitted}"
        return Response.json(body)

    def _describe_global(self, _: Request) -> Response:
        return Response.json(
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [
                    {"name": o.name, "label": o.name, "queryable": True, "updateable": True}
                    for o in self.org.schema.values()
                ],
            }
        )

    def _describe(self, request: Request) -> Response:
        spec = self.org.schema.get(request.params["obj"])
        if spec is None:
            return _sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        return Response.json(spec.describe())

    # sObject Collections --------------------------------------------------------------

    def _collection_body(self, request: Request) -> tuple[list[Any], bool] | Response:
        try:
            body = request.json() or {}
        except json.JSONDecodeError as exc:
            return _sf_error(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc.msg}")
        records = body.get("records")
        if not isinstance(records, list):
            return _sf_error(400, "INVALID_FIELD", "records is required")
        if len(records) > _COLLECTION_LIMIT:
            return _too_many_records()
        return records, bool(body.get("allOrNone", False))

    def _collections_update(self, request: Request) -> Response:
        return self._collections_write(request, self.org.update)

    def _collections_create(self, request: Request) -> Response:
        return self._collections_write(request, self.org.create)

    def _collections_write(
        self, request: Request, write: Callable[[list[Any], bool], list[SaveResult]]
    ) -> Response:
        """Update and create answer alike: the body's records through ``write``, one result
        per record, without the ``created`` flag that only upsert reports."""
        parsed = self._collection_body(request)
        if isinstance(parsed, Response):
            return parsed
        results = write(*parsed)
        return Response.json([_no_created(r.as_json()) for r in results])

    def _collections_upsert(self, request: Request) -> Response:
        obj, ext_field = request.params["obj"], request.params["field"]
        spec = self.org.schema.get(obj)
        if spec is None:
            return _sf_error(404, "NOT_FOUND", f"The requested resource does not exist: {obj}")
        field_spec = spec.fields.get(ext_field)
        if field_spec is None or not (field_spec.external_id or ext_field == "Id"):
            return _sf_error(
                400, "INVALID_FIELD", f"Field {ext_field} is not an external id field on {obj}"
            )
        parsed = self._collection_body(request)
        if isinstance(parsed, Response):
            return parsed
        records, all_or_none = parsed
        results = self.org.upsert(obj, ext_field, records, all_or_none)
        return Response.json([r.as_json() for r in results])

    def _collections_delete(self, request: Request) -> Response:
        ids = [i for i in (request.arg("ids") or "").split(",") if i]
        if len(ids) > _COLLECTION_LIMIT:
            return _too_many_records()
        all_or_none = (request.arg("allOrNone") or "false").lower() == "true"
        results = self.org.delete(ids, all_or_none)
        return Response.json([_no_created(r.as_json()) for r in results])

    # single records ---------------------------------------------------------------------

    def _sobject_get(self, request: Request) -> Response:
        obj, rid = request.params["obj"], request.params["id"]
        view = self.org.get(obj, rid) if obj in self.org.schema else None
        if view is None:
            return _sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        fields = tuple(self.org.schema[obj].fields)
        return Response.json(self.org.render(obj, view, fields, request.params["ver"]))

    def _single(self, results: list[Any], created_status: int = 201) -> Response:
        result = results[0]
        if not result.success:
            err = result.errors[0]
            return _sf_error(400, err.status_code, err.message)
        if result.created:
            return Response.json(
                {"id": result.id, "success": True, "errors": [], "created": True}, created_status
            )
        return Response.json({"id": result.id, "success": True, "errors": [], "created": False})

    def _sobject_create(self, request: Request) -> Response:
        record = {**(request.json() or {}), "attributes": {"type": request.params["obj"]}}
        result = self.org.create([record], all_or_none=True)[0]
        if not result.success:
            err = result.errors[0]
            return _sf_error(400, err.status_code, err.message)
        return Response.json({"id": result.id, "success": True, "errors": []}, 201)

    def _sobject_update(self, request: Request) -> Response:
        record = {
            **(request.json() or {}),
            "attributes": {"type": request.params["obj"]},
            "id": request.params["id"],
        }
        result = self.org.update([record], all_or_none=True)[0]
        if not result.success:
            err = result.errors[0]
            status = 404 if err.status_code == "ENTITY_IS_DELETED" else 400
            return _sf_error(status, err.status_code, err.message)
        return Response(204)

    def _sobject_upsert(self, request: Request) -> Response:
        obj, ext_field = request.params["obj"], request.params["field"]
        record = {**(request.json() or {}), ext_field: unquote(request.params["value"])}
        return self._single(self.org.upsert(obj, ext_field, [record], True))

    def _sobject_delete(self, request: Request) -> Response:
        result = self.org.delete([request.params["id"]], all_or_none=True)[0]
        if not result.success:
            return _sf_error(404, result.errors[0].status_code, result.errors[0].message)
        return Response(204)

    # --- control API (under /__sandbox__/, its own bearer token) --------------------------

    def _add_control_routes(self) -> None:
        c = self.server.control

        def edit(request: Request) -> Response:
            body = request.json() or {}
            stamp = body.get("modstamp")
            try:
                self.edit_customer(
                    request.params["id"],
                    body.get("changes", {}),
                    modstamp=datetime.fromisoformat(stamp) if stamp else None,
                )
            except KeyError as exc:
                return Response.json({"error": str(exc)}, 404)
            return Response.json({"edited": request.params["id"]})

        def written(request: Request) -> Response:
            try:
                return Response.json(self.written(request.params["id"]))
            except KeyError:
                return Response.json({"error": "no such customer"}, 404)

        def target(request: Request) -> Response:
            body = request.json() or {}
            if not body.get("url"):
                return Response.json({"error": "url is required"}, 400)
            self.set_notification_target(str(body.pop("url")), **body)
            return Response.json({"target": True})

        def expire(_: Request) -> Response:
            self.expire_session()
            return Response.json({"expired": True})

        def locks(request: Request) -> Response:
            body = request.json() or {}
            self.lock_rows(list(body.get("ids", [])), times=int(body.get("times", 1)))
            return Response.json({"locked": len(body.get("ids", []))})

        def limits(request: Request) -> Response:
            body = request.json() or {}
            self.daily_api_limit = int(body.get("daily", self.daily_api_limit))
            self.api_used = int(body.get("used", self.api_used))
            return Response.json({"daily": self.daily_api_limit, "used": self.api_used})

        def listing(_: Request) -> Response:
            return Response.json(
                {
                    "tasks": [t.__dict__ for t in self.tasks()],
                    "memberships": sorted(self.memberships()),
                    "write_calls": self.write_calls(),
                }
            )

        c.add("POST", "/customers/(?P<id>\\w+)", edit, "ctl")
        c.add("GET", "/customers/(?P<id>\\w+)/written", written, "ctl")
        c.add("POST", "/notifications/target", target, "ctl")
        c.add("POST", "/sessions/expire", expire, "ctl")
        c.add("POST", "/locks", locks, "ctl")
        c.add("POST", "/limits", limits, "ctl")
        c.add("GET", "/writes", listing, "ctl")


def _flattener(fields: Mapping[str, str]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """``generator.to_crm_fields`` with the paths split once, values in Salesforce form:
    the same result (a test holds them equal), fast enough to seed a million customers."""
    paths = [(crm_field, tuple(path.split("."))) for path, crm_field in fields.items()]
    texts = {crm_field for path, crm_field in fields.items() if path in TEXT_IMPORTED_INPUTS}

    def flatten(profile: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for crm_field, parts in paths:
            node: Any = profile
            for part in parts:
                node = node.get(part) if type(node) is dict else None
            if crm_field in texts and type(node) in (int, float):
                node = str(node)  # a Text field holds the number as its text
            out[crm_field] = to_sf_value(node)
        return out

    return flatten


def _data_call(request: Request) -> bool:
    """Faults aimed at "every call" spare the token endpoint, like a real org's limits."""
    return not request.path.startswith("/services/oauth2/")


def _no_created(result: dict[str, Any]) -> dict[str, Any]:
    result.pop("created", None)
    return result


def _user_id(owner: Any) -> str | None:
    """Generator owner ids (``U00012``) as Salesforce User ids."""
    if not owner:
        return None
    text = str(owner)
    if text.startswith("U") and text[1:].isdigit():
        return make_id("User", int(text[1:]) + 100)
    return text


def _form(request: Request) -> dict[str, list[str]]:
    return parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
