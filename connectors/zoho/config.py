"""The ``[crm]`` table for Zoho CRM, validated.

Zoho runs one API host and one Accounts host per data centre (``www.zohoapis.com.cn`` and
``accounts.zoho.com.cn`` for China); both are configuration so the same code reaches any
data centre or the sandbox. ``accounts_url`` may be the Accounts host, as Zoho's docs and
docs/admin-setup.md give it, or its token endpoint: zcrmsdk wants the endpoint, so a bare
host gets Zoho's token path appended (Zoho CRM API v2 docs, "Refresh Access Tokens":
``POST {accounts-url}/oauth/v2/token``). Credentials are a self-client's client id,
secret and refresh token, as secret references. Limits are settings with Zoho's documented
maxima as ceilings (200 per read, 100 per write), and the API budget is a share of the
org's daily credits: Zoho does not report the allowance itself, so the admin states it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from connectors.secrets import SecretRef
from connectors.settings import CrmSettings, load_crm_settings

#: Zoho Accounts' token endpoint path, the same in every data centre.
TOKEN_PATH = "/oauth/v2/token"  # noqa: S105 - a URL path, not a secret
#: Live access tokens Zoho keeps per refresh token: "A maximum of 15 active access tokens
#: can be stored per refresh token. When the 16th token is requested, the oldest token is
#: invalidated" (Zoho CRM API "Token Validity", v8 token-validity.html; Kaizen #43 "Tokens
#: and Limitations"). Each crmtier process refreshes its own, in memory, so this many
#: processes can share one refresh token before they invalidate each other's.
ACCESS_TOKENS_PER_REFRESH_TOKEN = 15
#: The closed value of Zoho's standard Tasks Status picklist (Not Started, Deferred, In
#: Progress, Completed, Waiting for input): ``task_closed_statuses``' default.
DEFAULT_CLOSED = ("Completed",)


class ZohoConfig(CrmSettings):
    kind: Literal["zoho"] = "zoho"
    base_url: str = Field(description="API domain, e.g. https://www.zohoapis.com.cn")
    accounts_url: str = Field(
        description="Accounts host or its token endpoint, e.g. https://accounts.zoho.com.cn"
    )
    auth: Literal["refresh_token"] = "refresh_token"
    client_id: SecretRef
    client_secret: SecretRef
    refresh_token: SecretRef
    #: Names the integration user to zcrmsdk (its token-store key); not used for login.
    user_email: str = "crmtier-integration@example.com"
    daily_credits: int = Field(50_000, gt=0)
    #: Zoho ``trigger`` on our writes: empty so crmtier's own writes fire no workflows.
    workflow_triggers: tuple[Literal["workflow", "approval", "blueprint"], ...] = ()
    page_size: int = Field(200, ge=1, le=200)
    write_batch: int = Field(100, ge=1, le=100)
    #: Timeline pages (200 entries, one credit each) the override audit reads of one
    #: customer at most: a longer timeline leaves the override refused as unread
    #: (``DQ_AUDIT_UNREAD``), so one record can never spend the credits unbounded
    #: (``override_audit.py``). 25 pages: 5,000 audited changes.
    audit_timeline_pages: int = Field(25, ge=1, le=500)
    #: Owner id that means "no relationship manager" (an unassigned-customers user).
    unassigned_owner: str = ""
    #: Tasks field (unique, text) holding crmtier's dedupe key: makes task writes idempotent.
    task_key_field: str = "Crmtier_Key"
    #: The Tasks ``Status`` values that mean closed, the first the one a closure writes.
    #: Zoho's Status is a picklist each org may edit, and its field metadata marks no value
    #: closed (``pick_list_values``: ``display_value``, ``actual_value``, ``sequence_number``,
    #: no flag; "Fields Meta Data", Zoho CRM API v2), so the org's closed values are
    #: configuration; the default is the standard picklist's closed one, ``Completed`` (Not
    #: Started, Deferred, In Progress, Completed, Waiting for input). Each must be a value of
    #: the org's picklist: ``crmtier doctor`` and the start-up gate check it.
    task_closed_statuses: tuple[str, ...] = Field(DEFAULT_CLOSED, min_length=1)
    member_status: str = "Active"
    #: Optional display labels per write-back output: {value_tier = {private = "Private"}}.
    picklist_labels: dict[str, dict[str, str]] = Field(default_factory=dict)
    #: Where zcrmsdk caches field metadata; empty = a private temporary directory.
    resource_dir: str = ""

    @field_validator("base_url", "accounts_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must be an https:// URL (tokens never travel in clear text)")
        return value.rstrip("/")

    @field_validator("accounts_url")
    @classmethod
    def _token_endpoint(cls, value: str) -> str:
        """The Accounts host, or its token endpoint, as the token endpoint."""
        path = urlsplit(value).path
        if path == "":
            return value + TOKEN_PATH
        if path != TOKEN_PATH:
            raise PydanticCustomError(
                "accounts_url",
                "expected the Zoho Accounts host (https://accounts.zoho.com.cn) or its token "
                "endpoint (https://accounts.zoho.com.cn{path}), not a URL with the path "
                "{given}",
                {"path": TOKEN_PATH, "given": path},
            )
        return value

    @field_validator("task_closed_statuses")
    @classmethod
    def _distinct_statuses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not v.strip() for v in value) or len(set(value)) != len(value):
            raise ValueError("list distinct, non-empty Tasks Status values")
        return value

    @property
    def credit_budget(self) -> int:
        """Credits one run may spend: the configured share of the daily allowance."""
        return max(1, int(self.daily_credits * self.api_share))


def load_config(crm: Mapping[str, Any]) -> ZohoConfig:
    """Validate the raw ``[crm]`` table; errors name the setting, never a secret value."""
    return load_crm_settings(ZohoConfig, crm)
