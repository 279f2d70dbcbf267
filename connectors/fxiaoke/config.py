"""The ``[crm]`` table of crmtier.toml for ``kind = "fxiaoke"``, validated.

Credentials are named as FXiaoke names them (``app_id``, ``app_secret``, ``permanent_code``,
``open_user_id``). The app id and the acting user's id are identifiers, not secrets; the app
secret and the permanent authorisation code are secret references (``env:``/``file:``).

Where the Open API docs leave a shape unverified (the follow-up object, the campaign-member
field names: reference/crm_apis.md §3.4) the names are configuration with defaults that
match the crmtier sandbox, so an admin points them at the tenant's real api names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.secrets import SecretRef
from connectors.settings import CrmSettings, load_crm_settings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FollowupFields(_Strict):
    """Field api names on the follow-up (task) object."""

    customer: str = "field_customer__c"  # object_reference to the customer object
    subject: str = "name"
    due: str = "field_due_date__c"  # date: epoch ms
    priority: str = "field_priority__c"  # select_one high/normal/low
    queue: str = "field_queue__c"
    description: str = "field_description__c"
    external_key: str = "field_crmtier_key__c"  # crmtier's dedupe key, unique per task
    owner: str = "owner"  # employee list


class CampaignMemberFields(_Strict):
    """Field api names on the campaign-member object (UNVERIFIED in the docs: check with
    ``/cgi/crm/v2/object/describe``, or ``crmtier doctor``)."""

    campaign: str = "marketing_event_id"
    customer: str = "account_id"
    external_key: str = "field_crmtier_key__c"


class FxiaokeConfig(CrmSettings):
    kind: Literal["fxiaoke"] = "fxiaoke"
    base_url: str = "https://open.fxiaoke.com"
    auth: Literal["app_secret"] = "app_secret"
    # "oauth2": POST /oauth2.0/token, then bearer + x-fs-ea + x-fs-userid headers (current docs)
    # "corp_access_token": POST /cgi/corpAccessToken/get/V2, credentials in every JSON body
    convention: Literal["oauth2", "corp_access_token"] = "oauth2"
    app_id: str
    app_secret: SecretRef
    permanent_code: SecretRef
    open_user_id: str  # the acting employee: x-fs-userid / currentOpenUserId
    daily_quota: int | None = Field(default=None, ge=1)  # purchased calls per day, if known
    calls_per_window: int = Field(default=100, ge=1)  # per endpoint ...
    window_seconds: float = Field(default=20.0, gt=0)  # ... per this many seconds
    token_calls_per_minute: int = Field(default=10, ge=1)
    write_concurrency: int = Field(default=4, ge=1, le=32)
    followup_object: str = "object_followup__c"
    followup_fields: FollowupFields = FollowupFields()
    campaign_member_object: str = "CampaignMembersObj"
    campaign_member_fields: CampaignMemberFields = CampaignMemberFields()

    @field_validator("base_url")
    @classmethod
    def _https_base(cls, value: str) -> str:
        if not value.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("must be an https:// URL (plain http only on loopback)")
        return value.rstrip("/")


def load_config(crm: Mapping[str, Any]) -> FxiaokeConfig:
    """Validate the raw ``[crm]`` table; a bad value is a one-line ``ConfigError`` naming it."""
    return load_crm_settings(FxiaokeConfig, crm)
