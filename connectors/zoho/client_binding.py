"""zcrmsdk 3.1.0 bound to one tenant: its configuration, its token, its HTTP, its lock.

zcrmsdk keeps its configuration in process-global state: ``Initializer.initializer`` (a
class attribute) and a global ``SDKLogger``. Two tenants using it naively would send one
org's data with another org's token. It also calls module-level ``requests.get/post/...``
(``api_http_connector.py``, ``oauth_token.py``) with no timeout, no retry and trust from
``REQUESTS_CA_BUNDLE``. Site-packages are not modified and no SDK module is swapped at
import time; zcrmsdk's own extension points carry the tenant instead:

* **Whose configuration.** ``Initializer.get_initializer()`` answers the calling thread's
  ``Initializer.LOCAL.init`` before the class-wide one (the hook zcrmsdk's ``switch_user``
  uses). ``TenantBinding.bound()`` sets it to this tenant's ``Initializer`` for the calling
  thread only and restores it afterwards, so an SDK call outside a binding fails loudly
  with ``SDK UNINITIALIZED`` and two tenants on two threads never see each other's.
  ``Initializer.initialize`` itself writes the class-wide attribute, so construction runs
  under a short process-wide lock and clears it again.
* **Whose token and HTTP.** The ``Token`` a tenant's ``Initializer`` holds is zcrmsdk's
  documented authentication hook: ``CommonAPIHandler.api_call`` hands every request's
  ``APIHTTPConnector`` to ``token.authenticate`` before firing it. ``TenantToken`` adds the
  access token and binds that connector's ``fire_request`` to the tenant's ``TenantHttp``
  (``transport.py``: session, CA, timeouts, credit metering), and refreshes the access
  token through the same ``TenantHttp``. ``OAuthToken.authenticate`` would hold a
  class-level lock across every tenant's refresh; this one holds the tenant's own.
* **Serialised per tenant, not per process.** zcrmsdk rewrites the field-metadata file it
  caches under ``resource_path`` in place and reads it, for every record call, outside its
  own lock; so a tenant's calls run one at a time under the tenant's lock (``tenant_lock``:
  one per org and integration user, shared by every client of that tenant in the process),
  round trip included. Different tenants run in parallel. So this lock, not Zoho's
  concurrency limit (5-25 calls per org), bounds one process's calls on a tenant to one at
  a time; what parallel calls would need is in docs/operations.md ("What Zoho writes in
  parallel would need").
* **Filled before any call.** zcrmsdk fills its value converters process-wide on first use
  (``DataTypeConverter.init``: it returns as soon as both maps hold one entry, so a
  second thread converting a value while the first fills them can find a type missing).
  Tenants run in parallel, so a binding fills them once, under the construction lock.
* **Quiet.** zcrmsdk logs request URLs, parameters and error details: its logger is kept
  out of crmtier's logs, and the FileHandler ``Initializer.initialize`` adds each time is
  closed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import requests
from zcrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken, TokenType
from zcrmsdk.src.com.zoho.api.authenticator.store.token_store import TokenStore
from zcrmsdk.src.com.zoho.api.logger import Logger
from zcrmsdk.src.com.zoho.crm.api.dc.data_center import DataCenter
from zcrmsdk.src.com.zoho.crm.api.initializer import Initializer
from zcrmsdk.src.com.zoho.crm.api.sdk_config import SDKConfig
from zcrmsdk.src.com.zoho.crm.api.user_signature import UserSignature
from zcrmsdk.src.com.zoho.crm.api.util.constants import Constants
from zcrmsdk.src.com.zoho.crm.api.util.datatype_converter import DataTypeConverter

from connectors.zoho.config import ZohoConfig
from connectors.zoho.transport import TenantHttp

#: zcrmsdk refreshes an access token this close to its expiry (``OAuthToken.authenticate``).
REFRESH_MARGIN_MS = 5000
#: ``Initializer.initialize`` writes process-global state: one construction at a time.
_INIT_LOCK = threading.Lock()
_TENANT_LOCKS: dict[tuple[str, str, str], threading.RLock] = {}
_TENANT_LOCKS_LOCK = threading.Lock()
_SDK_LOG = logging.getLogger("SDKLogger")
_SDK_LOG.propagate = False
_SDK_LOG.addHandler(logging.NullHandler())  # nor Python's last-resort handler


def tenant_lock(config: ZohoConfig) -> threading.RLock:
    """The lock of this org (API and Accounts host) and integration user."""
    key = (config.base_url, config.accounts_url, config.user_email)
    with _TENANT_LOCKS_LOCK:
        return _TENANT_LOCKS.setdefault(key, threading.RLock())


class MemoryTokenStore(TokenStore):
    """zcrmsdk token store for one tenant, in memory only: the access token never touches
    disk (never the CSV ``FileStore`` shared by path, never MySQL), and ``forget`` makes the
    next call refresh (zcrmsdk itself never does on a 401)."""

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


class TenantToken(OAuthToken):
    """The tenant's refresh token as zcrmsdk's ``Token``: authenticates each request and
    sends it, and every token refresh, through the tenant's ``TenantHttp``."""

    def __init__(self, config: ZohoConfig, http: TenantHttp, store: MemoryTokenStore) -> None:
        super().__init__(
            config.client_id.get_secret_value(),
            config.client_secret.get_secret_value(),
            config.refresh_token.get_secret_value(),
            TokenType.REFRESH,
        )
        self._accounts_url = config.accounts_url
        self._http = http
        self._store = store
        self._lock = threading.Lock()

    def authenticate(self, url_connection: Any) -> None:
        with self._lock:
            stored = self._store.get_token(None, self)
            if stored is None or int(self.expires_in) - time.time() * 1000 < REFRESH_MARGIN_MS:
                self.refresh_access_token(None, self._store)
            access = self.access_token
        url_connection.add_header(Constants.AUTHORIZATION, Constants.OAUTH_HEADER_PREFIX + access)
        url_connection.fire_request = partial(_fire, self._http, url_connection)

    def refresh_access_token(self, user: Any, store: Any) -> OAuthToken:
        """``POST`` the refresh grant to Zoho Accounts (Zoho CRM API v2, "Refresh Access
        Tokens"); zcrmsdk's ``parse_response`` reads the answer, so an OAuth ``error``
        is its ``INVALID CLIENT ERROR`` as before."""
        body = {
            Constants.REFRESH_TOKEN: self.refresh_token,
            Constants.CLIENT_ID: self.client_id,
            Constants.CLIENT_SECRET: self.client_secret,
            Constants.GRANT_TYPE: Constants.REFRESH_TOKEN,
        }
        answer = self._http.send("POST", self._accounts_url, data=body, allow_redirects=False)
        store.save_token(user, self.parse_response(response=answer.json()))
        return self


