"""One Zoho tenant's HTTP: its session, its share of the org's API credits, its call counts.

Everything zcrmsdk sends for a tenant goes through ``TenantHttp.send`` (the seam is in
``client_binding.py``): the shared ``connectors.http`` session with connect/read timeouts
and the configured ``ca_bundle`` (``trust_env`` off, so the environment's CA bundle cannot
override it). Each call is metered against the credit budget *before* it is sent, and
``X-API-CREDITS-REMAINING`` is read from the answer. No zcrmsdk import here.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from connectors import limits
from connectors.calltally import CallCounter
from connectors.errors import ConfigError, QuotaExhaustedError
from connectors.http import make_session
from connectors.limits import Quota
from connectors.zoho.config import ZohoConfig

CREDITS_HEADER = "X-API-CREDITS-REMAINING"
WRITE_KINDS = frozenset({"update", "insert", "upsert"})
#: Zoho counts API credits per org in a 24-hour window (its "API Limits" page)
DAY = 86_400.0


class CreditBudget:
    """This run's share of the org's daily Zoho credits (docs/targets.md R5): a call that would
    overspend is refused *before* it is sent, so a paused run has made no extra call.

    Zoho counts credits per org in a 24-hour window ("API Limits",
    https://www.zoho.com/crm/developer/docs/api/v2/api-limits.html). With ``shared`` (the
    store's quota, ``connectors/limits.py``) the share is the org's per day for every worker
    together; without it, this process's run is the only spender, and counts for itself."""

    def __init__(self, limit: int, shared: Quota | None = None) -> None:
        self.limit = limit
        self.used = 0  # by this process
        self.reported_remaining: int | None = None
        self._shared = shared
        self._lock = threading.Lock()

    def reserve(self, cost: int) -> None:
        with self._lock:
            if self.reported_remaining is not None and self.reported_remaining < cost:
                raise QuotaExhaustedError("Zoho reports the org's API credits are used up")
            if self._shared is not None:
                over = not self._shared.take(cost)
            else:
                over = self.used + cost > self.limit
            if over:
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


def credit_budget(config: ZohoConfig) -> CreditBudget:
    """The tenant's credit budget: held by the state store for every worker where it is
    shared (``connectors/limits.py``), else in this process. The org is named by its API
    domain and OAuth client, hashed (the store never holds either in clear)."""
    org = (config.base_url, config.client_id.get_secret_value())
    name = limits.limit_name("zoho", "credits", *org)
    return CreditBudget(config.credit_budget, limits.shared_quota(name, config.credit_budget, DAY))


def call_kind(method: str, path: str) -> str:
    """Name a Zoho API call by what it does (the sandbox uses the same names)."""
    parts = [p for p in path.split("/") if p]
    if parts[-3:] == ["oauth", "v2", "token"]:
        return "token"
    rest = parts[2:] if parts[:2] == ["crm", "v2"] else parts
    if rest[:1] == ["settings"]:
        return rest[1] if len(rest) > 1 else "settings"
    if rest[:1] in (["users"], ["coql"]):
        return rest[0]
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


class TenantHttp:
    """One tenant's HTTP: its session (timeouts, CA), credit budget and call counter."""

    def __init__(self, config: ZohoConfig, budget: CreditBudget) -> None:
        self.session = make_session(config.retry_policy(), config.ca_bundle or None)
        self.budget = budget
        self.calls = CallCounter()  # by kind of call (and by run)
        #: The API host Zoho Accounts named in its last token answer (``api_domain``).
        self.api_domain: str | None = None

    def send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kind = call_kind(method, urlsplit(url).path)
        self.budget.reserve(call_cost(kind, kwargs.get("data")))
        self.calls.add(kind)
        response = self.session.request(method, url, **kwargs)
        self.budget.observe(response.headers)
        if kind == "token":
            domain = check_token_answer(url, response).get("api_domain")
            self.api_domain = domain if isinstance(domain, str) and domain else self.api_domain
        return response

    def close(self) -> None:
        self.session.close()


def data_centre_mismatch(api_domain: str | None, base_url: str) -> str | None:
    """What to fix when Zoho Accounts named another API host than ``crm.base_url``, else
    None. An org lives in one data centre and its tokens are good at that centre's API host
    only, which every token answer names as ``api_domain`` (Zoho CRM API "Refresh Access
    Tokens"; "Multi DC Support", zoho.com/crm/developer/docs/api/v8/multi-dc.html): there a
    ``base_url`` of another centre answers a fresh token as an invalid one. crmtier never
    sends anything to ``api_domain``: only ``crm.base_url`` is ever called."""
    if api_domain and urlsplit(api_domain).hostname != urlsplit(base_url).hostname:
        return (
            f"Zoho Accounts names {api_domain} as this org's API domain (its data centre), "
            f"crm.base_url is {base_url}: set crm.base_url to {api_domain}"
        )
    return None


def check_token_answer(url: str, response: requests.Response) -> dict[str, Any]:
    """The JSON of a token answer: Zoho Accounts answers a token request with JSON holding
    ``access_token`` or an OAuth ``error`` (Zoho CRM API v2 docs, "Refresh Access Tokens").
    Anything else (an HTML page, a redirect, a 404) means ``accounts_url`` is not a token
    endpoint: zcrmsdk would report that as a failure to save tokens, so name the URL
    instead."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("access_token" in body or "error" in body):
        return body
    raise ConfigError(
        f"Zoho Accounts did not answer the token request at {url} (HTTP "
        f"{response.status_code}, no OAuth JSON): set crm.accounts_url to your data centre's "
        "Accounts host, e.g. https://accounts.zoho.com.cn"
    )
