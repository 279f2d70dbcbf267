"""An org without Person Accounts has no ``IsPersonAccount`` or ``PersonContactId`` (SOAP
API Developer Guide, "Person Account Record Types"; "Enable Person Accounts", Salesforce
Help). With ``[crm] person_accounts`` on, the default, every read selects both: doctor must
fail its line before the first sync does, and with the setting off the sync reads and
writes memberships by account."""

from __future__ import annotations

import pytest
from sf_helpers import FAST_RETRY, read_all

from connectors.contract import MembershipChange, WritePlan
from connectors.errors import ConfigError


@pytest.fixture
def sandbox(sandbox_factory):
    return sandbox_factory("salesforce", customers=4, person_accounts=False)


def test_doctor_fails_the_person_accounts_line_in_an_org_without_them(sandbox, connect):
    checks = {c.name: c for c in connect(sandbox, **FAST_RETRY).check()}
    line = checks["person accounts"]
    assert not line.ok and line.severity == "error"
    assert "IsPersonAccount, PersonContactId" in line.detail
    assert "person_accounts = false" in line.fix
    assert [c.name for c in checks.values() if not c.ok and c.severity == "error"] == [
        "person accounts"
    ]


def test_the_read_that_doctor_warned_of_fails_and_the_setting_mends_it(sandbox, connect):
    with pytest.raises(ConfigError) as info:
        read_all(connect(sandbox, **FAST_RETRY))
    assert "IsPersonAccount" in str(info.value)
    connector = connect(sandbox, person_accounts=False)
    assert "person accounts" not in {c.name for c in connector.check()}
    assert len(read_all(connector)) == 4
    campaign = next(iter(connector.writeback.campaigns))
    change = MembershipChange(sandbox.customer_id(0), campaign, True, "m-1")
    assert [r.ok for r in connector.apply(WritePlan(memberships=(change,)))] == [True]
    assert (sandbox.customer_id(0), campaign) in sandbox.memberships()


def test_an_org_with_person_accounts_passes_the_line(sandbox_factory, connect):
    checks = {c.name: c for c in connect(sandbox_factory("salesforce", customers=1)).check()}
    assert checks["person accounts"].ok
