"""FXiaoke doctor checks (connectors/fxiaoke/checks.py) against the sandbox."""

from __future__ import annotations

from dataclasses import replace

import pytest

from connectors.fxiaoke.checks import MARKETING_EVENT, required_unfilled
from connectors.sandbox.fxiaoke import FxiaokeSandbox
from connectors.sandbox.fxiaoke_routes import error_response
from connectors.sandbox.fxiaoke_schema import (
    ACCOUNT,
    CAMPAIGN_MEMBER,
    FOLLOWUP,
    KEY_FIELD,
    FieldSpec,
)
from tests.fxiaoke.fx_helpers import Connect


def test_check_passes_against_the_sandbox(sandbox: FxiaokeSandbox, connect: Connect) -> None:
    checks = connect(sandbox).check()
    assert checks and all(c.ok for c in checks), [c for c in checks if not c.ok]
    restricted = [c for c in checks if c.name == "write aml_risk"]
    assert restricted[0].severity == "warning"


def test_check_names_what_to_fix(sandbox: FxiaokeSandbox, connect: Connect) -> None:
    connector = connect(sandbox)
    broken = connector.mapping.model_copy(update={"fields": {"assets.deposits": "field_nope__c"}})
    connector.mapping = broken
    failing = [c for c in connector.check() if not c.ok]
    assert [c.name for c in failing] == ["read assets.deposits"]
    assert "field_nope__c" in failing[0].fix


