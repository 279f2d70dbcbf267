"""`crmtier explain`'s campaign lines for a customer who qualifies for a campaign crmtier
will not add it to: a campaign given ``add = false`` (it takes no members) or campaign
memberships switched off. The line says the customer stays out and why, in English and
Chinese, not "member" (nor "joins"); one crmtier already made a member stays "member"."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from connectors.mapping import WritebackConfig, load_default_mapping
from crmtier.explain import ExplainContext, _campaigns
from crmtier.explain_labels import label
from sync.disclosure import Disclosure
from sync.planner import Known, plan_customer
from tests.sync.test_sync_planner import _detractor
from tiering_core.engine import assess
from tiering_core.policy import load_policy

POLICY = load_policy()


def _writeback(vip: object, memberships: bool = True) -> WritebackConfig:
    shipped = load_default_mapping("salesforce").writeback
    return WritebackConfig.model_validate(
        {
            **shipped.model_dump(),
            "campaigns": {**shipped.campaigns, "vip_events": vip},
            "campaign_memberships": memberships,
        }
    )


def _why(writeback: WritebackConfig, lang: str, known: Known) -> dict[str, str]:
    ctx = ExplainContext(
        POLICY, load_default_mapping("salesforce").mapping, writeback, Disclosure(), lang
    )
    assessment: Any = assess(
        _detractor("individual", False), POLICY, date(2026, 11, 28)
    ).model_dump()
    plan = plan_customer(assessment, {}, known, writeback)
    return {
        c["campaign"]: c["why"]
        for c in _campaigns(assessment, plan, known, "individual", ctx)
        if c["member"]
    }


@pytest.mark.parametrize(
    ("lang", "words"),
    [("en", "the campaign takes no members"), ("zh", "该营销活动不接收成员")],
)
def test_a_campaign_given_add_false_says_the_customer_will_not_be_added(
    lang: str, words: str
) -> None:
    vip = load_default_mapping("salesforce").writeback.campaigns["vip_events"]
    assert _why(_writeback(vip), lang, Known())["vip_events"] == label("joins", lang)
    closed = _writeback({"id": vip, "add": False})
    why = _why(closed, lang, Known())
    assert words in why["vip_events"]
    assert why["survey_private"] == label("joins", lang)  # a campaign that takes members
    made = Known(memberships={"vip_events": "C1:vip_events"})  # crmtier made it: it stays
    assert _why(closed, lang, made)["vip_events"] == label("member", lang)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_memberships_off_say_the_customer_will_not_be_added(lang: str) -> None:
    vip = load_default_mapping("salesforce").writeback.campaigns["vip_events"]
    off = _writeback(vip, memberships=False)
    assert set(_why(off, lang, Known()).values()) == {label("memberships_off", lang)}
