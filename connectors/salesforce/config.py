"""The ``[crm]`` table for Salesforce, validated.

Auth is OAuth 2.0 client credentials (an integration user on a connected app) or the JWT
bearer flow; the username-password flow and SOAP ``login()`` are being retired by
Salesforce, so they are not offered. Secrets are ``env:``/``file:`` references only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from connectors.errors import ConfigError
from connectors.http import RetryPolicy
from connectors.secrets import SecretRef


class SalesforceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["salesforce"] = "salesforce"
    base_url: str  # the org's My Domain URL, e.g. https://acme.my.salesforce.com
    auth: Literal["client_credentials", "jwt"] = "client_credentials"
    client_id: SecretRef
    client_secret: SecretRef | None = None  # client_credentials
    private_key: SecretRef | None = None  # jwt: PEM of the connected app's certificate key
    username: str | None = None  # jwt: the integration user
    audience: str = "https://login.salesforce.com"  # jwt: test.salesforce.com for sandboxes
    ca_bundle: str = ""
    api_share: float = Field(0.2, gt=0, le=1)
    api_version: str = Field("59.0", pattern=r"^\d{2}\.0$")
    page_size: int = Field(2000, ge=200, le=2000)
    bulk_threshold: int = Field(2000, ge=1)
    bulk_poll_seconds: float = Field(1.0, ge=0)
    campaign_member_object: str = "CampaignMember"
    accounts_as_campaign_members: bool = True
    person_accounts: bool = True
    external_id_field: str = "Crmtier_Key__c"
    max_attempts: int = Field(5, ge=1, le=10)
    backoff_base: float = Field(0.5, ge=0)
    backoff_cap: float = Field(120.0, ge=0, le=120)
    connect_timeout: float = Field(10.0, gt=0, le=60)
    read_timeout: float = Field(30.0, gt=0, le=600)

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must be an https:// URL (the org's My Domain)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _credentials(self) -> SalesforceSettings:
        if self.auth == "client_credentials" and self.client_secret is None:
            raise ValueError("auth = client_credentials needs client_secret")
        if self.auth == "jwt" and (self.private_key is None or not self.username):
            raise ValueError("auth = jwt needs private_key and username")
        return self

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            backoff_base=self.backoff_base,
            backoff_cap=self.backoff_cap,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
        )


def load_settings(crm: object) -> SalesforceSettings:
    """Validate the raw ``[crm]`` table; a bad one is a one-line ``ConfigError`` naming the
    key (never echoing a value, which might be a secret)."""
    try:
        return SalesforceSettings.model_validate(crm)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(["crm", *(str(p) for p in err["loc"])])
        raise ConfigError(f"{where}: {err['msg']}") from None
