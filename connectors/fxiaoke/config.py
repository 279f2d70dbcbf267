"""The ``[crm]`` table of crmtier.toml for ``kind = "fxiaoke"``, validated.

Credentials are named as FXiaoke names them (``app_id``, ``app_secret``, ``permanent_code``,
``open_user_id``). The app id and the acting user's id are identifiers, not secrets; the app
secret and the permanent authorisation code are secret references (``env:``/``file:``).

Where the Open API docs leave a shape unverified (the follow-up object, the campaign-member
field names in the FXiaoke Open API v2 docs) the names are configuration with defaults that
match the crmtier sandbox, so an admin points them at the tenant's real api names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

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
    #: The acting employee. "oauth2": its CRM employee id (digits), sent as ``x-fs-userid``
    #: with ``convertUserId: false``; "corp_access_token": its open user id ``FSUID_...``,
    #: sent as ``currentOpenUserId``.
    open_user_id: str
    daily_quota: int | None = Field(default=None, ge=1)  # purchased calls per day, if known
    calls_per_window: int = Field(default=100, ge=1)  # per endpoint ...
    window_seconds: float = Field(default=20.0, gt=0)  # ... per this many seconds
    token_calls_per_minute: int = Field(default=10, ge=1)
    write_concurrency: int = Field(default=4, ge=1, le=32)
    followup_object: str = "object_followup__c"
    followup_fields: FollowupFields = FollowupFields()
    campaign_member_object: str = "CampaignMembersObj"
    campaign_member_fields: CampaignMemberFields = CampaignMemberFields()

    @field_validator("open_user_id")
    @classmethod
    def _user_id_of_convention(cls, value: str, info: ValidationInfo) -> str:
        """Each convention names the acting user its own way (developer.fxiaoke.com/
        openapi_v2/en/start/example/public.html: ``x-fs-userid`` is the "Employee ID" from
        CRM → Personnel; the legacy parameters take ``currentOpenUserId = FSUID_...``), and
        neither converts the other's id: a wrong one fails every call with 30027 员工不存在."""
        value = value.strip()
        convention = info.data.get("convention", "oauth2")
        if convention == "oauth2" and not value.isdigit():
            raise PydanticCustomError(
                "open_user_id",
                'with convention = "oauth2" this is the CRM employee id FXiaoke sends as '
                "x-fs-userid (digits: CRM → 人员/Personnel → the user's 员工ID/Employee ID), "
                'not {given}; use that id, or set convention = "corp_access_token" to act '
                "as the open user id FSUID_...",
                {"given": "an FSUID_ open user id" if value.startswith("FSUID_") else repr(value)},
            )
        if convention == "corp_access_token" and not value.startswith("FSUID_"):
            raise PydanticCustomError(
                "open_user_id",
                'with convention = "corp_access_token" this is the acting user\'s open user id '
                "(FSUID_...), sent as currentOpenUserId; a CRM employee id such as {given} "
                'goes with convention = "oauth2"',
                {"given": repr(value)},
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _https_base(cls, value: str) -> str:
        if not value.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("must be an https:// URL (plain http only on loopback)")
        return value.rstrip("/")


def load_config(crm: Mapping[str, Any]) -> FxiaokeConfig:
    """Validate the raw ``[crm]`` table; a bad value is a one-line ``ConfigError`` naming it."""
    return load_crm_settings(FxiaokeConfig, crm)
