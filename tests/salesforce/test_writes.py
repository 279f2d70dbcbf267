"""API-call minimality (docs/targets.md P1): exact call counts for writes, from sandbox counters."""

from __future__ import annotations

import math

import pytest
from sf_helpers import read_all, task, tier_updates

from connectors.contract import BULK_JOB_CALLS, FieldUpdate, MembershipChange, WritePlan
from connectors.sandbox.salesforce_wire import person_contact_id as sandbox_contact


@pytest.fixture
def sandbox(sandbox_factory):
    return sandbox_factory("salesforce", customers=600)


@pytest.mark.parametrize("n", [1, 200, 201, 450])
def test_n_changed_customers_take_ceil_n_over_200_collection_calls(sandbox, connect, n):
    connector = connect(sandbox)
    ids = [sandbox.customer_id(i) for i in range(n)]
    before = sandbox.server.calls.count("collections_update")
    results = connector.apply(WritePlan(field_updates=tier_updates(ids)))
    assert all(r.ok for r in results) and len(results) == n
    assert sandbox.server.calls.count("collections_update") - before == math.ceil(n / 200)
    assert sandbox.written(ids[-1])["value_tier"] == "wealth"


def test_above_the_threshold_one_bulk_job_replaces_collections(sandbox, connect):
    connector = connect(sandbox, bulk_threshold=100, bulk_poll_seconds=0)
    ids = [sandbox.customer_id(i) for i in range(250)]
    plan = WritePlan(
        field_updates=(*tier_updates(ids[:-1]), FieldUpdate(ids[-1], {"value_tier": "gold"}))
    )
    results = connector.apply(plan)
    calls = sandbox.server.calls.counts()
    assert calls.get("bulk_ingest_create") == 1
    assert calls.get("collections_update", 0) == 0
    # the fewest calls, and one more to read the failed row
    assert sum(n for kind, n in calls.items() if kind.startswith("bulk_")) == BULK_JOB_CALLS + 1
    assert [r.ok for r in results] == [True] * 249 + [False]
    assert results[-1].error_code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert not results[-1].retryable
    assert sandbox.written(ids[0])["value_tier"] == "wealth"


def test_bulk_job_call_count_does_not_grow_with_n(sandbox, connect):
    connector = connect(sandbox, bulk_threshold=10, bulk_poll_seconds=0)
    counts = []
    for n in (50, 500):
        sandbox.server.calls.reset()
        ids = [sandbox.customer_id(i) for i in range(n)]
        assert all(r.ok for r in connector.apply(WritePlan(field_updates=tier_updates(ids))))
        calls = sandbox.server.calls.counts()
        calls.pop("oauth_token", None)  # the first run also logs in
        counts.append(sum(calls.values()))
    # create, upload, close, one poll: simple-salesforce's update() read the job's state
    # once more after its poll saw JobComplete (5)
    assert counts == [BULK_JOB_CALLS, BULK_JOB_CALLS]


def test_tasks_are_batched_200_per_upsert_call(sandbox, connect):
    connector = connect(sandbox)
    tasks = tuple(
        task(sandbox.customer_id(i), f"rm_call:{i}", queue="compliance") for i in range(450)
    )
    assert all(r.ok for r in connector.apply(WritePlan(tasks=tasks)))
    assert sandbox.server.calls.count("collections_upsert") == 3
    assert len(sandbox.tasks()) == 450
    assert {t.owner for t in sandbox.tasks()} == {connector.writeback.queues["compliance"]}


def test_memberships_are_added_with_one_call_per_200_and_no_look_up(sandbox, connect):
    """P1: adds cost ceil(N/200) create calls and nothing else. A re-sent add (a crash
    between the call and its record) meets the existing member and is still a success:
    one call, no duplicate members."""
    connector = connect(sandbox)
    read_all(connector)
    changes = tuple(
        MembershipChange(sandbox.customer_id(i), "vip_events", True, f"vip:{i}") for i in range(250)
    )
    before = sandbox.server.calls.counts()
    assert all(r.ok for r in connector.apply(WritePlan(memberships=changes)))
    after = sandbox.server.calls.counts()
    assert {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)} == {
        "collections_create": 2
    }
    assert all(r.ok for r in connector.apply(WritePlan(memberships=changes)))
    assert sandbox.server.calls.count("collections_create") == 4
    assert len(sandbox.memberships()) == 250