def test_check_names_the_options_a_select_field_lacks(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    """The options every declared value needs (tiering_core/outputs.py): a tenant whose
    AML field lacks "prohibited" would refuse that write."""
    fields = sandbox.objects[ACCOUNT].fields
    spec = fields["field_aml_risk__c"]
    fields["field_aml_risk__c"] = replace(spec, options=("low", "medium", "high", "unrated"))
    failing = [c for c in connect(sandbox).check() if not c.ok]
    assert [(c.name, c.detail) for c in failing] == [
        ("write aml_risk", "field_aml_risk__c lacks options prohibited")
    ]


def test_check_flags_a_campaign_that_does_not_exist(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    connector = connect(sandbox)
    campaigns = {**connector.writeback.campaigns, "vip_events": "me_gone"}
    connector.writeback = connector.writeback.model_copy(update={"campaigns": campaigns})
    failing = [c for c in connector.check() if not c.ok]
    assert [c.name for c in failing] == ["campaign vip_events"]
    assert "writeback.campaigns.vip_events" in failing[0].fix


def test_the_membership_prerequisites_include_every_campaign(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    """The start gate (``write_checks``) asks what doctor asks: a campaign id no 市场活动
    has would otherwise dead-letter every customer's membership create (32000), after the
    run wrote tier fields."""
    connector = connect(sandbox)
    campaigns = {**connector.writeback.campaigns, "vip_events": "me_gone"}
    connector.writeback = connector.writeback.model_copy(update={"campaigns": campaigns})
    lines = connector.write_checks(["membership"])
    assert {c.name for c in lines} >= {f"campaign {key}" for key in campaigns}
    failing = [c for c in lines if not c.ok]
    assert [(c.name, c.fix) for c in failing] == [
        ("campaign vip_events", "fix writeback.campaigns.vip_events")
    ]
    assert not any(c.name.startswith("campaign ") for c in connector.write_checks(["task"]))


def test_an_invalidated_campaign_is_no_campaign(sandbox: FxiaokeSandbox, connect: Connect) -> None:
    connector = connect(sandbox)
    key, event_id = sorted(connector.writeback.campaigns.items())[0]
    sandbox.store.update(MARKETING_EVENT, event_id, {"life_status": "invalid"})
    failing = [c for c in connector.write_checks(["membership"]) if not c.ok]
    assert [(c.name, c.ok) for c in failing] == [(f"campaign {key}", False)]
    assert "作废" in failing[0].detail and "recycle bin" in failing[0].fix


def test_check_reports_bad_credentials(sandbox: FxiaokeSandbox, connect: Connect) -> None:
    sandbox.server.inject("oauth2_token", response=error_response(20006, "appId或appSecret错误"))
    (check,) = connect(sandbox).check()
    assert not check.ok and "20006" in check.detail and "app_secret" in check.fix


@pytest.mark.parametrize(
    ("obj", "field", "check", "role"),
    [
        (FOLLOWUP, "field_due_date__c", "follow-up tasks", "due"),
        (FOLLOWUP, KEY_FIELD, "follow-up tasks", "external_key"),
        (FOLLOWUP, "owner", "follow-up tasks", "owner"),
        (CAMPAIGN_MEMBER, "account_id", "campaign memberships", "customer"),
        (CAMPAIGN_MEMBER, "marketing_event_id", "campaign memberships", "campaign"),
        (CAMPAIGN_MEMBER, KEY_FIELD, "campaign memberships", "external_key"),
    ],
)
def test_check_names_a_field_the_task_or_member_object_lacks(
    sandbox: FxiaokeSandbox, connect: Connect, obj: str, field: str, check: str, role: str
) -> None:
    """FXiaoke's docs name neither CampaignMembersObj's fields nor a follow-up object, so
    the names crmtier writes are configuration (``[crm.followup_fields]``,
    ``[crm.campaign_member_fields]``): doctor reads the object's describe and names a field
    the tenant lacks, instead of passing and letting every create fail with 32000."""
    del sandbox.objects[obj].fields[field]
    failing = [c for c in connect(sandbox).check() if not c.ok]
    detail = f"{obj} has no field {field} ({role})"
    assert [(c.name, c.detail) for c in failing] == [(check, detail)]


@pytest.mark.parametrize(
    ("obj", "check"), [(FOLLOWUP, "follow-up tasks"), (CAMPAIGN_MEMBER, "campaign memberships")]
)
def test_check_names_a_required_field_crmtier_does_not_fill(
    sandbox: FxiaokeSandbox, connect: Connect, obj: str, check: str
) -> None:
    """A custom field the admin made required (the describe's ``is_required``, "Object
    Description Query") that crmtier's create leaves empty would fail every create: doctor
    names it before the first sync."""
    sandbox.objects[obj].fields["field_branch__c"] = FieldSpec("text", "网点", required=True)
    failing = [c for c in connect(sandbox).check() if not c.ok]
    detail = f"{obj} requires field_branch__c, which crmtier does not fill"
    assert [(c.name, c.detail) for c in failing] == [(check, detail)]


@pytest.mark.parametrize(
    ("field", "flagged"),
    [
        ({"is_required": True}, True),
        ({"is_required": True, "default_value": ""}, True),
        ({"is_required": True, "default_value": "north"}, False),  # FXiaoke fills it
        ({"is_required": False}, False),
        ({}, False),
    ],
)
def test_required_unfilled_lists_custom_fields_without_a_default(
    field: dict[str, object], flagged: bool
) -> None:
    fields = {"field_branch__c": field, "record_type": {"is_required": True}, "name": field}
    assert required_unfilled(fields, {"name"}) == (["field_branch__c"] if flagged else [])


def test_check_warns_of_a_date_field_outside_utc8(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    """crmtier writes a date as midnight UTC+8, as the documented answers' dates are; a
    describe whose ``time_zone`` ("Object Description Query") names another zone (a tenant
    on the Frankfurt or North America cloud, say) may show it a day off: a warning, since
    how FXiaoke applies that zone to a date field is not documented."""
    fields = sandbox.objects[ACCOUNT].fields
    fields["field_next_review__c"] = replace(fields["field_next_review__c"], time_zone="GMT+1")
    checks = connect(sandbox).check()
    assert all(c.ok for c in checks)
    (warned,) = [c for c in checks if c.name == "write next_review"]
    assert warned.severity == "warning" and "time_zone GMT+1" in warned.detail


def test_check_names_a_required_queue_field_crmtier_leaves_empty(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    """crmtier fills the follow-up's queue field only for a task routed to a queue; a task
    for a named owner carries ``""`` there, which a required field refuses. Doctor must not
    count the queue field as filled."""
    fields = sandbox.objects[FOLLOWUP].fields
    fields["field_queue__c"] = replace(fields["field_queue__c"], required=True)
    failing = [c for c in connect(sandbox).check() if not c.ok]
    detail = f"{FOLLOWUP} requires field_queue__c, which crmtier does not fill"
    assert [(c.name, c.detail) for c in failing] == [("follow-up tasks", detail)]


def test_a_restricted_date_field_outside_utc8_keeps_both_warnings(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    """A bank may restrict more outputs than the declared ones (``[writeback] restricted``);
    the time-zone warning must not hide the restriction's."""
    fields = sandbox.objects[ACCOUNT].fields
    fields["field_next_review__c"] = replace(fields["field_next_review__c"], time_zone="GMT+1")
    connector = connect(sandbox)
    restricted = (*connector.writeback.restricted, "next_review")
    connector.writeback = connector.writeback.model_copy(update={"restricted": restricted})
    (warned,) = [c for c in connector.check() if c.name == "write next_review"]
    assert warned.ok and warned.severity == "warning"
    assert "time_zone GMT+1" in warned.detail and "compliance roles only" in warned.detail
