"""The only module that touches zcrmsdk 3.1.0 (and Zoho's HTTP): plain Python in and out.

zcrmsdk keeps its configuration in process-global state: ``Initializer.initializer`` (a
class attribute, with a thread-local override used by ``switch_user``), a class-level field
metadata cache keyed by files under ``resource_path``, and a global ``SDKLogger``. Two
tenants or threads using it naively would send one org's data with another org's token
(zcrmsdk's ``initializer.py`` keeps the configured SDK in a class attribute). So:

* every SDK call runs inside ``ZohoClient._bound()``: one process-wide lock, this tenant's
  own ``Initializer`` installed for the call and removed afterwards (an SDK call outside a
  binding fails loudly with ``SDK UNINITIALIZED``), and this tenant's HTTP session bound;
* tokens live in a per-client in-memory ``TokenStore`` (never the CSV ``FileStore`` shared
  by path, never MySQL), field metadata under a per-client ``resource_path``;
* zcrmsdk calls module-level ``requests.get/post/...`` with no timeout, no retry and trust
  from ``REQUESTS_CA_BUNDLE``. Its two call sites (``api_http_connector`` and
  ``oauth_token``) see a stand-in ``requests`` that routes to the bound session instead: the
  shared ``connectors.http`` session with connect/read timeouts and the configured
  ``ca_bundle`` (``trust_env`` off, so the environment's CA bundle cannot override it). The
  stand-in also meters each call against the credit budget *before* it is sent, and reads
  ``X-API-CREDITS-REMAINING`` from the answer. Site-packages are not modified.
* retries (tenacity via ``call_with_retry``) wrap whole SDK operations, so an expired token
  (which zcrmsdk returns as a 401 object, never refreshes) drops the stored token and the
  operation is repeated once with a fresh one.

The lock serialises Zoho calls across tenants in one process. Zoho's own concurrency limit
(10–25 per org) and the API credit budget, not this lock, bound a sync's speed; a deployment
that needs parallel tenants runs one worker process per tenant.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from zcrmsdk.src.com.zoho.api.authenticator import oauth_token as _sdk_oauth
from zcrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken, TokenType
from zcrmsdk.src.com.zoho.api.authenticator.store.token_store import TokenStore
from zcrmsdk.src.com.zoho.api.logger import Logger
from zcrmsdk.src.com.zoho.crm.api import HeaderMap, ParameterMap
from zcrmsdk.src.com.zoho.crm.api import fields as sdk_fields
from zcrmsdk.src.com.zoho.crm.api import notification as sdk_notification
from zcrmsdk.src.com.zoho.crm.api import record as sdk_record
from zcrmsdk.src.com.zoho.crm.api import related_records as sdk_related
from zcrmsdk.src.com.zoho.crm.api import users as sdk_users
from zcrmsdk.src.com.zoho.crm.api.dc.data_center import DataCenter
from zcrmsdk.src.com.zoho.crm.api.exception import SDKException
from zcrmsdk.src.com.zoho.crm.api.initializer import Initializer
from zcrmsdk.src.com.zoho.crm.api.sdk_config import SDKConfig
from zcrmsdk.src.com.zoho.crm.api.user_signature import UserSignature
from zcrmsdk.src.com.zoho.crm.api.users import User
from zcrmsdk.src.com.zoho.crm.api.util import Choice
from zcrmsdk.src.com.zoho.crm.api.util import api_http_connector as _sdk_http

from connectors.errors import ConfigError, ConnectorError, QuotaExhaustedError, TransientError
from connectors.http import call_with_retry, make_session
from connectors.zoho.config import ZohoConfig
from connectors.zoho.errors import classify_call, classify_sdk
from connectors.zoho.mapping import FieldInfo

T = TypeVar("T")

#: One lock for every zcrmsdk call in the process (its Initializer is process-global).
_SDK_LOCK = threading.RLock()
CREDITS_HEADER = "X-API-CREDITS-REMAINING"
WRITE_KINDS = frozenset({"update", "insert", "upsert"})


# --- transport: the stand-in for ``requests`` inside zcrmsdk -------------------------------


class _BoundTransport:
    """Routes zcrmsdk's module-level ``requests.<verb>(...)`` calls to the session bound by
    the calling thread's ``ZohoClient``. Anything else (exception classes) is ``requests``."""

    def __init__(self) -> None:
        self._local = threading.local()

    @contextlib.contextmanager
    def bound(self, meter: _Meter) -> Iterator[None]:
        previous = getattr(self._local, "meter", None)
        self._local.meter = meter
        try:
            yield
        finally:
            self._local.meter = previous

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        meter: _Meter | None = getattr(self._local, "meter", None)
        if meter is None:  # never fall back to the environment's CA and no timeout
            raise RuntimeError("zcrmsdk HTTP call outside a ZohoClient binding")
        return meter.send(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self._send("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self._send("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> requests.Response:
        return self._send("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> requests.Response:
        return self._send("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> requests.Response:
        return self._send("DELETE", url, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(requests, name)


_TRANSPORT = _BoundTransport()
_sdk_http.requests = _TRANSPORT
_sdk_oauth.requests = _TRANSPORT
# zcrmsdk logs request URLs, parameters and error details: keep them out of crmtier's logs
# (a NullHandler, so Python's last-resort handler does not print them either).
_SDK_LOG = logging.getLogger("SDKLogger")
_SDK_LOG.propagate = False
_SDK_LOG.addHandler(logging.NullHandler())


class CreditBudget:
    """This run's share of the org's daily Zoho credits (docs/targets.md R5): a call that would
    overspend is refused *before* it is sent, so a paused run has made no extra call."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.reported_remaining: int | None = None
        self._lock = threading.Lock()

    def reserve(self, cost: int) -> None:
        with self._lock:
            if self.reported_remaining is not None and self.reported_remaining < cost:
                raise QuotaExhaustedError("Zoho reports the org's API credits are used up")
            if self.used + cost > self.limit:
                raise QuotaExhaustedError(
                    f"crmtier's Zoho credit budget ({self.limit} = api_share x daily_credits)"
                    " is used; the run pauses and resumes in a later window"
                )
            self.used += cost

    def observe(self, headers: Mapping[str, str]) -> None:
        value = headers.get(CREDITS_HEADER)
        if value is not None and value.strip().isdigit():
            with self._lock:
                self.reported_remaining = int(value)


def call_kind(method: str, path: str) -> str:
    """Name a Zoho API call by what it does (the sandbox uses the same names)."""
    parts = [p for p in path.split("/") if p]
    if parts[-3:] == ["oauth", "v2", "token"]:
        return "token"
    rest = parts[2:] if parts[:2] == ["crm", "v2"] else parts
    if rest[:1] == ["settings"]:
        return rest[1] if len(rest) > 1 else "settings"
    if rest[:1] == ["users"]:
        return "users"
    if rest[:2] == ["actions", "watch"]:
        return {"GET": "watch_list", "DELETE": "watch_delete"}.get(method, "watch")
    if len(rest) >= 3 and rest[1].isdigit():
        return {"PUT": "related_update", "DELETE": "related_delete"}.get(method, "related_read")
    if len(rest) == 2 and rest[1] == "upsert":
        return "upsert"
    return {"PUT": "update", "POST": "insert"}.get(method, "read")


def call_cost(kind: str, body: Any) -> int:
    """Zoho credits of one call: writes cost one per ten records, tokens nothing, else 1."""
    if kind == "token":
        return 0
    if kind not in WRITE_KINDS:
        return 1
    try:
        records = json.loads(body).get("data") or [] if body else []
    except (TypeError, ValueError, AttributeError):
        records = []
    return max(1, math.ceil(len(records) / 10))


class _Meter:
    """One tenant's HTTP: its session (timeouts, CA), credit budget and call counter."""

    def __init__(self, config: ZohoConfig, budget: CreditBudget) -> None:
        self.session = make_session(config.retry_policy(), config.ca_bundle or None)
        self.budget = budget
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kind = call_kind(method, urlsplit(url).path)
        self.budget.reserve(call_cost(kind, kwargs.get("data")))
        kwargs.pop("proxies", None)  # zcrmsdk passes proxies=None; the session decides
        with self._lock:
            self.calls[kind] += 1
        response = self.session.request(method, url, **kwargs)
        self.budget.observe(response.headers)
        if kind == "token":
            _check_token_answer(url, response)
        return response


def _check_token_answer(url: str, response: requests.Response) -> None:
    """Zoho Accounts answers a token request with JSON holding ``access_token`` or an OAuth
    ``error`` (Zoho CRM API v2 docs, "Refresh Access Tokens"). Anything else (an HTML page,
    a redirect, a 404) means ``accounts_url`` is not a token endpoint: zcrmsdk would report
    that as a failure to save tokens, so name the URL instead."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("access_token" in body or "error" in body):
        return
    raise ConfigError(
        f"Zoho Accounts did not answer the token request at {url} (HTTP "
        f"{response.status_code}, no OAuth JSON): set crm.accounts_url to your data centre's "
        "Accounts host, e.g. https://accounts.zoho.com.cn"
    )


class _Headers:
    """Collects the header zcrmsdk's ``OAuthToken.authenticate`` adds to a request."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add_header(self, name: str, value: str) -> None:
        self.values[name] = value


class _MemoryTokenStore(TokenStore):
    """zcrmsdk token store for one tenant, in memory only: the access token never touches
    disk, and ``forget`` makes the next call refresh (zcrmsdk itself never does on a 401)."""

    def __init__(self) -> None:
        self._access: tuple[str, str] | None = None  # (access token, expiry epoch ms)

    def get_token(self, user: Any, token: Any) -> Any:
        if self._access is None:
            return None
        token.access_token, token.expires_in = self._access
        return token

    def save_token(self, user: Any, token: Any) -> None:
        self._access = (token.access_token, token.expires_in)

    def delete_token(self, token: Any) -> None:
        self._access = None

    def get_tokens(self) -> list[Any]:
        return []

    def delete_tokens(self) -> None:
        self._access = None

    def forget(self) -> None:
        self._access = None


# --- plain values that cross the client boundary -----------------------------------------


@dataclass(frozen=True)
class RowResult:
    """One record's outcome in a write call, in request order."""

    ok: bool
    code: str
    message: str = ""
    id: str | None = None
    api_name: str | None = None
    action: str | None = None


@dataclass(frozen=True)
class ChannelInfo:
    channel_id: str
    events: tuple[str, ...]
    notify_url: str
    expiry: datetime | None
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CurrentUser:
    """The profile and role of the user crmtier's token acts as (no name, no e-mail)."""

    profile: str
    role: str


@dataclass(frozen=True)
class ReadPage:
    rows: list[dict[str, Any]]
    more: bool


class ZohoClient:
    """Zoho CRM v2 through zcrmsdk for one tenant. Every method is one logical operation
    with timeouts, bounded retries, token refresh and credit metering; results and errors
    are plain Python and ``connectors.errors`` classes."""

    def __init__(self, config: ZohoConfig, *, sleep: Callable[[float], None] | None = None):
        self.config = config
        self.budget = CreditBudget(config.credit_budget)
        self._meter = _Meter(config, self.budget)
        self._sleep = sleep
        self._store = _MemoryTokenStore()
        self._own_resources = not config.resource_dir
        self._resources = config.resource_dir or tempfile.mkdtemp(prefix="crmtier-zoho-")
        self._field_types: dict[str, dict[str, str]] = {}
        token = OAuthToken(
            config.client_id.get_secret_value(),
            config.client_secret.get_secret_value(),
            config.refresh_token.get_secret_value(),
            TokenType.REFRESH,
        )
        environment = DataCenter.Environment(config.base_url, config.accounts_url, config.base_url)
        with _SDK_LOCK:
            try:
                Initializer.initialize(
                    user=UserSignature(config.user_email),
                    environment=environment,
                    token=token,
                    store=self._store,
                    sdk_config=SDKConfig(auto_refresh_fields=False, pick_list_validation=True),
                    resource_path=self._resources,
                    logger=Logger.get_instance(Logger.Levels.ERROR, os.devnull),
                )
            except SDKException as exc:
                raise _translate(exc, config.accounts_url) from None
            finally:
                _drop_sdk_file_handlers()
            self._initializer = Initializer.initializer
            Initializer.initializer = None

    # --- confinement ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _bound(self) -> Iterator[None]:
        """Run zcrmsdk as this tenant, and only this tenant, for the duration."""
        with _SDK_LOCK, _TRANSPORT.bound(self._meter):
            Initializer.initializer = self._initializer
            Initializer.LOCAL.init = self._initializer
            try:
                yield
            finally:
                Initializer.LOCAL.init = None
                Initializer.initializer = None

    def _call(self, what: str, op: Callable[[], Any]) -> Any:
        """Run one SDK operation with retries; returns the response object, None for
        204/304. Call-level Zoho errors raise the classified connector error. zcrmsdk types
        every value by the field metadata, and a real org holds only values of each field's
        type (text in a number field lives in a text field), so an answer it cannot type is
        an error, not a page to read some other way."""

        def attempt() -> Any:
            with self._bound():
                try:
                    response = op()
                except SDKException as exc:
                    raise _translate(exc, self.config.accounts_url) from None
            if response is None:  # zcrmsdk logs some failures and returns None
                raise TransientError(f"Zoho {what}: no answer")
            status = response.get_status_code()
            if status in (204, 304):
                return None
            obj = response.get_object()
            if type(obj).__name__ == "APIException":
                raise classify_call(status, _value(obj.get_code()), _value(obj.get_message()))
            if obj is None:
                raise classify_call(status, None, f"{what}: zcrmsdk could not read the answer")
            return obj

        return self._retrying(attempt)

    def _retrying(self, fn: Callable[[], T]) -> T:
        return call_with_retry(
            fn, self.config.retry_policy(), refresh_auth=self._store.forget, sleep=self._sleep
        )

    def usage(self) -> dict[str, int]:
        return dict(self._meter.calls)

    def close(self) -> None:
        self._meter.session.close()
        if self._own_resources:
            shutil.rmtree(self._resources, ignore_errors=True)

    # --- metadata -------------------------------------------------------------------------

    def fields(self, module: str) -> dict[str, FieldInfo]:
        wrapper = self._call(
            f"fields of {module}", lambda: sdk_fields.FieldsOperations(module).get_fields()
        )
        out: dict[str, FieldInfo] = {}
        for f in wrapper.get_fields() if wrapper is not None else []:
            values = tuple(
                str(v.get_actual_value() or v.get_display_value())
                for v in f.get_pick_list_values() or []
                if (v.get_display_value() or "") != "-None-"
            )
            unique = f.get_unique()
            out[f.get_api_name()] = FieldInfo(
                api_name=f.get_api_name(),
                data_type=str(f.get_data_type()),
                picklist=values,
                read_only=bool(f.get_read_only()),
                unique=bool(unique and getattr(unique, "get_casesensitive", None)),
                length=f.get_length(),
            )
        self._field_types[module] = {name: info.data_type for name, info in out.items()}
        return out

    def current_user(self) -> CurrentUser | None:
        """``GET /crm/v2/users?type=CurrentUser`` (scope ``ZohoCRM.users.READ``): the
        ``users`` list holds one user whose ``profile`` and ``role`` are ``{name, id}``."""
        params = ParameterMap()
        params.add(sdk_users.GetUsersParam.type, "CurrentUser")
        wrapper = self._call("current user", lambda: sdk_users.UsersOperations().get_users(params))
        users = [] if wrapper is None else wrapper.get_users() or []
        if not users:
            return None
        profile, role = users[0].get_profile(), users[0].get_role()
        return CurrentUser(
            profile=str(profile.get_name() or "") if profile is not None else "",
            role=str(role.get_name() or "") if role is not None else "",
        )

    # --- records --------------------------------------------------------------------------

    def read_page(
        self,
        module: str,
        fields: Sequence[str],
        *,
        modified_after: datetime | None,
        page: int,
        per_page: int,
    ) -> ReadPage:
        """``GET /crm/v2/{module}`` sorted by Modified_Time ascending; ``modified_after``
        goes to ``If-Modified-Since`` (Zoho: records modified *after* that instant)."""
        query = {
            "page": page,
            "per_page": per_page,
            "sort_by": "Modified_Time",
            "sort_order": "asc",
            "fields": ",".join(fields),
        }
        params = ParameterMap()
        for name, value in query.items():
            params.add(getattr(sdk_record.GetRecordsParam, name), value)
        headers = HeaderMap()
        if modified_after is not None:
            headers.add(sdk_record.GetRecordsHeader.if_modified_since, modified_after)
        wrapper = self._call(
            f"read {module}",
            lambda: sdk_record.RecordOperations().get_records(module, params, headers),
        )
        if wrapper is None:
            return ReadPage([], False)
        info = wrapper.get_info()
        rows = [_plain_record(r) for r in wrapper.get_data() or []]
        return ReadPage(rows, bool(info is not None and info.get_more_records()))

    def fetch(self, module: str, ids: Sequence[str], fields: Sequence[str]) -> list[dict[str, Any]]:
        """``GET /crm/v2/{module}?ids=...`` (≤ 100 ids per call)."""
        numeric = [i for i in ids if str(i).isdigit()]  # other ids cannot exist in Zoho
        if not numeric:
            return []
        params = ParameterMap()
        for rid in numeric:
            params.add(sdk_record.GetRecordsParam.ids, int(rid))
        params.add(sdk_record.GetRecordsParam.fields, ",".join(fields))
        wrapper = self._call(
            f"fetch {module}",
            lambda: sdk_record.RecordOperations().get_records(module, params),
        )
        return [] if wrapper is None else [_plain_record(r) for r in wrapper.get_data() or []]

    def timeline(self, module: str, record_id: str) -> list[dict[str, Any]]:
        """``GET /crm/v5/{module}/{id}/__timeline`` ("Timeline of a Record", Zoho CRM API
        v5: every audited change of the record, newest first, who made it and when). The
        v2 zcrmsdk has no operation for it, so it is sent on this tenant's metered session
        with the access token zcrmsdk keeps (refreshed by zcrmsdk when due)."""
        url = f"{self.config.base_url}/crm/v5/{module}/{record_id}/__timeline"

        def attempt() -> list[dict[str, Any]]:
            headers = _Headers()
            with self._bound():
                try:
                    self._initializer.token.authenticate(headers)
                except SDKException as exc:
                    raise _translate(exc, self.config.accounts_url) from None
                response = self._meter.send(
                    "GET", url, headers=headers.values, params={"per_page": 200}
                )
            if response.status_code == 204:
                return []
            try:
                body = response.json()
            except ValueError:
                raise TransientError(f"Zoho timeline of {module}: answer is not JSON") from None
            if response.status_code != 200:
                code = body.get("code") if isinstance(body, dict) else None
                message = body.get("message") if isinstance(body, dict) else None
                raise classify_call(response.status_code, code, message or "")
            entries = body.get("__timeline") if isinstance(body, dict) else None
            return [e for e in entries or [] if isinstance(e, dict)]

        return self._retrying(attempt)

    def update(
        self, module: str, rows: Sequence[Mapping[str, Any]], trigger: Sequence[str]
    ) -> list[RowResult]:
        """``PUT /crm/v2/{module}``, ≤ 100 rows, each with its ``id``."""
        body = self._body(module, rows, trigger)
        wrapper = self._call(
            f"update {module}",
            lambda: sdk_record.RecordOperations().update_records(module, body),
        )
        return _row_results(wrapper, len(rows))

    def upsert(
        self,
        module: str,
        rows: Sequence[Mapping[str, Any]],
        duplicate_check: Sequence[str],
        trigger: Sequence[str],
    ) -> list[RowResult]:
        """``POST /crm/v2/{module}/upsert`` keyed by ``duplicate_check`` fields."""
        body = self._body(module, rows, trigger)
        body.set_duplicate_check_fields(list(duplicate_check))
        wrapper = self._call(
            f"upsert {module}",
            lambda: sdk_record.RecordOperations().upsert_records(module, body),
        )
        return _row_results(wrapper, len(rows))

    def _body(self, module: str, rows: Sequence[Mapping[str, Any]], trigger: Sequence[str]) -> Any:
        if module not in self._field_types:
            self.fields(module)
        types = self._field_types[module]
        body = sdk_record.BodyWrapper()
        body.set_data([_sdk_record(row, types) for row in rows])
        body.set_trigger(list(trigger))
        return body

    # --- campaign membership (Contacts/Leads related list "Campaigns") --------------------

    def relate(
        self, module: str, record_id: str, campaign_ids: Sequence[str], status: str
    ) -> list[RowResult]:
        """``PUT /crm/v2/{module}/{id}/Campaigns``: add (or keep) these memberships."""
        body = sdk_related.BodyWrapper()
        relations = []
        for cid in campaign_ids:
            relation = sdk_record.Record()
            relation.set_id(int(cid))
            relation.add_key_value("Member_Status", status)
            relations.append(relation)
        body.set_data(relations)
        ops = sdk_related.RelatedRecordsOperations("Campaigns", int(record_id), module)
        wrapper = self._call(f"relate {module} campaigns", lambda: ops.update_related_records(body))
        return _row_results(wrapper, len(campaign_ids))

    def delink(self, module: str, record_id: str, campaign_ids: Sequence[str]) -> list[RowResult]:
        """``DELETE /crm/v2/{module}/{id}/Campaigns?ids=...``."""
        params = ParameterMap()
        for cid in campaign_ids:
            params.add(sdk_related.DelinkRecordsParam.ids, int(cid))
        ops = sdk_related.RelatedRecordsOperations("Campaigns", int(record_id), module)
        wrapper = self._call(f"delink {module} campaigns", lambda: ops.delink_records(params))
        return _row_results(wrapper, len(campaign_ids))

    # --- notification channels ------------------------------------------------------------

    def channels(self) -> list[ChannelInfo]:
        """``GET /crm/v2/actions/watch``: the org's active channels."""
        wrapper = self._call(
            "list channels",
            lambda: sdk_notification.NotificationOperations().get_notification_details(),
        )
        return [] if wrapper is None else [_channel(n) for n in wrapper.get_watch() or []]

    def watch(self, channel: ChannelInfo, *, renew: bool) -> list[RowResult]:
        """Enable (``POST``) or renew (``PUT``) one channel."""
        notification = sdk_notification.Notification()
        notification.set_channel_id(int(channel.channel_id))
        notification.set_events(list(channel.events))
        notification.set_notify_url(channel.notify_url)
        if channel.token is not None:
            notification.set_token(channel.token)
        if channel.expiry is not None:
            notification.set_channel_expiry(channel.expiry)
        body = sdk_notification.BodyWrapper()
        body.set_watch([notification])
        ops = sdk_notification.NotificationOperations()
        wrapper = self._call(
            "watch",
            (lambda: ops.update_notifications(body))
            if renew
            else (lambda: ops.enable_notifications(body)),
        )
        items = [] if wrapper is None else wrapper.get_watch() or []
        return [_row_result(item) for item in items]


# --- SDK object <-> plain value conversion -------------------------------------------------


def _value(choice: Any) -> Any:
    return choice.get_value() if isinstance(choice, Choice) else choice


def _plain(value: Any) -> Any:
    if isinstance(value, Choice):
        return value.get_value()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, User):
        return {"id": str(value.get_id()), "name": value.get_name()}
    if isinstance(value, sdk_record.Record):
        return {"id": str(value.get_id())}
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return value


def _plain_record(record: Any) -> dict[str, Any]:
    row = {key: _plain(value) for key, value in record.get_key_values().items()}
    row["id"] = str(record.get_id())
    return row


def _sdk_value(value: Any, data_type: str | None) -> Any:
    if value is None:
        return None
    if data_type == "picklist":
        return Choice(value)
    if data_type == "multiselectpicklist":
        return [Choice(v) for v in value]
    if data_type in ("ownerlookup", "userlookup"):
        user = User()
        user.set_id(int(value["id"]))
        return user
    if data_type == "lookup":
        target = sdk_record.Record()
        target.set_id(int(value["id"]))
        return target
    if data_type == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    return value


def _sdk_record(row: Mapping[str, Any], types: Mapping[str, str]) -> Any:
    record = sdk_record.Record()
    for key, value in row.items():
        if key == "id":
            record.set_id(int(value))
        else:
            record.add_key_value(key, _sdk_value(value, types.get(key)))
    return record


def _row_result(item: Any) -> RowResult:
    details = item.get_details() or {}
    rid = details.get("id")
    action = getattr(item, "get_action", lambda: None)()
    return RowResult(
        ok=_value(item.get_status()) == "success",
        code=str(_value(item.get_code())),
        message=str(_value(item.get_message()) or ""),
        id=None if rid is None else str(rid),
        api_name=details.get("api_name"),
        action=None if action is None else str(_value(action)),
    )


def _row_results(wrapper: Any, expected: int) -> list[RowResult]:
    items = [] if wrapper is None else wrapper.get_data() or []
    results = [_row_result(item) for item in items]
    if len(results) != expected:
        raise TransientError(f"Zoho answered {len(results)} results for {expected} records")
    return results


def _channel(notification: Any) -> ChannelInfo:
    expiry = notification.get_channel_expiry()
    return ChannelInfo(
        channel_id=str(notification.get_channel_id()),
        events=tuple(notification.get_events() or ()),
        notify_url=str(notification.get_notify_url() or ""),
        expiry=expiry.astimezone(UTC) if isinstance(expiry, datetime) else None,
        token=notification.get_token(),
    )


def _drop_sdk_file_handlers() -> None:
    """``Initializer.initialize`` adds a FileHandler to the SDK logger on every call (here:
    on ``os.devnull``); close them so a long-running process does not leak one per tenant."""
    for handler in list(_SDK_LOG.handlers):
        if isinstance(handler, logging.FileHandler):
            _SDK_LOG.removeHandler(handler)
            handler.close()


def _transport_error(exc: requests.RequestException) -> ConnectorError:
    """A failed HTTP exchange: TLS trust is configuration, the rest may pass."""
    if isinstance(exc, requests.exceptions.SSLError):
        return ConfigError(
            "TLS verification of Zoho failed: check crm.ca_bundle (the environment's "
            "REQUESTS_CA_BUNDLE is deliberately not used)"
        )
    return TransientError(f"Zoho unreachable: {type(exc).__name__}")


def _translate(exc: SDKException, accounts_url: str) -> ConnectorError:
    """An SDKException as a connector error; our own errors raised under the SDK (the
    credit budget, a token endpoint that is not one) and transport failures are recovered
    from its cause chain. ``accounts_url`` names the token endpoint in Accounts' refusals."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectorError):
            return cause
        if isinstance(cause, requests.RequestException):
            return _transport_error(cause)
        cause = getattr(cause, "cause", None) or cause.__cause__
    details = exc.details if isinstance(exc.details, dict) else {}
    error = classify_sdk(exc.code, exc.error_message if exc.code else None, accounts_url)
    field_name = details.get("field")
    if field_name:
        return type(error)(f"{error} (field {field_name})")
    return error
