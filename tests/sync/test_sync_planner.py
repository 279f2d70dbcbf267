"""The write-back planner, row by row: only differences are written, nothing twice."""

from __future__ import annotations

from datetime import date
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.errors import ConfigError
from connectors.mapping import WritebackConfig, load_default_mapping
from sync.dispatch import items_of
from sync.planner import (
    CustomerPlan,
    Known,
    Membership,
    action_kinds,
    plan_customer,
)
from sync.written_values import changed_fields, jsonable, same_value
from tiering_core.engine import assess
from tiering_core.models import (
    Assessment,
    AssessmentData,
    CampaignAction,
    CustomerProfile,
    SetFieldAction,
    TaskAction,
)
from tiering_core.policy import load_policy

WB = WritebackConfig(
    fields={"value_tier": "Value_Tier__c", "reasons": "Tier_Reasons__c", "value_score": "S__c"},
    campaigns={"vip_events": "701A", "wealth_seminar": "701B"},
)


def _assessment(*actions: Any) -> AssessmentData:
    """An assessment as the plain data the planner reads (built through the model, so it
    is one the model accepts)."""
    model = Assessment(
        id="C1",
        status="rated",
        value_tier="private",
        value_score=91.5,
        needs_tier="professional",
        credit_risk="low",
        aml_risk="low",
        ops_risk="low",
        edd_required=False,
        next_review=date(2027, 1, 1),
        service_level="dedicated",
        actions=actions,
        policy_version="default@abc",
    )
    return cast(AssessmentData, model.model_dump())


TASK = TaskAction(
    rule="rm_call",
    subject="Call",
    priority="high",
    due=date(2026, 4, 1),
    dedupe_key="C1:rm_call:2026Q2",
)
VIP = CampaignAction(campaign="vip_events", member=True, dedupe_key="C1:vip_events")


@pytest.mark.parametrize(
    ("desired", "current", "same"),
    [
        ("private", "private", True),
        ("private", "wealth", False),
        (91.5, "91.5", True),
        (91.5, 91.50000001, True),
        (None, "", True),
        (["A", "B"], "A;B", True),
        (["A", "B"], "A\nB", True),
        (["A", "B"], "B;A", False),
        (True, "true", True),
        (date(2027, 1, 1), "2027-01-01", True),
        # a CRM field with no value
        ("private", None, False),
        ("", None, True),
        ([], None, True),
        (float("nan"), None, True),
        (0, None, False),
        (False, None, False),
        ("  ", None, False),
    ],
)
def test_same_value(desired: Any, current: Any, same: bool) -> None:
    assert same_value(desired, current) is same


#: values as the engine produces them and as a CRM returns them (texts that read as
#: numbers, booleans, lists; empty ones; None)
_VALUES = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "private", "91.5", "true", "A;B", "2027-01-01", "0"]),
    st.text(max_size=4),
    st.floats(allow_nan=True),
    st.integers(-3, 3),
    st.booleans(),
    st.lists(st.sampled_from(["A", "B", ""]), max_size=2),
)


@given(st.dictionaries(st.sampled_from("abcd"), st.tuples(_VALUES, _VALUES)))
def test_changed_fields_are_those_same_value_says_differ(pairs: dict[str, Any]) -> None:
    """``changed_fields`` settles texts without calling ``same_value``: the same fields,
    in the same order, as asking it of each."""
    desired = {name: want for name, (want, _) in pairs.items()}
    current = {name: now for name, (_, now) in pairs.items() if now is not None}
    expected = {n: v for n, v in desired.items() if not same_value(v, current.get(n))}
    assert list(changed_fields(desired, current).items()) == list(expected.items())


def test_unchanged_customer_plans_nothing() -> None:
    a = _assessment(SetFieldAction(field="value_tier", value="private"), TASK, VIP)
    known = Known(tasks=frozenset({TASK.dedupe_key}), memberships={"vip_events": VIP.dedupe_key})
    plan = plan_customer(a, {"value_tier": "private"}, known, WB)
    assert not plan and len(plan) == 0


def test_only_differing_mapped_fields_are_written() -> None:
    a = _assessment(
        SetFieldAction(field="value_tier", value="private"),
        SetFieldAction(field="value_score", value=91.5),
        SetFieldAction(field="service_level", value="dedicated"),  # not mapped: never written
    )
    plan = plan_customer(a, {"value_tier": "wealth", "value_score": 91.5}, Known(), WB)
    assert dict(plan.fields) == {"value_tier": "private"}


