"""Memberships are created with Status "Sent", a value each campaign defines for itself
(Object Reference, "CampaignMemberStatus": "One or more member status values defined for a
campaign"); doctor warns about each configured campaign that lacks it, and about a user who
may not read the statuses at all."""

from __future__ import annotations

import pytest
from sf_helpers import FAST_RETRY

from connectors.salesforce.writes import MEMBER_STATUS
from connectors.sandbox.base import open_sandbox

LINE = "campaign member statuses"


@pytest.fixture
def sandbox(sandbox_factory):
    return sandbox_factory("salesforce", customers=1)


def _line(connector):
    (line,) = [c for c in connector.check() if c.name == LINE]
    return line


def _drop_status(sandbox, campaign_id: str, label: str) -> None:
    for rid, _, data in list(sandbox.store.scan("CampaignMemberStatus")):
        if data["CampaignId"] == campaign_id and data["Label"] == label:
            sandbox.store.delete("CampaignMemberStatus", rid)


def test_every_campaign_defines_the_status_memberships_are_made_with(sandbox, connect):
    line = _line(connect(sandbox, **FAST_RETRY))
    assert line.ok and MEMBER_STATUS in line.detail


@pytest.mark.parametrize("dropped", [["vip_events"], ["survey_mass", "wealth_seminar"]])
def test_a_campaign_without_it_is_a_warning_naming_the_campaign(sandbox, connect, dropped):
    connector = connect(sandbox, **FAST_RETRY)
    for key in dropped:
        _drop_status(sandbox, connector.writeback.campaigns[key], MEMBER_STATUS)
    _drop_status(sandbox, connector.writeback.campaigns["affluent_offers"], "Responded")
    line = _line(connector)
    assert not line.ok and line.severity == "warning"
    assert line.detail == f'no member status "{MEMBER_STATUS}" on {", ".join(sorted(dropped))}'
    assert MEMBER_STATUS in line.fix


def test_a_refused_status_query_is_a_warning_about_the_marketing_user(sandbox, connect):
    connector = connect(sandbox, **FAST_RETRY)
    del sandbox.org.schema["CampaignMemberStatus"]  # as for a user who may not see it
    line = _line(connector)
    assert not line.ok and line.severity == "warning"
    assert "Marketing User" in line.fix


def test_with_memberships_off_there_is_no_status_line(sandbox, connect):
    """docs/admin-setup.md offers ``campaign_memberships = false`` for a user who may not be
    a Marketing User: doctor then makes no line telling them to make it one."""
    connector = connect(sandbox, **FAST_RETRY)
    connector.writeback = connector.writeback.model_copy(update={"campaign_memberships": False})
    del sandbox.org.schema["CampaignMemberStatus"]  # as for a user who may not see it
    assert LINE not in {c.name for c in connector.check()}


def test_a_sandbox_store_from_before_member_statuses_gets_them_on_reopening(tmp_path, connect):
    """A sandbox's data dir outlives a release (``crmtier demo --output-dir``, ``crmtier
    sandbox``): reopened, its campaigns, made before campaigns had statuses, get them,
    else doctor would warn about every campaign of an org that is as set up as before."""
    first = open_sandbox("salesforce", data_dir=tmp_path)
    for rid, _, _ in list(first.store.scan("CampaignMemberStatus")):
        first.store.delete("CampaignMemberStatus", rid)  # the store as the last release left it
    first.store.close()
    reopened = open_sandbox("salesforce", data_dir=tmp_path)
    reopened.start()
    try:
        line = _line(connect(reopened, **FAST_RETRY))
    finally:
        reopened.stop()
    assert line.ok, line.detail
