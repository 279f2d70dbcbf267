"""Access tokens of the FXiaoke sandbox: both documented token endpoints and their rules.

* ``/cgi/corpAccessToken/get/V2`` (legacy; credentials then go in every JSON body as
  ``corpAccessToken``/``corpId``/``currentOpenUserId``) and ``/oauth2.0/token`` with
  ``grantType: app_secret`` (current; later calls send ``authorization: Bearer``,
  ``x-fs-ea``, ``x-fs-userid``). Both documented (reference/crm_apis.md §3.1).
* A token lives 7,200 s; asking again within its first 6,600 s returns the *same* token,
  later a new one while the old stays valid to its 7,200 s (documented).
* Wrong appId/appSecret → 20006, wrong permanentCode → 20015, no credentials on an API call
  → 20017, unknown or expired token → 20016 (documented codes; messages vary).

Token values are compared with ``hmac.compare_digest``; the clock is injectable so tests
can age tokens without waiting two hours.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Style = Literal["corp", "oauth2"]
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
