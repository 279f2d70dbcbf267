"""Access tokens of the FXiaoke sandbox: both documented token endpoints and their rules.

* ``/cgi/corpAccessToken/get/V2`` (legacy; credentials then go in every JSON body as
  ``corpAccessToken``/``corpId``/``currentOpenUserId``) and ``/oauth2.0/token`` with
  ``grantType: app_secret`` (current; later calls send ``authorization: Bearer``,
  ``x-fs-ea``, ``x-fs-userid``). Both documented (FXiaoke Open API v2,
  developer.fxiaoke.com/openapi_v2/start/auth/app-info.html).
* A token lives 7,200 s; asking again within its first 6,600 s returns the *same* token,
  later a new one while the old stays valid to its 7,200 s (documented).
* Wrong appId/appSecret → 20006, wrong permanentCode → 20015, no credentials on an API call
  → 20017, unknown or expired token → 20016 (documented codes; messages vary).
* The acting user: ``x-fs-userid`` is a CRM employee id ("CRM → Personnel → the person's
  Employee ID is the x-fs-userid": developer.fxiaoke.com/openapi_v2/en/start/example/
  public.html), and with ``convertUserId: false`` nothing converts an ``FSUID_`` open user
  id into one, so an id that is no employee of the tenant answers 30027 员工不存在. The
  legacy body convention takes the open user id as ``currentOpenUserId``; an unknown one
  answers 20012 openUserId未找到 (both codes from the 全局返回码 table,
  developer.fxiaoke.com/openapi_v2/start/guide/codes.html).

Token values are compared with ``hmac.compare_digest``; the clock is injectable so tests
can age tokens without waiting two hours.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from connectors.sandbox.server import Request

Style = Literal["corp", "oauth2"]
Payload = dict[str, Any]
TENANT_EA = "700001"  # the enterprise account the oauth2 token names
ACTING_USER = "1000"  # the CRM employee id crmtier acts as (x-fs-userid)
LIFETIME_SECONDS = 7200.0
SAME_TOKEN_SECONDS = 6600.0


@dataclass
class Issued:
    value: str
    style: Style
    issued: float
    expires: float


class TokenIssuer:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._offset = 0.0
        self._lock = threading.Lock()
        self._issued: list[Issued] = []
        self.issued_count = 0

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the sandbox's token clock forward (ages every token by ``seconds``)."""
        with self._lock:
            self._offset += seconds

    def issue(self, style: Style) -> Issued:
        with self._lock:
            now = self.now()
            self._issued = [t for t in self._issued if t.expires > now]
            current = [t for t in self._issued if t.style == style]
            if current and now < current[-1].issued + SAME_TOKEN_SECONDS:
                return current[-1]
            token = Issued(secrets.token_hex(16), style, now, now + LIFETIME_SECONDS)
            self._issued.append(token)
            self.issued_count += 1
            return token

    def valid(self, value: str, style: Style) -> bool:
        offered = value.encode("utf-8")
        with self._lock:
            now = self.now()
            return any(
                t.style == style
                and t.expires > now
                and hmac.compare_digest(t.value.encode(), offered)
                for t in self._issued
            )

    def expire_all(self) -> None:
        """Every issued token expires now: the next API call answers 20016."""
        with self._lock:
            self._issued.clear()


class ApiError(Exception):
    """A failed FXiaoke call: answered HTTP 200 with this ``errorCode``."""

    def __init__(self, code: int, message: str, description: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.description = description or message


@dataclass(frozen=True)
class Credentials:
    app_id: str
    app_secret: str
    permanent_code: str
    corp_id: str
    push_secret: str  # the workflow push's shared HMAC secret

    @classmethod
    def load_or_create(cls, path: Path) -> Credentials:
        if path.exists():
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        creds = cls(
            app_id="FSAID_" + secrets.token_hex(4),
            app_secret=secrets.token_hex(16),
            permanent_code=secrets.token_hex(16).upper(),
            corp_id="FSCID_" + secrets.token_hex(4).upper(),
            push_secret=secrets.token_urlsafe(24),
        )
        path.touch(mode=0o600)
        path.write_text(json.dumps(asdict(creds)), encoding="utf-8")
        return creds


def _same(offered: Any, expected: str) -> bool:
    return hmac.compare_digest(str(offered or "").encode(), expected.encode())


def open_user_id(employee_id: str) -> str:
    """The open user id (``FSUID_...``) the platform gives an employee of the sandbox."""
    return f"FSUID_{employee_id.encode().hex().upper()}"


class TenantAuth:
    """The two token endpoints and the check every API call passes. ``employees`` are the
    tenant's CRM employee ids: the only values ``x-fs-userid`` may carry."""

    def __init__(self, creds: Credentials, tokens: TokenIssuer, employees: set[str]) -> None:
        self.creds = creds
        self.tokens = tokens
        self.employees = employees
        self.open_user_ids = {open_user_id(e) for e in employees}

    def _check_app(self, body: Mapping[str, Any]) -> None:
        c = self.creds
        if not (_same(body.get("appId"), c.app_id) and _same(body.get("appSecret"), c.app_secret)):
            raise ApiError(20006, "appId或appSecret错误")
        if not _same(body.get("permanentCode"), c.permanent_code):
            raise ApiError(20015, "永久授权码错误")

    def corp_token(self, body: Payload) -> Payload:
        self._check_app(body)
        token = self.tokens.issue("corp")
        left = round(token.expires - self.tokens.now())
        return {"corpAccessToken": token.value, "corpId": self.creds.corp_id, "expiresIn": left}

    def oauth2_token(self, body: Payload) -> Payload:
        if body.get("grantType") != "app_secret":
            raise ApiError(15002, "grantType must be app_secret for a server-to-server app")
        self._check_app(body)
        token = self.tokens.issue("oauth2")
        return {
            "openUserId": self.creds.corp_id,
            "accessToken": token.value,
            "expiresIn": round(token.expires - self.tokens.now()),
            "appId": self.creds.app_id,
            "ea": TENANT_EA,
        }

    def authenticate(self, request: Request, body: Mapping[str, Any]) -> tuple[int, str] | None:
        """None when the call carries valid credentials, else the (errorCode, message)."""
        bad = (20016, "the cropId,cropAccessToken or authorization is error")
        bearer = request.header("authorization")
        if bearer:
            scheme, _, value = bearer.partition(" ")
            if scheme.lower() != "bearer" or not self.tokens.valid(value.strip(), "oauth2"):
                return bad
            if request.header("x-fs-ea") != TENANT_EA:
                return bad
            user = request.header("x-fs-userid")
            if not user:
                return (10001, "缺少参数x-fs-userid")
            if user not in self.employees:
                return (30027, "员工不存在")
            return None
        token = body.get("corpAccessToken")
        if not token:
            return (20017, "corpAccessToken为必填项")
        if not _same(body.get("corpId"), self.creds.corp_id) or not self.tokens.valid(
            str(token), "corp"
        ):
            return bad
        user = body.get("currentOpenUserId")
        if not user:
            return (10001, "缺少参数currentOpenUserId")
        if user not in self.open_user_ids:
            return (20012, "openUserId未找到")
        return None