def test_tasks_are_made_once_by_dedupe_key() -> None:
    a = _assessment(TASK)
    assert plan_customer(a, {}, Known(), WB).tasks == (TASK,)
    assert plan_customer(a, {}, Known(tasks=frozenset({TASK.dedupe_key})), WB).tasks == ()


def test_memberships_added_once_and_removed_when_no_longer_wanted() -> None:
    assert plan_customer(_assessment(VIP), {}, Known(), WB).memberships == (
        Membership("vip_events", True, VIP.dedupe_key),
    )
    known = Known(memberships={"wealth_seminar": "C1:wealth_seminar"})
    plan = plan_customer(_assessment(VIP), {}, known, WB)
    assert set(plan.memberships) == {
        Membership("vip_events", True, VIP.dedupe_key),
        Membership("wealth_seminar", False, "C1:wealth_seminar"),
    }
    leave = CampaignAction(campaign="vip_events", member=False, dedupe_key=VIP.dedupe_key)
    known = Known(memberships={"vip_events": VIP.dedupe_key})
    assert plan_customer(_assessment(leave), {}, known, WB).memberships == (
        Membership("vip_events", False, VIP.dedupe_key),
    )


LEAVE_VIP = CampaignAction(campaign="vip_events", member=False, dedupe_key=VIP.dedupe_key)
SEMINAR_KEY = "C1:wealth_seminar"


@pytest.mark.parametrize(
    ("actions", "known", "planned"),
    [
        # in doubt, wanted: join again (idempotent), even if recorded as joined
        ((VIP,), Known(in_doubt={"vip_events": VIP.dedupe_key}), {("vip_events", True)}),
        (
            (VIP,),
            Known(
                memberships={"vip_events": VIP.dedupe_key},
                in_doubt={"vip_events": VIP.dedupe_key},
            ),
            {("vip_events", True)},
        ),
        # in doubt, not wanted or not mentioned: leave (idempotent), even if never recorded
        ((LEAVE_VIP,), Known(in_doubt={"vip_events": VIP.dedupe_key}), {("vip_events", False)}),
        (
            (VIP,),
            Known(in_doubt={"wealth_seminar": SEMINAR_KEY}),
            {("vip_events", True), ("wealth_seminar", False)},
        ),
        # not in doubt: only what changes
        ((VIP,), Known(memberships={"vip_events": VIP.dedupe_key}), set()),
    ],
)
def test_memberships_in_doubt_are_planned_explicitly(
    actions: tuple[CampaignAction, ...], known: Known, planned: set[tuple[str, bool]]
) -> None:
    plan = plan_customer(_assessment(*actions), {}, known, WB)
    assert {(m.campaign, m.member) for m in plan.memberships} == planned


@pytest.mark.parametrize(
    ("actions", "planned"),
    [
        ((VIP, LEAVE_VIP), {("vip_events", False)}),
        ((LEAVE_VIP, VIP), set()),
    ],
    ids=["joined-then-left", "left-then-joined"],
)
def test_a_campaign_named_twice_is_planned_by_its_last_action(
    actions: tuple[CampaignAction, ...], planned: set[tuple[str, bool]]
) -> None:
    """``wants_of`` reads a decision's actions in order, as the planner always did: the
    last action of a campaign decides (an adjustment may append one). The customer is a
    member crmtier made: leaving is planned, staying plans nothing."""
    known = Known(memberships={"vip_events": VIP.dedupe_key})
    plan = plan_customer(_assessment(*actions), {}, known, WB)
    assert {(m.campaign, m.member) for m in plan.memberships} == planned


QUEUED = TASK.model_copy(update={"queue": "credit_risk", "dedupe_key": "C1:credit:2026Q2"})
SURVEY = CampaignAction(campaign="survey_mass", member=True, dedupe_key="C1:survey_mass")
NOT_SURVEYED = SURVEY.model_copy(update={"member": False})


@pytest.mark.parametrize(
    "action",
    [QUEUED, SURVEY, NOT_SURVEYED],
    ids=["queue", "campaign", "campaign-not-member"],
)
def test_a_target_the_config_never_named_is_an_error_not_a_silent_skip(action: Any) -> None:
    """A campaign the decision names but does not make the customer a member of is
    refused too: the config is wrong whether or not this customer joins it."""
    names = r"\[writeback\.(queues|campaigns)\] (credit_risk|survey_mass)"
    with pytest.raises(ConfigError, match=names):
        plan_customer(_assessment(action), {}, Known(), WB)


