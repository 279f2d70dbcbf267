"""The Salesforce API session: the OAuth token, and the simple-salesforce object that
carries it.

A module of its own because logging in is one thing with its own rules, apart from the
calls made with the session (``client.py``). Authentication is done here rather than by
simple-salesforce's login helpers, on purpose: those hard-code
``https://{domain}.salesforce.com`` as the token host and re-login recursively on 401
(simple-salesforce#569/#685/#804); here the token comes from the org's own My Domain
(``base_url``, which is what client credentials require: Salesforce Help, "OAuth 2.0
Client Credentials Flow for Server-to-Server Integration"; the JWT bearer flow posts to the
same endpoint: "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration",
https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm), and an
expired session is renewed exactly once per call by ``client.py``'s retry loop
(``forget``, then ``current``).
simple-salesforce is given the session id, the instance URL and our ``requests.Session``
(timeouts, pinned CA, ``trust_env`` off), and does all data calls unmodified.

It touches the vendor SDK, so it is one of the ``client*`` modules the import-linter
contract allows to.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import jwt
import pydantic_core
import requests
from simple_salesforce import Salesforce

from connectors.errors import ConfigError, TransientError
from connectors.salesforce.config import SalesforceSettings
from connectors.salesforce.errors import classify

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class _Salesforce(Salesforce):
    """simple-salesforce, its responses decoded by pydantic-core into plain dicts: a query
    page decodes in 40 % less time than with ``json.loads`` (simple-salesforce's default
    also builds an ``OrderedDict`` per object, which doubles that)."""

    def parse_result_to_json(self, result: requests.Response) -> Any:
        return pydantic_core.from_json(result.content)


class ApiSession:
    """The org's current API session, made on first use and after a refusal. The sync
    engine's write threads share it: (re)login is read-modify-write on shared state, under
    a lock (the HTTP session's call counter has its own: logging in makes an HTTP call
    whose response hook counts it)."""

    def __init__(self, settings: SalesforceSettings, http: requests.Session) -> None:
        self.settings = settings
        self.http = http
        self.sf: Salesforce | None = None
        self._lock = threading.Lock()

    def login(self) -> Salesforce:
        """A new session from the token endpoint (one attempt: the caller retries)."""
        s = self.settings
        url = f"{s.base_url}/services/oauth2/token"
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
            response = self.http.post(url, data=form, auth=auth, headers={})
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
        self.sf = _Salesforce(
            instance_url=instance,
            session_id=body["access_token"],
            session=self.http,
            version=s.api_version,
        )
        return self.sf

    def current(self) -> Salesforce:
        """The current session, or a new one; threads that find none log in once."""
        with self._lock:
            return self.sf or self.login()

    def forget(self, sf: Salesforce) -> None:
        """Drop ``sf`` after it was refused, unless another thread already replaced it:
        threads that all held the expired session then share one new login instead of each
        wiping the one the other just made."""
        with self._lock:
            if self.sf is sf:
                self.sf = None
