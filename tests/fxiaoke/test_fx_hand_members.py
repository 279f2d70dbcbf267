"""Campaign members a relationship manager added by hand: a ``CampaignMembersObj`` record
with no crmtier key (``field_crmtier_key__c``).

A removal looked for crmtier's key alone: it found nothing, answered success, and a
sanctions hit left the customer in a VIP campaign (docs/policy.md). An add made a second
member record next to the hand-made one. Members are now looked up once, by campaign and
customer with crmtier's key projected (``campaigns.pair_records``): an add counts the
member as made, a removal invalidates it (作废), with every other live record of the pair.
That one look-up is also the only one: no second query by key."""

from __future__ import annotations

import math
from typing import Any

import pytest

from connectors.contract import MembershipChange, WritePlan
from connectors.errors import ConnectorError
from connectors.sandbox.fxiaoke import FxiaokeSandbox
from connectors.sandbox.fxiaoke_routes import error_response
from connectors.sandbox.fxiaoke_schema import CAMPAIGN_MEMBER
from connectors.sandbox.generator import customer_id
from connectors.sandbox.server import Response
from tests.fxiaoke.fx_helpers import Connect, MakeSandbox, capture

VIP, SEMINAR = "vip_events", "wealth_seminar"


def _change(i: int, campaign: str, on: bool) -> MembershipChange:
    return MembershipChange(customer_id(i), campaign, on, f"{campaign}:{customer_id(i)}")


def _live(sandbox: FxiaokeSandbox, i: int, campaign: str) -> int:
    """How many live member records the customer has in the campaign."""
    event = sandbox.mapping.writeback.campaigns[campaign]
    return sum(
        1
        for _, _, d in sandbox.store.scan(CAMPAIGN_MEMBER)
        if d.get("account_id") == customer_id(i)
        and d.get("marketing_event_id") == event
        and d.get("life_status") != "invalid"
    )


@pytest.mark.parametrize("copies", [1, 2], ids=["one_record", "two_records"])
def test_a_member_added_by_hand_is_counted_and_then_removed(
    sandbox: FxiaokeSandbox, connect: Connect, copies: int
) -> None:
    """The add writes nothing (no second record), the removal invalidates every live
    record of the pair: FXiaoke documents no uniqueness of a customer in a 市场活动."""
    connector = connect(sandbox)
    for _ in range(copies):
        sandbox.add_member_by_hand(customer_id(1), VIP)
    assert all(r.ok for r in connector.apply(WritePlan(memberships=(_change(1, VIP, True),))))
    assert sandbox.server.calls.count("create") == 0
    assert _live(sandbox, 1, VIP) == copies
    assert all(r.ok for r in connector.apply(WritePlan(memberships=(_change(1, VIP, False),))))
    assert _live(sandbox, 1, VIP) == 0
    assert sandbox.server.calls.count("invalid") == copies


def test_the_look_up_by_pair_costs_one_query_per_50_customers(
    make_sandbox: MakeSandbox, connect: Connect
) -> None:
    """60 removals, every customer in a campaign by hand: ⌈60/50⌉ look-ups, each by
    campaign and customer (``IN`` both) and none by key, then one invalidation each."""
    sandbox = make_sandbox(customers=60)
    connector = connect(sandbox)
    changes = []
    for i in range(60):
        campaign = (VIP, SEMINAR)[i % 2]
        sandbox.add_member_by_hand(customer_id(i), campaign)
        changes.append(_change(i, campaign, False))
    bodies = capture(sandbox, "query")
    assert all(r.ok for r in connector.apply(WritePlan(memberships=tuple(changes))))
    lookups = [b["data"]["search_query_info"]["filters"] for b in bodies]
    by_pair = [f for f in lookups if {x["field_name"] for x in f} >= {"account_id"}]
    assert len(lookups) == len(by_pair) == math.ceil(60 / 50)
    assert all(
        {x["operator"] for x in f if x["field_name"] in ("account_id", "marketing_event_id")}
        == {"IN"}
        for f in by_pair
    )
    assert sandbox.server.calls.count("invalid") == 60
    assert not sandbox.memberships()


