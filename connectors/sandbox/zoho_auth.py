"""Zoho Accounts for the sandbox: the refresh-token grant and access-token checks.

``POST /oauth/v2/token`` (form or query parameters) trades the refresh token for a one-hour
access token, and refuses an 11th token for the same refresh token within ten minutes, as
Zoho does: a client that refreshes per request finds out here, not in production. At most
15 access tokens of a refresh token live at once; the 16th invalidates the oldest. API calls
carry ``Authorization: Zoho-oauthtoken <token>``; an unknown, expired or revoked token is a
401 ``INVALID_TOKEN``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from connectors.sandbox.server import Request, Response

TOKEN_LIFETIME = 3600
REFRESH_WINDOW = 600.0
#: "A maximum of 15 active access tokens can be stored per refresh token. When the 16th token
#: is requested, the oldest token is invalidated" (Zoho CRM API "Token Validity",
#: zoho.com/crm/developer/docs/api/v8/token-validity.html; Kaizen #43 "Tokens and
#: Limitations"): more processes than that on one refresh token take each other's tokens.
ACTIVE_TOKENS = 15


def _token(prefix: str = "1000") -> str:
    return f"{prefix}.{secrets.token_hex(16)}.{secrets.token_hex(16)}"


@dataclass(frozen=True)
class ClientApp:
    client_id: str
    client_secret: str
    refresh_token: str

    @classmethod
    def generate(cls) -> ClientApp:
        return cls(f"1000.{secrets.token_hex(15).upper()}", secrets.token_hex(21), _token())


def zoho_error(code: str, message: str, status: int, **details: object) -> Response:
    return Response.json(
        {"code": code, "details": dict(details), "message": message, "status": "error"}, status
    )


class Accounts:
    """``api_domain`` gives the API host the token answer names, as Zoho's does."""

    def __init__(
        self, app: ClientApp, api_domain: Callable[[], str], *, refresh_limit: int = 10
    ) -> None:
        self.app = app
        self._api_domain = api_domain
        self.refresh_limit = refresh_limit
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}  # access token -> expiry (time.time())
        self._issued: deque[float] = deque()
        self.refreshes = 0
        #: The API host of the data centre the org lives in, when not this sandbox's.
        self.elsewhere: str | None = None

    def token_endpoint(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8")).items()}
        form.update({k: v[0] for k, v in request.query.items()})
        if form.get("grant_type") != "refresh_token":
            return Response.json({"error": "unsupported_grant_type"}, 400)
        if not (
            secrets.compare_digest(form.get("client_id", ""), self.app.client_id)
            and secrets.compare_digest(form.get("client_secret", ""), self.app.client_secret)
        ):
            return Response.json({"error": "invalid_client"}, 200)
        if not secrets.compare_digest(form.get("refresh_token", ""), self.app.refresh_token):
            return Response.json({"error": "invalid_code"}, 200)
        now = time.monotonic()
        with self._lock:
            while self._issued and now - self._issued[0] > REFRESH_WINDOW:
                self._issued.popleft()
            if len(self._issued) >= self.refresh_limit:
                # "The status code ... after exceeding the allowed limit remains 200. However,
                # the message for such requests says 'Access Denied'" (Kaizen #43, "Tokens
                # and Limitations", help.zoho.com)
                return Response.json(
                    {
                        "error_description": "You have made too many requests continuously. "
                        "Please try again after some time.",
                        "error": "Access Denied",
                        "status": "failure",
                    },
                    200,
                )
            self._issued.append(now)
            self.refreshes += 1
            token = _token()
            wall = time.time()
            self._tokens = {t: e for t, e in self._tokens.items() if e > wall}
            self._tokens[token] = wall + TOKEN_LIFETIME
            while len(self._tokens) > ACTIVE_TOKENS:  # oldest first: dicts keep their order
                del self._tokens[next(iter(self._tokens))]
        # Zoho names the data centre's API host in every token answer (Zoho CRM API v2
        # docs, "Refresh Access Tokens": "api_domain": "https://www.zohoapis.com").
        return Response.json(
            {
                "access_token": token,
                "api_domain": self.elsewhere or self._api_domain(),
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
            }
        )

    def check(self, request: Request) -> Response | None:
        """None when the request carries a live access token, else the 401 Zoho sends."""
        header = request.header("Authorization", "") or ""
        scheme, _, token = header.partition(" ")
        if scheme != "Zoho-oauthtoken" or not token:
            return zoho_error("AUTHENTICATION_FAILURE", "Authentication failed", 401)
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None or expiry <= time.time() or self.elsewhere:
            return zoho_error("INVALID_TOKEN", "invalid oauth token", 401)
        return None

    def move_org(self, api_domain: str) -> None:
        """The org lives in another data centre from now on: token answers name that
        centre's API host (``api_domain``) and this host refuses their tokens, as Zoho keeps
        an org in one centre ("Multi DC Support"); the sandbox answers them as any token it
        does not know."""
        self.elsewhere = api_domain

    def expire_all(self) -> None:
        """Every issued access token stops working at once (as after an hour, or a revoke)."""
        with self._lock:
            self._tokens.clear()
