"""``doctor`` checks against a misconfigured org: each problem is one failing line with a fix."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sf_helpers import FAST_RETRY


@pytest.fixture
def sandbox(sandbox_factory):
    return sandbox_factory("salesforce", customers=2)


def _failing(connector) -> dict[str, str]:
    return {c.name: c.fix for c in connector.check() if not c.ok and c.severity == "error"}


@pytest.mark.parametrize(
    ("section", "change", "name"),
    [
        ("mapping", {"credit.score": "Credit_Scor__c"}, "field Credit_Scor__c"),
        ("mapping", {"credit.score": "Customer_Kind__c"}, "field Customer_Kind__c"),
        ("mapping", {"aml.pep": "Deposits__c"}, "field Deposits__c"),
        ("writeback", {"value_tier": "IsPersonAccount"}, "write-back IsPersonAccount"),
        ("writeback", {"value_tier": "Tier__c"}, "write-back Tier__c"),
        ("campaigns", {"vip_events": "701000000000099AAA"}, "campaign vip_events"),
    ],
)
def test_each_misconfiguration_fails_one_line_with_a_fix(sandbox, connect, section, change, name):
    connector = connect(sandbox, **FAST_RETRY)
    if section == "mapping":
        connector.mapping = connector.mapping.model_copy(
            update={"fields": {**connector.mapping.fields, **change}}
        )
    else:
        key = "fields" if section == "writeback" else "campaigns"
        current = getattr(connector.writeback, key)
        connector.writeback = connector.writeback.model_copy(update={key: {**current, **change}})
    failing = _failing(connector)
    assert list(failing) == [name]
    assert failing[name]


def test_a_restricted_picklist_missing_declared_values_fails_with_them(sandbox, connect):
    """An org set up before the corporate ladder: its tier picklist refuses a corporate's
    tier, so doctor names the missing values (declared in tiering_core/outputs.py)."""
    account = sandbox.org.schema["Account"]
    spec = account.fields["Value_Tier__c"]
    old = ("private", "wealth", "affluent", "mass", "unrated")
    account.fields["Value_Tier__c"] = replace(spec, picklist=old)
    failing = _failing(connect(sandbox, **FAST_RETRY))
    assert list(failing) == ["write-back Value_Tier__c"]
    assert failing["write-back Value_Tier__c"] == (
        "add corporate_strategic, corporate_key, corporate_standard, corporate_small to the "
        "values of Account.Value_Tier__c in Setup"
    )
    account.fields["Value_Tier__c"] = replace(spec, picklist=old, restricted=False)
    assert _failing(connect(sandbox, **FAST_RETRY)) == {}  # an open picklist takes any value


def test_missing_external_id_field_is_reported(sandbox, connect):
    connector = connect(sandbox, external_id_field="Other_Key__c")
    failing = _failing(connector)
    assert set(failing) == {
        "external id Task.Other_Key__c",
        "external id CampaignMember.Other_Key__c",
    }


def test_accounts_as_campaign_members_off_is_a_warning(sandbox_factory, connect):
    sandbox = sandbox_factory("salesforce", customers=1, accounts_as_campaign_members=False)
    checks = {c.name: c for c in connect(sandbox).check()}
    warning = checks["accounts as campaign members"]
    assert not warning.ok and warning.severity == "warning" and warning.fix


LEAD_QUEUE = "00G000000000090AAA"
RM = "005000000000101AAA"  # a relationship manager


@pytest.mark.parametrize(
    ("owner", "setup", "detail"),
    [
        (LEAD_QUEUE, "lead_queue", "does not accept Tasks (supported: Case, Lead)"),
        ("00G000000000091AAA", None, "queue 00G000000000091AAA not found"),
        (RM, "deactivate", "is inactive"),
        ("005000000000199AAA", None, "user 005000000000199AAA not found"),
        ("relationship managers", None, "neither a user (005…) nor a queue (00G…) id"),
    ],
)
def test_a_task_owner_that_cannot_own_a_task_fails_one_line(sandbox, connect, owner, setup, detail):
    """``[writeback.queues]``: a queue must list Task among its supported objects (a queue
    for Leads and Cases refuses a Task owner), a user must exist and be active."""
    if setup == "lead_queue":
        sandbox.add_queue(LEAD_QUEUE, "leads", ("Lead", "Case"))
    elif setup == "deactivate":
        sandbox.add_users([RM])
        sandbox.deactivate_user(RM)
    connector = connect(sandbox)
    queues = {**connector.writeback.queues, "credit_risk": owner}
    connector.writeback = connector.writeback.model_copy(update={"queues": queues})
    checks = {c.name: c for c in connector.check() if c.name.startswith("task owner")}
    assert [n for n, c in checks.items() if not c.ok] == ["task owner credit_risk"]
    failing = checks["task owner credit_risk"]
    assert detail in failing.detail and "[writeback.queues].credit_risk" in failing.fix
    assert len(checks) == len(queues)  # one line per configured owner


def test_what_doctor_refuses_salesforce_refuses_too(sandbox, connect):
    """The sandbox enforces the owner rules doctor checks: a Task for a Lead queue or an
    inactive user fails with Salesforce's codes; the shipped Task queues take it."""
    from sf_helpers import task

    from connectors.contract import WritePlan

    sandbox.add_queue(LEAD_QUEUE, "leads", ("Lead",))
    sandbox.add_users([RM])
    sandbox.deactivate_user(RM)
    connector = connect(sandbox)
    customer = sandbox.customer_id(0)
    plan = WritePlan(
        tasks=(
            task(customer, "k1", owner_id=LEAD_QUEUE),
            task(customer, "k2", owner_id=RM),
            task(customer, "k3", owner_id=connector.writeback.queues["compliance"]),
        )
    )
    assert [r.error_code for r in connector.apply(plan)] == [
        "FIELD_INTEGRITY_EXCEPTION",
        "INACTIVE_OWNER_OR_USER",
        None,
    ]
