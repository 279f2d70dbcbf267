"""``doctor`` checks against a misconfigured org: each problem is one failing line with a fix."""

from __future__ import annotations

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
