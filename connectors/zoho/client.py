"""Zoho CRM v2 for crmtier through zcrmsdk 3.1.0: one method per logical operation, plain
Python in and out.

The vendor SDK is confined to the ``client*`` modules of this folder: ``client_binding.py``
binds zcrmsdk to one tenant (why and how: its docstring), ``client_values.py`` converts
between zcrmsdk's objects and plain values, ``client_errors.py`` unwraps zcrmsdk's
exception, and this module runs the operations. Each runs
inside the tenant's binding with retries (tenacity via ``call_with_retry``) around the whole
SDK operation, so an expired token (which zcrmsdk returns as a 401 object and never
refreshes) drops the stored token and the operation is repeated once with a fresh one.
Errors leave as ``connectors.errors`` classes (``errors.py``'s tables); HTTP, timeouts, the
CA and credit metering are ``transport.py``'s.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from zcrmsdk.src.com.zoho.crm.api import HeaderMap, ParameterMap
from zcrmsdk.src.com.zoho.crm.api import fields as sdk_fields
from zcrmsdk.src.com.zoho.crm.api import notification as sdk_notification
from zcrmsdk.src.com.zoho.crm.api import query as sdk_query
from zcrmsdk.src.com.zoho.crm.api import record as sdk_record
from zcrmsdk.src.com.zoho.crm.api import related_lists as sdk_related_lists
from zcrmsdk.src.com.zoho.crm.api import related_records as sdk_related
from zcrmsdk.src.com.zoho.crm.api import users as sdk_users
from zcrmsdk.src.com.zoho.crm.api.exception import SDKException

from connectors.errors import AuthExpiredError, ConfigError, TransientError
from connectors.http import call_with_retry
from connectors.zoho.client_binding import MemoryTokenStore, TenantBinding
from connectors.zoho.client_errors import translate
from connectors.zoho.client_values import (
    ChannelInfo,
    CurrentUser,
    ReadPage,
    RowResult,
    channel_info,
    choice_value,
    plain_record,
    row_result,
    row_results,
    sdk_record_of,
)
from connectors.zoho.config import ZohoConfig
from connectors.zoho.errors import classify_call
from connectors.zoho.mapping import FieldInfo, fields_param, only_fields
from connectors.zoho.transport import TenantHttp, credit_budget, data_centre_mismatch

T = TypeVar("T")


class ZohoClient:
    """Zoho CRM v2 through zcrmsdk for one tenant. Every method is one logical operation
    with timeouts, bounded retries, token refresh and credit metering; results and errors
    are plain Python and ``connectors.errors`` classes."""

    def __init__(self, config: ZohoConfig, *, sleep: Callable[[float], None] | None = None):
        self.config = config
        self.budget = credit_budget(config)
        self._http = TenantHttp(config, self.budget)
        self._sleep = sleep
        self._store = MemoryTokenStore()
        self._own_resources = not config.resource_dir
        self._resources = config.resource_dir or tempfile.mkdtemp(prefix="crmtier-zoho-")
        self._field_types: dict[str, dict[str, str]] = {}
        try:
            self._binding = TenantBinding(config, self._http, self._store, self._resources)
        except SDKException as exc:
            raise translate(exc, config.accounts_url) from None

    # --- confinement ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _bound(self) -> Iterator[None]:
        """Run zcrmsdk as this tenant, and only this tenant, for the duration."""
        with self._binding.bound():
            yield

    def _call(self, what: str, op: Callable[[], Any], *, resend: bool = True) -> Any:
        """Run one SDK operation with retries; returns the response object, None for
        204/304. Call-level Zoho errors raise the classified connector error; without
        ``resend``, a ``TransientError`` (the call may have been served) at once. zcrmsdk types
        every value by the field metadata, and a real org holds only values of each field's
        type (text in a number field lives in a text field), so an answer it cannot type is
        an error, not a page to read some other way."""

        def attempt() -> Any:
            with self._bound():
                try:
                    response = op()
                except SDKException as exc:
                    raise translate(exc, self.config.accounts_url) from None
            if response is None:  # zcrmsdk logs some failures and returns None
                raise TransientError(f"Zoho {what}: no answer")
            status = response.get_status_code()
            if status in (204, 304):
                return None
            obj = response.get_object()
            if type(obj).__name__ == "APIException":
                raise classify_call(
                    status, choice_value(obj.get_code()), choice_value(obj.get_message())
                )
            if obj is None:
                raise classify_call(status, None, f"{what}: zcrmsdk could not read the answer")
            return obj

        return self._retrying(attempt, resend=resend)

    def _retrying(self, fn: Callable[[], T], *, resend: bool = True) -> T:
        """``fn`` with retries; a token refused even fresh (``call_with_retry`` refreshes
        once) while Zoho Accounts names another API host is ``crm.base_url``'s fault, said
        so (``data_centre_mismatch``), not an expired token."""
        try:
            return call_with_retry(
                fn,
                self.config.retry_policy(),
                refresh_auth=self._store.forget,
                sleep=self._sleep,
                resend=resend,
            )
        except AuthExpiredError as exc:
            elsewhere = self.data_centre_mismatch()
            if elsewhere is None:
                raise
            raise ConfigError(elsewhere) from exc

    def usage(self) -> dict[str, int]:
        return self._http.calls.counts()

    def data_centre_mismatch(self) -> str | None:
        """What to fix when the last token answer named another API host than
        ``crm.base_url`` (``transport.data_centre_mismatch``), else None."""
        return data_centre_mismatch(self._http.api_domain, self.config.base_url)

    def close(self) -> None:
        self._http.close()
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
                unique=unique is not None and unique.get_casesensitive() is not None,
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

    def users_page(self, user_type: str, page: int, fields: Sequence[str]) -> ReadPage:
        """``GET /crm/v2/users?type=...&page=...&per_page=200`` (scope
        ``ZohoCRM.users.READ``): each user as ``id``, ``status`` and the ``fields`` asked
        for (custom user fields come back among the user's keys), nothing else."""
        params = ParameterMap()
        params.add(sdk_users.GetUsersParam.type, user_type)
        params.add(sdk_users.GetUsersParam.page, page)
        params.add(sdk_users.GetUsersParam.per_page, 200)
        wrapper = self._call("users", lambda: sdk_users.UsersOperations().get_users(params))
        if wrapper is None:
            return ReadPage([], False)
        rows = [
            {
                "id": str(u.get_id()),
                "status": str(u.get_status() or ""),
                **{f: u.get_key_value(f) for f in fields},
            }
            for u in wrapper.get_users() or []
        ]
        info = wrapper.get_info()
        return ReadPage(rows, bool(info is not None and info.get_more_records()))

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
        goes to ``If-Modified-Since`` (Zoho: records modified *after* that instant); ``fields``
        names exactly the mapped fields (``mapping.fields_param``)."""
        query: dict[str, Any] = {
            "page": page,
            "per_page": per_page,
            "sort_by": "Modified_Time",
            "sort_order": "asc",
            "fields": fields_param(fields),
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
        rows = [only_fields(plain_record(r), fields) for r in wrapper.get_data() or []]
        return ReadPage(rows, bool(info is not None and info.get_more_records()))

    def fetch(self, module: str, ids: Sequence[str], fields: Sequence[str]) -> list[dict[str, Any]]:
        """``GET /crm/v2/{module}?ids=...`` (≤ 100 ids per call)."""
        numeric = [i for i in ids if str(i).isdigit()]  # other ids cannot exist in Zoho
        if not numeric:
            return []
        params = ParameterMap()
        for rid in numeric:
            params.add(sdk_record.GetRecordsParam.ids, int(rid))
        params.add(sdk_record.GetRecordsParam.fields, fields_param(fields))
        wrapper = self._call(
            f"fetch {module}",
            lambda: sdk_record.RecordOperations().get_records(module, params),
        )
        rows = [] if wrapper is None else wrapper.get_data() or []
        return [only_fields(plain_record(r), fields) for r in rows]

    def query(self, select_query: str) -> ReadPage:
        """``POST /crm/v2/coql`` (Zoho CRM v2 "COQL Query"): one page of a COQL select;
        ``more`` from the answer's ``info.more_records``."""
        body = sdk_query.BodyWrapper()
        body.set_select_query(select_query)
        wrapper = self._call("query", lambda: sdk_query.QueryOperations().get_records(body))
        if wrapper is None:
            return ReadPage([], False)
        info = wrapper.get_info()
        rows = [plain_record(r) for r in wrapper.get_data() or []]
        return ReadPage(rows, bool(info is not None and info.get_more_records()))

    def timeline_page(
        self, module: str, record_id: str, page_token: str | None = None
    ) -> dict[str, Any]:
        """One page of ``GET /crm/v5/{module}/{id}/__timeline`` ("Timeline of a Record",
        Zoho CRM API v5, zoho.com/crm/developer/docs/api/v5/timeline-of-a-record.html: the
        record's audited changes, who made each and when): the answer's JSON, ``{}`` for
        204. The first page asks ``per_page=200``, a later one only its ``page_token`` (the
        page: "you cannot give per_page parameter if you give page_token"); which pages to
        read is the override audit's (``override_audit.py``). zcrmsdk (v2) has no
        operation for it: it goes on the tenant's metered session, one credit a page, with
        the tenant's token (refreshed when due)."""
        url = f"{self.config.base_url}/crm/v5/{module}/{record_id}/__timeline"
        first = page_token is None
        params: dict[str, Any] = {"per_page": 200} if first else {"page_token": page_token}

        def attempt() -> dict[str, Any]:
            request = _Headers()
            with self._bound():
                self._binding.initializer.token.authenticate(request)
            response = self._http.send("GET", url, headers=request.values, params=params)
            if response.status_code == 204:
                return {}
            try:
                body = response.json()
            except ValueError:
                raise TransientError(f"Zoho timeline of {module}: answer is not JSON") from None
            body = body if isinstance(body, dict) else {}
            if response.status_code != 200:
                message = str(body.get("message") or "")
                raise classify_call(response.status_code, body.get("code"), message)
            return body

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
        return row_results(wrapper, len(rows))

    def insert(
        self, module: str, rows: Sequence[Mapping[str, Any]], trigger: Sequence[str]
    ) -> list[RowResult]:
        """``POST /crm/v2/{module}`` ("Insert Records"), ≤ 100 rows. Sent once: Insert
        Records has no idempotency key, so a call whose answer was lost (a dropped
        connection, a timeout, a 5xx) may have stored its records, and a repeat would store
        them again. Such a failure leaves as ``TransientError`` without a repeat; the
        caller looks the keys up again before it sends them anew (``writes.py``). A 429 or
        an expired token is repeated as for any call: Zoho refused the call unserved."""
        body = self._body(module, rows, trigger)
        wrapper = self._call(
            f"insert {module}",
            lambda: sdk_record.RecordOperations().create_records(module, body),
            resend=False,
        )
        return row_results(wrapper, len(rows))

    def _body(self, module: str, rows: Sequence[Mapping[str, Any]], trigger: Sequence[str]) -> Any:
        if module not in self._field_types:
            self.fields(module)
        types = self._field_types[module]
        body = sdk_record.BodyWrapper()
        body.set_data([sdk_record_of(row, types) for row in rows])
        body.set_trigger(list(trigger))
        return body

    # --- campaign membership (Contacts/Leads related list "Campaigns") --------------------

    def related_lists(self, module: str) -> list[str]:
        """``GET /crm/v2/settings/related_lists?module=...`` ("Related Lists Meta Data", scope
        ``ZohoCRM.settings.related_lists.READ``): the API names of the module's related
        lists, which zcrmsdk reads itself before a module's first relate or delink."""
        ops = sdk_related_lists.RelatedListsOperations(module)
        wrapper = self._call(f"related lists of {module}", ops.get_related_lists)
        lists = [] if wrapper is None else wrapper.get_related_lists() or []
        return [str(r.get_api_name()) for r in lists]

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
        return row_results(wrapper, len(campaign_ids))

    def delink(self, module: str, record_id: str, campaign_ids: Sequence[str]) -> list[RowResult]:
        """``DELETE /crm/v2/{module}/{id}/Campaigns?ids=...``."""
        params = ParameterMap()
        for cid in campaign_ids:
            params.add(sdk_related.DelinkRecordsParam.ids, int(cid))
        ops = sdk_related.RelatedRecordsOperations("Campaigns", int(record_id), module)
        wrapper = self._call(f"delink {module} campaigns", lambda: ops.delink_records(params))
        return row_results(wrapper, len(campaign_ids))

    # --- notification channels ------------------------------------------------------------

    def channels(self) -> list[ChannelInfo]:
        """``GET /crm/v2/actions/watch``: the org's active channels."""
        wrapper = self._call(
            "list channels",
            lambda: sdk_notification.NotificationOperations().get_notification_details(),
        )
        return [] if wrapper is None else [channel_info(n) for n in wrapper.get_watch() or []]

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
        return [row_result(item) for item in items]


class _Headers:
    """Takes the headers the tenant's token adds to a request (``authenticate``)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add_header(self, name: str, value: str) -> None:
        self.values[name] = value