def test_removing_memberships_looks_up_only_the_leaving_members(sandbox, connect):
    """One look-up by crmtier's key for the leaving members; a removal whose key finds no
    member (never made, or added by hand) costs one more, by campaign and contact."""
    connector = connect(sandbox)
    read_all(connector)
    ids = [sandbox.customer_id(i) for i in range(10)]
    adds = tuple(MembershipChange(c, "vip_events", True, f"vip:{c}") for c in ids)
    assert all(r.ok for r in connector.apply(WritePlan(memberships=adds)))
    queries = sandbox.server.calls.count("query")
    leaving = tuple(MembershipChange(c, "vip_events", False, f"vip:{c}") for c in ids[:4])
    assert all(r.ok for r in connector.apply(WritePlan(memberships=leaving)))
    assert sandbox.server.calls.count("query") == queries + 1
    never = (MembershipChange(sandbox.customer_id(20), "vip_events", False, "vip:never"),)
    assert all(r.ok for r in connector.apply(WritePlan(memberships=leaving + never)))
    assert sandbox.server.calls.count("query") == queries + 3
    assert len(sandbox.memberships()) == 6


@pytest.mark.parametrize(
    "kinds", [("individual",), ("corporate",), ("individual", "corporate")], ids="+".join
)
def test_a_member_added_by_hand_leaves_when_crmtier_removes_it(sandbox, connect, kinds):
    """A sanctions hit removes every membership crmtier made (docs/policy.md). A customer
    someone put in the campaign by hand has no crmtier key: crmtier's add met that member
    (``DUPLICATE_VALUE``, the goal state) and holds the membership as made, yet its removal
    looked for the key alone, found nothing and answered success, leaving a sanctioned
    customer in a VIP campaign in silence. The member is found by the campaign and the
    customer's Person Contact (a business Account: the Account) as well, a pair Salesforce
    keeps unique, and removed: one look-up for the chunk, whatever kinds it holds."""
    connector = connect(sandbox)
    records = read_all(connector)
    customers = [next(r.profile.id for r in records if r.profile.kind == k) for k in kinds]
    campaign = sandbox.mapping.writeback.campaigns["vip_events"]
    by_hand = [
        {"attributes": {"type": "CampaignMember"}, "CampaignId": campaign, "ContactId": contact}
        if kind == "individual"
        else {"attributes": {"type": "CampaignMember"}, "CampaignId": campaign, "AccountId": c}
        for kind, c in zip(kinds, customers, strict=True)
        for contact in [sandbox_contact(c)]
    ]
    assert all(r.success for r in sandbox.org.create(by_hand, False))
    adds = tuple(MembershipChange(c, "vip_events", True, f"vip:{c}") for c in customers)
    assert all(r.ok for r in connector.apply(WritePlan(memberships=adds)))
    queries = sandbox.server.calls.count("query")
    removes = tuple(MembershipChange(c, "vip_events", False, f"vip:{c}") for c in customers)
    assert all(r.ok for r in connector.apply(WritePlan(memberships=removes)))
    assert sandbox.server.calls.count("query") == queries + 2  # by key, then by pair
    assert not sandbox.memberships() & {(c, "vip_events") for c in customers}


def test_a_contact_of_a_business_account_is_not_taken_for_the_account_member(sandbox, connect):
    """With Accounts as Campaign Members on, ``CampaignMember.AccountId`` is "the account
    related to the campaign" (Object Reference "CampaignMember"), which the pages do not
    say stays empty on a contact's member. A business customer's removal that finds no
    member by crmtier's key looks for the account's own member: one of a contact of that
    account, whom someone put in the campaign, is not it and stays."""
    connector = connect(sandbox)
    records = read_all(connector)
    account = next(r.profile.id for r in records if r.profile.kind == "corporate")
    campaign = sandbox.mapping.writeback.campaigns["vip_events"]
    row = {"CampaignId": campaign, "ContactId": "003000000000BIZ", "AccountId": account}
    sandbox.org.store.insert_many(
        "CampaignMember", [("00v000000000BIZ", sandbox.org.store.clock(), row)]
    )
    leaving = (MembershipChange(account, "vip_events", False, f"vip:{account}"),)
    assert all(r.ok for r in connector.apply(WritePlan(memberships=leaving)))
    assert sandbox.org.store.exists("CampaignMember", "00v000000000BIZ")