def test_switched_off_targets_are_not_planned_and_mapped_ones_are() -> None:
    off = WritebackConfig.model_validate(
        {
            **WB.model_dump(),
            "campaigns": {**WB.campaigns, "survey_mass": False},
            "queues": {"credit_risk": False},
        }
    )
    assert off.is_off("campaigns", "survey_mass") and "survey_mass" not in off.campaigns
    was_member = Known(memberships={"survey_mass": SURVEY.dedupe_key})
    assert not plan_customer(_assessment(QUEUED, SURVEY), {}, was_member, off)
    # nor joined by a customer crmtier has made no membership of it for
    assert not plan_customer(_assessment(QUEUED, SURVEY), {}, Known(), off)
    on = WB.model_copy(
        update={
            "campaigns": {**WB.campaigns, "survey_mass": "701S"},
            "queues": {"credit_risk": "00G1"},
        }
    )
    plan = plan_customer(_assessment(QUEUED, SURVEY), {}, Known(), on)
    assert plan.tasks == (QUEUED,) and plan.memberships == (
        Membership("survey_mass", True, SURVEY.dedupe_key),
    )


def test_disabled_side_effects_are_skipped() -> None:
    off = WB.model_copy(update={"tasks": False, "campaign_memberships": False})
    plan = plan_customer(_assessment(TASK, VIP), {}, Known(memberships={"x": "k"}), off)
    assert not plan


@pytest.mark.parametrize(
    ("tasks", "campaigns", "kinds"),
    [
        (True, True, {"set_field", "task", "campaign"}),
        (True, False, {"set_field", "task"}),
        (False, True, {"set_field", "campaign"}),
        (False, False, {"set_field"}),
    ],
)
def test_the_engine_is_asked_only_for_the_kinds_the_plan_can_use(
    tasks: bool, campaigns: bool, kinds: set[str]
) -> None:
    """``action_kinds`` tells the engine what to derive; the plan from only those actions
    equals the plan from all of them, whatever was made or is in doubt before."""
    wb = WB.model_copy(update={"tasks": tasks, "campaign_memberships": campaigns})
    assert action_kinds(wb) == kinds
    stale = CampaignAction(campaign="wealth_seminar", member=False, dedupe_key="C1:ws")
    everything = _assessment(SetFieldAction(field="value_tier", value="private"), TASK, VIP, stale)
    asked = tuple(a for a in everything["actions"] if a["kind"] in kinds)
    only_asked = cast(AssessmentData, {**everything, "actions": asked})
    current = {"value_tier": "mass"}
    for known in (
        Known(),
        Known(memberships={"wealth_seminar": "C1:ws"}, in_doubt={"vip_events": VIP.dedupe_key}),
    ):
        full = plan_customer(everything, current, known, wb)
        assert full.fields and (full.tasks or full.memberships or kinds == {"set_field"})
        assert plan_customer(only_asked, current, known, wb) == full


def _detractor(kind: str, sanctions_hit: bool) -> CustomerProfile:
    """A 7,000,000 depositor with a relationship manager and a detractor score."""
    return CustomerProfile.model_validate(
        {
            "id": "C1",
            "kind": kind,
            "owner_id": "RM1",
            "assets": {"deposits": 7_000_000, "investments": 0, "insurance": 0},
            "ops": {"kyc_expired": False},
            "aml": {"sanctions_hit": sanctions_hit, "pep": False},
            "feedback": {"nps": 3},
        }
    )


def test_a_sanctions_hit_withdraws_every_membership_in_the_same_plan() -> None:
    """Issue 16: the run that sees a sanctions hit plans the same-day compliance task and
    removes every campaign membership crmtier made, marketing or not."""
    profile = _detractor("individual", sanctions_hit=True)
    as_of = date(2026, 11, 28)
    assessment = cast(AssessmentData, assess(profile, load_policy(), as_of).model_dump())
    known = Known(memberships={"vip_events": "C1:vip_events", "wealth_seminar": SEMINAR_KEY})
    shipped = load_default_mapping("salesforce").writeback  # every campaign and queue mapped
    plan = plan_customer(assessment, {}, known, shipped)
    assert {(m.campaign, m.member) for m in plan.memberships} == {
        ("vip_events", False),
        ("wealth_seminar", False),
    }
    assert [(t.rule, t.due, t.priority, t.queue) for t in plan.tasks] == [
        ("sanctions_review", as_of, "high", "compliance")
    ]