def _fire(http: TenantHttp, connector: Any, converter: Any) -> requests.Response:
    """``APIHTTPConnector.fire_request`` over the tenant's session: the same request
    zcrmsdk would build (method, URL, headers, parameters, body by its converter)."""
    if connector.content_type is not None:
        connector.set_content_type_header()
    data = None
    if connector.request_body is not None and connector.request_method in ("PUT", "POST", "PATCH"):
        data = converter.append_to_request(connector, connector.request_body)
    if connector.file:
        return http.send(
            connector.request_method,
            connector.url,
            files=data,
            data={},
            headers=connector.headers,
            allow_redirects=False,
        )
    return http.send(
        connector.request_method,
        connector.url,
        data=data,
        params=connector.parameters,
        headers=connector.headers,
        allow_redirects=False,
    )


class TenantBinding:
    """One tenant's ``Initializer``, built once, installed per call by ``bound()``."""

    def __init__(
        self, config: ZohoConfig, http: TenantHttp, store: MemoryTokenStore, resource_path: str
    ) -> None:
        self.lock = tenant_lock(config)
        environment = DataCenter.Environment(config.base_url, config.accounts_url, config.base_url)
        with _INIT_LOCK:
            DataTypeConverter.init()
            try:
                Initializer.initialize(
                    user=UserSignature(config.user_email),
                    environment=environment,
                    token=TenantToken(config, http, store),
                    store=store,
                    sdk_config=SDKConfig(auto_refresh_fields=False, pick_list_validation=True),
                    resource_path=resource_path,
                    logger=Logger.get_instance(Logger.Levels.ERROR, os.devnull),
                )
                self.initializer = Initializer.initializer
            finally:
                Initializer.initializer = None
                _drop_sdk_file_handlers()

    @contextlib.contextmanager
    def bound(self) -> Iterator[None]:
        """Run zcrmsdk as this tenant on the calling thread, one call of the tenant at a time."""
        with self.lock:
            previous = getattr(Initializer.LOCAL, "init", None)
            Initializer.LOCAL.init = self.initializer
            try:
                yield
            finally:
                Initializer.LOCAL.init = previous


def _drop_sdk_file_handlers() -> None:
    """``Initializer.initialize`` adds a FileHandler to the SDK logger on every call (here:
    on ``os.devnull``); close them so a long-running process does not leak one per tenant."""
    for handler in list(_SDK_LOG.handlers):
        if isinstance(handler, logging.FileHandler):
            _SDK_LOG.removeHandler(handler)
            handler.close()