def test_business_accounts_need_accounts_as_campaign_members(sandbox_factory, connect):
    sandbox = sandbox_factory("salesforce", customers=60, accounts_as_campaign_members=False)
    connector = connect(sandbox, accounts_as_campaign_members=False)
    records = read_all(connector)
    corporate = next(r.profile.id for r in records if r.profile.kind == "corporate")
    person = next(r.profile.id for r in records if r.profile.kind == "individual")
    results = connector.apply(
        WritePlan(
            memberships=(
                MembershipChange(person, "wealth_seminar", True, "a"),
                MembershipChange(corporate, "wealth_seminar", True, "b"),
            )
        )
    )
    assert [r.ok for r in results] == [True, False]
    assert results[1].error_code == "MEMBER_NOT_SUPPORTED"
    assert sandbox.memberships() == {(person, "wealth_seminar")}


def test_unmapped_campaign_is_a_per_item_error(sandbox, connect):
    connector = connect(sandbox)
    results = connector.apply(
        WritePlan(memberships=(MembershipChange(sandbox.customer_id(0), "no_such", True, "k"),))
    )
    assert not results[0].ok and results[0].error_code == "CAMPAIGN_NOT_MAPPED"
    assert sandbox.write_calls() == 0


def test_update_of_unmapped_outputs_only_costs_no_call(sandbox_factory, connect):
    """An output the admin did not map (here aml_risk) is not written, and alone costs no call."""
    sandbox = sandbox_factory("salesforce", customers=3)
    connector = connect(sandbox)
    connector.writeback = connector.writeback.model_copy(
        update={"fields": {k: v for k, v in connector.writeback.fields.items() if k != "aml_risk"}}
    )
    results = connector.apply(
        WritePlan(field_updates=(FieldUpdate(sandbox.customer_id(0), {"aml_risk": "high"}),))
    )
    assert [r.ok for r in results] == [True]
    assert sandbox.write_calls() == 0
    assert "aml_risk" not in sandbox.written(sandbox.customer_id(0))


def test_members_of_customers_not_read_yet_are_resolved_with_one_lookup(sandbox_factory, connect):
    """Person Accounts join as their Person Contact, business Accounts as the Account."""
    sandbox = sandbox_factory("salesforce", customers=60)
    reader = connect(sandbox)
    kinds = {r.profile.id: r.profile.kind for r in read_all(reader)}
    connector = connect(sandbox)  # a fresh connector: nothing cached
    ids = list(kinds)[:40]
    sandbox.server.calls.reset()
    changes = tuple(MembershipChange(i, "affluent_offers", True, f"a:{i}") for i in ids)
    assert all(r.ok for r in connector.apply(WritePlan(memberships=changes)))
    # 1 look-up of the person contacts, then 1 create
    assert sandbox.server.calls.count("query") == 1
    assert sandbox.server.calls.count("collections_create") == 1
    assert sandbox.memberships() == {(i, "affluent_offers") for i in ids}
    assert {kinds[i] for i in ids} == {"individual", "corporate"}
    members = {
        d.get("ContactId") or d.get("AccountId") for _, _, d in sandbox.store.scan("CampaignMember")
    }
    for i in ids:
        expected = sandbox_contact(i) if kinds[i] == "individual" else i
        assert expected in members


@pytest.mark.parametrize(
    ("error", "code", "retryable"),
    [
        ("PROCESSING_HALTED:not processed by the job", "PROCESSING_HALTED", True),
        ("STRING_TOO_LONG:Tier: jane.doe@bank.com", "STRING_TOO_LONG", False),
        ("Job aborted by jane.doe@bank.com", None, False),  # no code prefix
        ("value 'jane.doe@bank.com' rejected: bad", None, False),  # a colon, not after a code
    ],
)
def test_a_bulk_row_error_keeps_its_code_and_never_its_words(
    sandbox, connect, monkeypatch, error, code, retryable
):
    """The WriteResult the writer builds from a bulk job's ``sf__Error``: the code if the
    text starts with one, never the vendor's words (which can quote a value or a user)."""
    connector = connect(sandbox, bulk_threshold=1, bulk_poll_seconds=0)
    ids = [sandbox.customer_id(i) for i in range(2)]
    rows = [{"sf__Id": ids[0], "sf__Error": error}]
    monkeypatch.setattr(connector.client, "bulk_update", lambda *a: rows)
    failed, written = connector.apply(WritePlan(field_updates=tier_updates(ids)))
    assert written.ok and not failed.ok
    assert (failed.error_code, failed.retryable) == (code, retryable)
    assert "jane.doe" not in (failed.message or "")