@pytest.mark.parametrize(
    ("sanctioned", "removed"),
    [(True, [("vip_events", False), ("wealth_seminar", False)]), (False, [])],
    ids=["sanctioned", "clear"],
)
def test_memberships_off_still_withdraw_a_sanctioned_customer_s_memberships(
    sanctioned: bool, removed: list[tuple[str, bool]]
) -> None:
    """With ``campaign_memberships = false`` crmtier adds and removes no membership, except
    that a sanctions hit still removes those it made (in a campaign the config maps: the
    start-up gate refuses one it does not), so no sanctioned customer stays in a VIP
    campaign because the switch went off after crmtier put it there."""
    profile = _detractor("individual", sanctions_hit=sanctioned)
    assessment = cast(
        AssessmentData, assess(profile, load_policy(), date(2026, 11, 28)).model_dump()
    )
    known = Known(
        memberships={"vip_events": "C1:vip_events", "wealth_seminar": SEMINAR_KEY},
        in_doubt={"gone_campaign": "C1:gone_campaign"},  # no CRM id in the config: left
    )
    off = load_default_mapping("salesforce").writeback.model_copy(
        update={"campaign_memberships": False}
    )
    plan = plan_customer(assessment, {}, known, off)
    assert [(m.campaign, m.member) for m in plan.memberships] == removed
    assert plan_customer(assessment, {}, Known(), off).memberships == ()


def _remove_only(memberships: bool) -> WritebackConfig:
    """The shipped Salesforce write-back with ``vip_events = { id = ..., add = false }``."""
    shipped = load_default_mapping("salesforce").writeback
    campaigns = {**shipped.campaigns, "vip_events": {"id": "701R", "add": False}}
    return WritebackConfig.model_validate(
        {**shipped.model_dump(), "campaigns": campaigns, "campaign_memberships": memberships}
    )


@pytest.mark.parametrize("memberships", [True, False], ids=["memberships-on", "memberships-off"])
def test_a_campaign_given_add_false_takes_no_member_but_loses_those_crmtier_made(
    memberships: bool,
) -> None:
    """``key = { id = "...", add = false }`` keeps the campaign's CRM id so a sanctions hit
    still removes the members crmtier made there (what ``key = false`` cannot do), and
    adds no one, with memberships on or off."""
    wb = _remove_only(memberships)
    assert wb.campaigns["vip_events"] == "701R" and wb.remove_only == {"vip_events"}
    assert not wb.is_off("campaigns", "vip_events")
    assert plan_customer(_assessment(VIP), {}, Known(), wb).memberships == ()
    in_doubt = Known(in_doubt={"vip_events": VIP.dedupe_key})  # not added again either
    assert plan_customer(_assessment(VIP), {}, in_doubt, wb).memberships == ()
    sanctioned = cast(
        AssessmentData,
        assess(
            _detractor("individual", sanctions_hit=True), load_policy(), date(2026, 11, 28)
        ).model_dump(),
    )
    known = Known(memberships={"vip_events": VIP.dedupe_key})
    assert plan_customer(sanctioned, {}, known, wb).memberships == (
        Membership("vip_events", False, VIP.dedupe_key),
    )


@pytest.mark.parametrize(
    "entry",
    [{"id": "701R", "add": False, "note": "x"}, {"add": False}, {"id": False, "add": False}],
    ids=["unknown-key", "no-id", "id-false"],
)
def test_a_campaign_table_other_than_id_and_add_is_refused(entry: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"\[writeback\.campaigns\] vip_events: "):
        WritebackConfig.model_validate({"campaigns": {"vip_events": entry}})


#: Open tasks crmtier made in earlier runs, one per rule: dedupe key -> rule.
MADE = {
    f"C1:{rule}:old": rule
    for rule in (
        "upgrade_call",
        "dedicated_advisor",
        "corporate_banking",
        "investment_advisory",
        "service_recovery",
        "complaint",
        "credit_limit_review",
        "data_remediation",
        "edd_review",
        "sanctions_review",
    )
}
SALES = [
    "corporate_banking",
    "dedicated_advisor",
    "investment_advisory",
    "service_recovery",
    "upgrade_call",
]