def test_a_plan_of_memberships_costs_one_look_up(sandbox: FxiaokeSandbox, connect: Connect) -> None:
    """Adds sent again, then removals: each plan one query, the look-up by pair that also
    reads crmtier's key (two looks-ups a plan before: by key, then by pair)."""
    connector = connect(sandbox)
    adds = tuple(_change(i, VIP, True) for i in range(3))
    assert all(r.ok for r in connector.apply(WritePlan(memberships=adds)))
    queries = sandbox.server.calls.count("query")
    assert all(r.ok for r in connector.apply(WritePlan(memberships=adds)))
    assert sandbox.server.calls.count("query") == queries + 1
    assert sandbox.server.calls.count("create") == 3
    removals = tuple(_change(i, VIP, False) for i in range(3))
    assert all(r.ok for r in connector.apply(WritePlan(memberships=removals)))
    assert sandbox.server.calls.count("query") == queries + 2
    assert not sandbox.memberships()


def test_a_copy_by_hand_of_a_member_crmtier_made_leaves_with_it(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    """crmtier made the member, then someone added the customer again by hand: the
    removal invalidates both records, not only the one its key finds."""
    connector = connect(sandbox)
    assert all(r.ok for r in connector.apply(WritePlan(memberships=(_change(1, VIP, True),))))
    sandbox.add_member_by_hand(customer_id(1), VIP)
    assert _live(sandbox, 1, VIP) == 2
    assert all(r.ok for r in connector.apply(WritePlan(memberships=(_change(1, VIP, False),))))
    assert _live(sandbox, 1, VIP) == 0
    assert sandbox.server.calls.count("invalid") == 2


def test_another_campaign_of_the_same_customers_is_left_alone(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    """The look-up asks for the campaigns and the customers ``IN`` each: a customer's
    membership by hand in another of the asked campaigns is no match for the pair."""
    connector = connect(sandbox)
    sandbox.add_member_by_hand(customer_id(1), VIP)
    sandbox.add_member_by_hand(customer_id(2), SEMINAR)
    plan = WritePlan(memberships=(_change(1, SEMINAR, False), _change(2, VIP, False)))
    assert all(r.ok for r in connector.apply(plan))
    assert sandbox.server.calls.count("invalid") == 0
    assert sandbox.memberships() == {(customer_id(1), VIP), (customer_id(2), SEMINAR)}


def test_a_removal_stopped_half_way_is_finished_by_the_next_run(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    """crmtier's record and two copies by hand; the second invalidation is refused (as a
    run killed between its invalidations leaves one): the removal is not ok, so it is sent
    again, and the next run finds the records still live by campaign and customer (crmtier's key
    is gone with its record) and invalidates them: none is left behind."""
    connector = connect(sandbox)
    assert all(r.ok for r in connector.apply(WritePlan(memberships=(_change(1, VIP, True),))))
    for _ in range(2):
        sandbox.add_member_by_hand(customer_id(1), VIP)
    sandbox.server.inject("invalid", response=error_response(15002, "参数不合法"), after=1)
    leave = WritePlan(memberships=(_change(1, VIP, False),))
    (first,) = connector.apply(leave)
    assert not first.ok and first.error_code == "15002"
    assert _live(sandbox, 1, VIP) == 1
    assert all(r.ok for r in connector.apply(leave))
    assert _live(sandbox, 1, VIP) == 0


@pytest.mark.parametrize(
    "fault",
    [
        {"response": error_response(15003, "APP没有访问权限")},
        {"response": Response.json({"error": "boom"}, 502), "times": None},
        {"drop": True, "times": None},
    ],
    ids=["refused", "bad_gateway", "dropped"],
)
def test_an_add_is_not_counted_as_made_when_the_look_up_by_pair_fails(
    sandbox: FxiaokeSandbox, connect: Connect, fault: dict[str, Any]
) -> None:
    """The look-up by campaign and customer fails: the add is no success on an unanswered
    question: the plan stops with the error, and no member record is written, so the next
    run asks again."""
    connector = connect(sandbox)
    sandbox.add_member_by_hand(customer_id(1), VIP)
    sandbox.server.inject("query", **fault)
    with pytest.raises(ConnectorError):
        connector.apply(WritePlan(memberships=(_change(1, VIP, True),)))
    assert sandbox.server.calls.count("create") == 0


def test_a_look_up_past_one_page_drops_the_cross_pairs_and_misses_no_record(
    make_sandbox: MakeSandbox, connect: Connect
) -> None:
    """60 customers, each by hand in both campaigns and twice in VIP; the even ones leave
    VIP, the odd ones the seminar. The first 50 customers' look-up matches 150 rows (two
    pages of 100, paged by ``_id``), a third of them another wanted customer's other
    campaign (a cross pair of the two ``IN``s): every record of a removed pair goes, every
    other stays."""
    sandbox = make_sandbox(customers=60)
    connector = connect(sandbox)
    for i in range(60):
        for campaign in (VIP, VIP, SEMINAR):
            sandbox.add_member_by_hand(customer_id(i), campaign)
    leave = tuple(_change(i, (VIP, SEMINAR)[i % 2], False) for i in range(60))
    assert all(r.ok for r in connector.apply(WritePlan(memberships=leave)))
    for i in range(60):
        assert (_live(sandbox, i, VIP), _live(sandbox, i, SEMINAR)) == ((0, 1), (2, 0))[i % 2]
    assert sandbox.server.calls.count("invalid") == 30 * 2 + 30
    # by pair only: 2 pages for the first 50 customers, 1 for the last 10
    assert sandbox.server.calls.count("query") == 2 + 1


@pytest.mark.parametrize(
    ("fault", "creates"),
    [({"answer_lost": True}, 1), ({"drop": True}, 2)],
    ids=["arrived", "never_arrived"],
)
def test_an_add_lost_in_transit_is_re_checked_by_pair_and_key(
    sandbox: FxiaokeSandbox, connect: Connect, fault: dict[str, Any], creates: int
) -> None:
    """The create's answer is lost: the re-check (one query by the pair, reading the key)
    finds a create that arrived, so it is not sent again; one that never arrived is."""
    sandbox.server.inject("create", times=1, **fault)
    connector = connect(sandbox, sleep=lambda _: None)
    assert all(r.ok for r in connector.apply(WritePlan(memberships=(_change(1, VIP, True),))))
    assert sandbox.server.calls.count("create") == creates
    assert sandbox.server.calls.count("query") == 2  # the plan's look-up, then the re-check
    assert _live(sandbox, 1, VIP) == 1


def test_a_second_record_of_crmtiers_key_is_healed_by_the_look_up_by_pair(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    """Two records carry one crmtier key (a create that arrived twice), a third is by hand:
    the add sent again keeps the oldest keyed record, invalidates the younger one, and
    leaves the hand-made one (not crmtier's to heal)."""
    connector = connect(sandbox)
    add = WritePlan(memberships=(_change(1, VIP, True),))
    assert all(r.ok for r in connector.apply(add))
    ((oldest, _, data),) = sandbox.store.scan(CAMPAIGN_MEMBER)
    younger = {**data, "create_time": data["create_time"] + 1}
    sandbox.store.insert_many(CAMPAIGN_MEMBER, [("f" * 24, sandbox.store.clock(), younger)])
    sandbox.add_member_by_hand(customer_id(1), VIP)
    assert all(r.ok for r in connector.apply(add))
    live = {
        rid for rid, _, d in sandbox.store.scan(CAMPAIGN_MEMBER) if d["life_status"] != "invalid"
    }
    assert oldest in live and "f" * 24 not in live and len(live) == 2
    assert sandbox.server.calls.count("invalid") == 1
