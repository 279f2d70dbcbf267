"""Strategy: field writes, tasks with deterministic keys, campaigns, and risk over marketing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from core_support import AS_OF, build, fields, generated_bank, members, policies, tasks

from tiering_core import decisions, lines
from tiering_core.columns import Columns
from tiering_core.engine import assess, evaluate
from tiering_core.models import ACTION_KINDS, Assessment, CustomerProfile
from tiering_core.policy import Policy, policy_over_default
from tiering_core.rules import override, strategy
from tiering_core.rules.strategy import dedupe_key

Rate = Callable[..., Assessment]
OUTPUTS = {
    "value_tier",
    "value_score",
    "needs_tier",
    "credit_risk",
    "aml_risk",
    "ops_risk",
    "edd_required",
    "next_review",
    "service_level",
    "preferred_channel",
    "status",
    "policy_version",
    "reasons",
}
PRIVATE = {"assets": {"deposits": 7_000_000}}
WEALTH = {"assets": {"deposits": 700_000}}


def test_every_canonical_output_is_written(rate: Rate, policy: Policy) -> None:
    a = rate(**PRIVATE)
    f = fields(a)
    assert set(f) == OUTPUTS
    assert f["value_tier"] == a.value_tier == "private"
    assert a.next_review is not None
    assert f["next_review"] == a.next_review.isoformat()
    assert f["policy_version"] == policy.version


def test_reasons_field_is_the_top_four_without_aml(rate: Rate) -> None:
    a = rate(
        **PRIVATE,
        aml={"pep": True},
        credit={"loan_class": "loss", "score": 500},
        feedback={"open_complaints": 1},
    )
    text = fields(a)["reasons"]
    assert "AML" not in text and "politically" not in text.lower()
    expected = sorted(
        (r for r in a.reasons if r.dimension != "aml"), key=lambda r: (-r.weight, r.code)
    )[:4]
    assert text.split("; ")[0].startswith(expected[0].code)
    assert [part.split(" ")[0] for part in text.split("; ")] == [r.code for r in expected]
    assert len(text) <= 255


def test_campaign_action_for_every_campaign_key(rate: Rate, policy: Policy) -> None:
    a = rate(**PRIVATE)
    campaign_actions = [x for x in a.actions if x.kind == "campaign"]
    assert sorted(x.campaign for x in campaign_actions) == sorted(policy.strategy.campaigns)
    assert members(a) == {"vip_events", "survey_private", "preapproved_credit"}
    for x in campaign_actions:
        assert x.dedupe_key == dedupe_key(a.id, "campaign", x.campaign)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (WEALTH, {"wealth_seminar", "survey_wealth", "preapproved_credit"}),
        (
            {"assets": {"deposits": 60_000}},
            {"affluent_offers", "survey_affluent", "preapproved_credit", "digital_self_service"},
        ),
        ({}, {"survey_mass", "digital_self_service"}),
        # a corporate is on its own ladder and never in a retail campaign (issue 16 item 5;
        # this case used to expect the retail affluent offers and survey)
        ({"kind": "corporate", "assets": {"deposits": 60_000}}, {"cash_management_trade_finance"}),
    ],
)
def test_campaigns_by_tier(rate: Rate, changes: dict[str, object], expected: set[str]) -> None:
    assert members(rate(**changes)) == expected


def test_aml_high_means_edd_task_for_compliance_and_no_marketing(rate: Rate) -> None:
    a = rate(**PRIVATE, aml={"pep": True})
    edd = tasks(a)["edd_review"]
    assert (edd.queue, edd.owner_id, edd.priority) == ("compliance", None, "high")
    assert members(a) == {"survey_private"}  # service surveys only
    assert "investment_advisory" not in tasks(a)


SANCTIONED = {"sanctions_hit": True}


@pytest.mark.parametrize(
    ("changes", "expected_tasks"),
    [
        (PRIVATE, {"sanctions_review"}),
        ({**PRIVATE, "owner_id": None, "previous": {"value_tier": "wealth"}}, {"sanctions_review"}),
        ({"kind": "corporate"}, {"sanctions_review"}),
        ({**WEALTH, "feedback": {"nps": 2, "csat": 1.0}}, {"sanctions_review"}),
        ({**WEALTH, "feedback": {"open_complaints": 1}}, {"sanctions_review", "complaint"}),
        ({"credit": {"loan_class": "loss"}}, {"sanctions_review", "credit_limit_review"}),
        ({"aml": {"sanctions_hit": True, "pep": True}}, {"sanctions_review"}),
    ],
)
def test_sanctions_hit_is_due_today_and_stops_sales_service_recovery_and_campaigns(
    rate: Rate, changes: dict[str, Any], expected_tasks: set[str]
) -> None:
    """A sanctions hit: one compliance task due the day it is found, highest priority, and
    no sales task (upgrade call, advisor, corporate review, advisory), no service-recovery
    task and no campaign membership, however the customer would otherwise be served.
    Complaints and credit/risk work continue."""
    aml = {**SANCTIONED, **changes.pop("aml", {})}
    a = rate(**changes, aml=aml)
    made = tasks(a)
    assert set(made) == expected_tasks
    review = made["sanctions_review"]
    assert (review.due, review.priority, review.queue, review.owner_id) == (
        AS_OF,
        "high",
        "compliance",
        None,
    )
    assert members(a) == set()
    assert a.aml_risk == "prohibited" and a.service_level == "restricted"


def test_credit_high_means_limit_review_and_no_credit_product(rate: Rate) -> None:
    a = rate(**WEALTH, credit={"days_past_due_max_12m": 120})
    assert tasks(a)["credit_limit_review"].queue == "credit_risk"
    assert "preapproved_credit" not in members(a)
    assert "wealth_seminar" in members(a)  # other marketing continues


def test_no_campaign_key_reveals_aml(policy: Policy) -> None:
    for key in policy.strategy.campaigns:
        assert "aml" not in key and "risk" not in key


@pytest.mark.parametrize(
    ("tier", "priority"),
    [
        (PRIVATE, "high"),
        (WEALTH, "high"),
        ({"assets": {"deposits": 60_000}}, "normal"),
        ({}, "normal"),
    ],
)
def test_complaint_task_is_due_in_15_days_for_every_tier(
    rate: Rate, tier: dict[str, object], priority: str
) -> None:
    """银行保险机构消费投诉处理管理办法 (2020): 15 days from receipt for every customer; a
    tier may raise the priority, never lengthen the deadline."""
    task = tasks(rate(**tier, feedback={"open_complaints": 1}))["complaint"]
    assert task.priority == priority
    assert task.due == AS_OF + timedelta(days=15)


def test_upgrade_gives_rm_call_task(rate: Rate) -> None:
    task = tasks(rate(**WEALTH, previous={"value_tier": "affluent"}))["upgrade_call"]
    assert (task.owner_id, task.queue) == ("RM001", None)
    assert "wealth" in task.subject


def test_private_without_rm_gets_dedicated_advisor_task(rate: Rate) -> None:
    assert "dedicated_advisor" in tasks(rate(**PRIVATE, owner_id=None))
    assert "dedicated_advisor" not in tasks(rate(**PRIVATE))


def test_corporate_and_hnw_tasks(rate: Rate) -> None:
    # the review is for RM-covered corporates (key and above), to their RM, or to the
    # corporate queue to assign one; a small business gets the cash-management campaign
    key = {"kind": "corporate", "assets": {"deposits": 20_000_000}}
    assert tasks(rate(**key))["corporate_banking"].owner_id == "RM001"
    unassigned = tasks(rate(**key, owner_id=None))["corporate_banking"]
    assert unassigned.queue == "corporate_banking" and "Assign" in unassigned.subject
    assert "corporate_banking" not in tasks(rate(kind="corporate"))
    advisory = tasks(rate(**PRIVATE))["investment_advisory"]
    assert advisory.owner_id == "RM001"


def test_mass_and_basic_tasks_never_go_to_an_rm(rate: Rate) -> None:
    a = rate(feedback={"open_complaints": 1, "csat": 1.0})
    for task in tasks(a).values():
        assert task.owner_id is None and task.queue
    assert members(a) >= {"digital_self_service"}


@pytest.mark.parametrize(
    ("feedback", "detractor"),
    [
        # NPS is the customer's 0-10 answer: detractor 0-6, passive 7-8, promoter 9-10.
        ({"nps": 0}, True),
        ({"nps": 6}, True),
        ({"nps": 7}, False),
        ({"nps": 8}, False),
        ({"nps": 9}, False),
        ({"nps": 10}, False),
        ({"csat": 2.0}, True),
        ({"csat": 2.1}, False),
    ],
)
def test_detractor_gets_service_recovery(
    rate: Rate, feedback: dict[str, float], detractor: bool
) -> None:
    assert ("service_recovery" in tasks(rate(feedback=feedback))) is detractor


def test_task_keys_are_stable_within_a_period_and_change_after(policy: Policy) -> None:
    profile = CustomerProfile.model_validate(build(**PRIVATE, aml={"pep": True}))
    first = tasks(assess(profile, policy, AS_OF))["edd_review"]
    rerun = tasks(assess(profile, policy, AS_OF + timedelta(days=2)))["edd_review"]
    next_half = tasks(assess(profile, policy, AS_OF + timedelta(days=40)))["edd_review"]
    assert first.dedupe_key == rerun.dedupe_key != next_half.dedupe_key
    other = CustomerProfile.model_validate(build(**PRIVATE, id="T0002", aml={"pep": True}))
    assert tasks(assess(other, policy, AS_OF))["edd_review"].dedupe_key != first.dedupe_key


def test_aml_high_holds_relationship_tasks_but_not_service_ones(rate: Rate) -> None:
    a = rate(
        **PRIVATE,
        owner_id=None,
        aml={"pep": True},
        previous={"value_tier": "wealth"},
        feedback={"open_complaints": 1, "nps": 0},
    )
    assert set(tasks(a)) == {"edd_review", "complaint", "service_recovery"}


#: Customers one rule alone gives a task (upgrade, corporate banking, investment
#: advisory), whom no other trigger makes candidates.
ONE_TRIGGER: list[dict[str, Any]] = [
    {"assets": {"deposits": 60_000}, "previous": {"value_tier": "mass"}},
    {"kind": "corporate", "assets": {"deposits": 20_000_000}},
    {"qualified_investor": True},
]


@pytest.mark.parametrize("name", ["default", "variant"])
def test_task_candidates_hold_every_customer_given_a_task(name: str) -> None:
    """``crmtier tier`` asks the task rules only about ``task_candidates``: on a dirty
    generated book where every rule gives a task, each customer with one is a candidate
    (a trigger missing from the columns would drop that customer's tasks from the output),
    and the candidates leave most of the others out."""
    policy = policies()[name]
    batch = generated_bank(2_000, seed=7, dirty=True) + [
        CustomerProfile.model_validate(build(id=f"T{i}", **changes))
        for i, changes in enumerate(ONE_TRIGGER)
    ]
    cols = Columns.from_profiles(batch, policy)
    ev = override.apply(evaluate(cols, policy, AS_OF), cols, policy, AS_OF)
    dc = decisions.decided(cols, ev, policy, AS_OF, ACTION_KINDS)
    candidates = decisions.task_candidates(cols, ev, dc.issues, policy).tolist()
    assert candidates == dc.candidates
    # the task rules asked about every customer (a whole decision asks the candidates alone)
    rules = [
        {
            t["rule"]
            for t in strategy.tasks(
                dc.customers[i],
                dc.named.outcome(i, dc.service_level[i], dc.issues[i]),
                policy,
                AS_OF,
                dc.cells.reasons_of(i),
            )
        }
        for i in range(len(dc))
    ]
    assert set().union(*rules) == set(type(policy.strategy.tasks).model_fields)
    assert [i for i, given in enumerate(rules) if given and not candidates[i]] == []
    assert sum(candidates) < (len(batch) + sum(map(bool, rules))) / 2


def test_a_sanctioned_customer_is_a_candidate_whatever_its_aml_level() -> None:
    """A bank may rate a sanctions hit below high (waiving the floor, ``regulatory.waivers``):
    the hit alone must still make the customer a task candidate, or ``crmtier tier`` would
    drop its sanctions review. The customer here has no other trigger."""
    policy = policy_over_default(
        {
            "aml": {"overrides": {"sanctions_hit": "medium"}},
            "regulatory": {"waivers": {"sanctions": "test: a hit rated medium"}},
        }
    )
    profile = CustomerProfile.model_validate(build(aml={"sanctions_hit": True}))
    cols = Columns.from_profiles([profile], policy)
    ev = override.apply(evaluate(cols, policy, AS_OF), cols, policy, AS_OF)
    dc = decisions.decided(cols, ev, policy, AS_OF, ACTION_KINDS)
    assert dc[0]["aml_risk"] == "medium"
    assert decisions.task_candidates(cols, ev, dc.issues, policy).tolist() == [True]
    output = json.loads(lines.assessment_lines(cols, policy, AS_OF))
    assert [a["rule"] for a in output["actions"] if a["kind"] == "task"] == ["sanctions_review"]


def test_campaign_dedupe_keys_are_the_ones_stores_hold() -> None:
    """A campaign action's dedupe key is what a store already holds for that membership
    (a changed key would add the customer to the campaign a second time): pinned digests,
    taken from the keys as ``dedupe_key`` made them before the campaign actions were made
    in their hashing pass, and what ``crmtier tier``'s lines splice in."""
    keys = ("affluent_offers", "vip_events", "理财沙龙")
    stored = {
        ("C-0001", "affluent_offers"): "e0eee0fbdcba6b1a54df4c9b7cb12ef0",
        ("C-0001", "vip_events"): "634ef4a88b07b1544c3458f97f9e9805",
        ("C-0001", "理财沙龙"): "319091c24a889ce2867fb8c2f0e09fd1",
        ("客户\x1f7", "affluent_offers"): "c714b9062ee75ab0f3d3f7cd11431439",
    }
    made = strategy.campaigns("C-0001", keys, [True, False, True])
    made += strategy.campaigns("客户\x1f7", keys[:1], [False])
    assert {
        (c, a["campaign"]): a["dedupe_key"]
        for c, a in zip(["C-0001"] * 3 + ["客户\x1f7"], made, strict=True)
    } == stored
    assert [a["member"] for a in made] == [True, False, True, False]
    for (customer, key), digest in stored.items():
        assert dedupe_key(customer, "campaign", key) == digest
        assert strategy.campaign_digests(customer, (key,)) == [digest.encode()]


def test_lines_refuse_decisions_made_without_the_task_kind() -> None:
    """The lines take their tasks from the candidates the decisions hold: decisions made
    without the task kind hold none, and would write every customer without a task."""
    policy = policies()["default"]
    cols = Columns.from_profiles(generated_bank(20, seed=3), policy)
    ev = evaluate(cols, policy, AS_OF)
    kinds = frozenset(ACTION_KINDS - {"task"})
    dc = decisions.decided(cols, ev, policy, AS_OF, kinds, rendered=True)
    with pytest.raises(ValueError, match="task kind"):
        lines.lines(dc)