def _assessed(sanctions_hit: bool, aml_risk: str | None = None) -> AssessmentData:
    """A corporate with a detractor score, assessed by the default policy (or, with
    ``aml_risk``, the same assessment rated at that level by a policy of the bank's)."""
    profile = _detractor("corporate", sanctions_hit)
    data = assess(profile, load_policy(), date(2026, 11, 28)).model_dump()
    if aml_risk is not None:
        data["aml_risk"] = aml_risk
    return cast(AssessmentData, data)


def _wanting(assessment: AssessmentData, rule: str) -> AssessmentData:
    """``assessment`` asking again for the open ``rule`` task of an earlier run (its
    dedupe key in ``MADE``), as a bank's policy that holds no sales task back may."""
    again = TASK.model_copy(update={"rule": rule, "dedupe_key": f"C1:{rule}:old"})
    actions = (*assessment["actions"], again.model_dump())
    return cast(AssessmentData, {**assessment, "actions": actions})


@pytest.mark.parametrize(
    ("assessment", "known", "tasks_written", "closed"),
    [
        # a sanctions hit withdraws the open sales tasks of earlier runs, nothing else
        (_assessed(True), MADE, True, SALES),
        # ... whatever level a waiver rates it
        (_assessed(True, aml_risk="high"), MADE, True, SALES),
        # a prohibited rating without a hit withdraws them too
        (_assessed(False, aml_risk="prohibited"), MADE, True, SALES),
        # an unrestricted customer keeps every task
        (_assessed(False), MADE, True, []),
        # a high (not prohibited) AML level blocks new sales tasks but withdraws none
        (_assessed(False, aml_risk="high"), MADE, True, []),
        # a sales task the decision asks for again stays open: it is wanted, not withdrawn
        (
            _wanting(_assessed(True, aml_risk="high"), "service_recovery"),
            MADE,
            True,
            [r for r in SALES if r != "service_recovery"],
        ),
        # a task whose rule the store does not know (made before it kept rules) stays
        (_assessed(True), {}, True, []),
        # tasks no longer written back: those made while they were are closed all the same
        (_assessed(True), MADE, False, SALES),
    ],
    ids=[
        "sanctioned",
        "waived-level",
        "prohibited",
        "clear",
        "aml-high",
        "wanted-again",
        "rule-unknown",
        "tasks-off",
    ],
)
def test_a_restricted_customer_s_open_sales_tasks_are_closed(
    assessment: AssessmentData, known: dict[str, str], tasks_written: bool, closed: list[str]
) -> None:
    """Issue 16 item 2: the run that sees a sanctions hit (or a prohibited rating) closes
    every open sales task crmtier made for the customer in an earlier run, and only those:
    compliance, complaint, credit and data-remediation work stays open."""
    shipped = load_default_mapping("salesforce").writeback
    wb = (
        shipped
        if tasks_written
        else WritebackConfig(
            fields=shipped.fields, queues=shipped.queues, campaigns=shipped.campaigns, tasks=False
        )
    )
    state = Known(tasks=frozenset(MADE), task_rules=known)
    plan = plan_customer(assessment, {}, state, wb)
    assert sorted(c.rule for c in plan.closures) == closed
    assert all(c.dedupe_key == f"C1:{c.rule}:old" for c in plan.closures)
    assert plan.closures == plan_customer(assessment, {}, state, wb).closures  # deterministic


@given(
    st.dictionaries(st.sampled_from("abcdef"), st.sampled_from(["gold", "", 1.5, None])),
    st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_a_field_update_carries_the_decided_values_of_the_fields_planned_in_plan_order(
    desired: dict[str, Any], written: list[bool]
) -> None:
    """``dispatch.items_of`` copies a decision's fields whole when the plan writes them all
    (a first sync's): the payload is still the decided values of the planned fields, in
    the plan's order, as when it picks them one by one."""
    decided = jsonable(desired)
    fields = {n: v for (n, v), w in zip(desired.items(), written, strict=False) if w}
    for planned in (fields, dict(desired)):
        items = items_of(CustomerPlan("C1", planned), "evt-1", decided)
        payloads = [list(item.payload.items()) for item in items]
        assert payloads == ([[(n, decided[n]) for n in planned]] if planned else [])
        assert all(item.payload is not decided for item in items)
