"""The ``[crm]`` table for Salesforce, validated.

Auth is OAuth 2.0 client credentials (an integration user on a connected app) or the JWT
bearer flow; the username-password flow and SOAP ``login()`` are being retired by
Salesforce, so they are not offered. Secrets are ``env:``/``file:`` references only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from connectors.secrets import SecretRef
from connectors.settings import CrmSettings, load_crm_settings

#: The oldest API version that has every call crmtier makes: sObject Collections upsert, how
#: tasks are written, "is available in API version 46 and later" (REST API Developer Guide,
#: "Upsert Records Using sObject Collections"), and CampaignMember.AccountId, how a business
#: account joins a campaign, was "Introduced: API version 50.0" (Object Reference for the
#: Salesforce Platform, "CampaignMember"). One floor for both: with accounts as campaign
#: members off 46.0 would do, but every org serves 50.0 (Winter '21) and later, so a
#: config has no reason to pin an older one. Below it, tasks or memberships would fail on
#: every run with a NOT_FOUND or INVALID_FIELD the config could have named up front.
MIN_API_VERSION = 50.0


class SalesforceSettings(CrmSettings):
    kind: Literal["salesforce"] = "salesforce"
    base_url: str  # the org's My Domain URL, e.g. https://acme.my.salesforce.com
    auth: Literal["client_credentials", "jwt"] = "client_credentials"
    client_id: SecretRef
    client_secret: SecretRef | None = None  # client_credentials
    private_key: SecretRef | None = None  # jwt: PEM of the connected app's certificate key
    username: str | None = None  # jwt: the integration user
    audience: str = "https://login.salesforce.com"  # jwt: test.salesforce.com for sandboxes
    api_version: str = Field("59.0", pattern=r"^\d{2}\.0$")
    page_size: int = Field(2000, ge=200, le=2000)
    bulk_threshold: int = Field(2000, ge=1)
    bulk_poll_seconds: float = Field(1.0, ge=0)
    campaign_member_object: str = "CampaignMember"
    accounts_as_campaign_members: bool = True
    person_accounts: bool = True
    external_id_field: str = "Crmtier_Key__c"
    #: API name of the permission set assigned to the integration user: ``doctor --fix``
    #: grants it Read and Edit on the fields it creates (empty: that step is done by hand)
    permission_set: str = Field("", pattern=r"^(?:[A-Za-z]\w*)?$")

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must be an https:// URL (the org's My Domain)")
        return value.rstrip("/")

    @field_validator("api_version")
    @classmethod
    def _recent_enough(cls, value: str) -> str:
        if float(value) < MIN_API_VERSION:
            raise ValueError(
                f"must be {MIN_API_VERSION} or later: older versions lack sObject Collections "
                "upsert or CampaignMember.AccountId"
            )
        return value

    @model_validator(mode="after")
    def _credentials(self) -> SalesforceSettings:
        if self.auth == "client_credentials" and self.client_secret is None:
            raise ValueError("auth = client_credentials needs client_secret")
        if self.auth == "jwt" and (self.private_key is None or not self.username):
            raise ValueError("auth = jwt needs private_key and username")
        return self


def load_settings(crm: Mapping[str, Any]) -> SalesforceSettings:
    """Validate the raw ``[crm]`` table (errors name the key, never echo a value)."""
    return load_crm_settings(SalesforceSettings, crm)
