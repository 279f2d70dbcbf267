"""The Salesforce sandbox's faults: what a test (or ``POST /__sandbox__/...``) asks of the
org to see how crmtier copes, each one named call and a thin layer over ``server.inject``
or the org's own state: ``rate_limit()``, ``exhaust_daily_limit()``, ``expire_session()``,
``lock_rows()``, ``read_only_mode()``, ``server_error()``, ``drop_connections()``,
``lose_responses()``. Kept apart from the sandbox's lifecycle, seeding and the Sandbox
protocol (``salesforce.py``) so that each stays readable on its own.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping

from connectors.sandbox.salesforce_org import SalesforceOrg
from connectors.sandbox.salesforce_rest import limit_info, sf_error
from connectors.sandbox.server import Request, SandboxServer

#: The messages a real org's 403 ``REQUEST_LIMIT_EXCEEDED`` carries, by limit: the rolling
#: 24-hour allocation, and the two concurrency limits an integration meets (concurrent
#: long-running API requests; concurrent long-running transactions, which an org's slow
#: triggers or flows on the records written reach). Public sources: Salesforce Help
#: knowledge article 000389067 (help.salesforce.com) for ``ConcurrentRequests``;
#: "Salesforce Diagnostics", Marketo Engage documentation (Adobe Experience League), and
#: mautic/mautic#5006 for ``ConcurrentPerOrgLongTxn``.
LIMIT_MESSAGES: Mapping[str, str] = {
    "TotalRequests": "TotalRequests Limit exceeded.",
    "ConcurrentRequests": "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
    "ConcurrentPerOrgLongTxn": "ConcurrentPerOrgLongTxn Limit exceeded.",
}


class SalesforceFaults:
    """The fault helpers of ``SalesforceSandbox`` (which mixes this in): what they use of
    it, declared here."""

    server: SandboxServer
    org: SalesforceOrg
    lock: threading.Lock
    tokens: set[str]
    lost: Counter[str]
    api_used: int
    daily_api_limit: int

    def rate_limit(
        self,
        *,
        kind: str = "*",
        times: int | None = 1,
        limit: str = "TotalRequests",
    ) -> int:
        """403 ``REQUEST_LIMIT_EXCEEDED`` of one of the org's ``LIMIT_MESSAGES``: the daily
        allocation (``TotalRequests``) or a concurrency limit."""
        response = sf_error(403, "REQUEST_LIMIT_EXCEEDED", LIMIT_MESSAGES[limit])
        response.headers["Sforce-Limit-Info"] = limit_info(self.api_used, self.daily_api_limit)
        return self.server.inject(kind, response=response, times=times, match=_data_call)

    def exhaust_daily_limit(self) -> None:
        """Use up the allocation: from now on every data call is a 403, as in a real org."""
        self.api_used = self.daily_api_limit

    def expire_session(self) -> None:
        """Invalidate every issued token: the next call gets 401 ``INVALID_SESSION_ID`` and
        a re-authentication succeeds (so the 401 happens once per re-auth)."""
        with self.lock:
            self.tokens.clear()

    def lock_rows(self, ids: list[str], *, times: int = 1) -> None:
        """The next ``times`` saves of each record fail with ``UNABLE_TO_LOCK_ROW``."""
        self.org.lock_rows(ids, times)

    def read_only_mode(self, on: bool = True) -> None:
        """The org's read-only mode (planned maintenance) starts (``on``) or ends: while it
        lasts every record saved or deleted fails with
        ``INSERT_UPDATE_DELETE_NOT_ALLOWED_DURING_MAINTENANCE``; reads go on."""
        self.org.read_only = on

    def server_error(self, *, kind: str = "*", status: int = 503, times: int | None = 1) -> int:
        code = "SERVER_UNAVAILABLE" if status == 503 else "UNKNOWN_EXCEPTION"
        return self.server.inject(
            kind,
            response=sf_error(status, code, "try again later"),
            times=times,
            match=_data_call,
        )

    def drop_connections(self, *, kind: str = "*", times: int | None = 1) -> int:
        return self.server.inject(kind, drop=True, times=times, match=_data_call)

    def lose_responses(self, kind: str, *, times: int = 1) -> None:
        """The next ``times`` calls of ``kind`` are carried out, then the connection drops
        before the answer: the client cannot tell whether its write happened."""
        with self.lock:
            self.lost[kind] += times

    def _clear_faults(self) -> None:
        """``POST /__sandbox__/reset``: the faults held in the org's own state end."""
        self.lost.clear()
        self.api_used = 0
        self.org.locks.clear()


def _data_call(request: Request) -> bool:
    """Faults aimed at "every call" spare the token endpoint, like a real org's limits."""
    return not request.path.startswith("/services/oauth2/")
